// The live side of a conversation: `chatEvents` into the chat stream reducer, surviving dropped
// WebSockets without losing or doubling anything.
import { type Dispatch, useEffect, useRef, useState } from "react";
import type { ChatStreamAction } from "../../lib/chatStream";
import { closeLive, type GraphQLRequestError, onSocketState, subscribe } from "../../lib/graphql";
import { session } from "../../lib/session";
import { ChatEvents } from "./operations";

/** Wait before resubscribing after the n-th failure in a row. */
const backoff = (failures: number) => Math.min(500 * 2 ** (failures - 1), 10_000);

export interface ChatEventsState {
  /** The WebSocket dropped and is being reopened. */
  reconnecting: boolean;
}

/**
 * Subscribe to a chat's events once `enabled` (its history loaded). Every (re)subscription asks
 * for the messages after `afterPosition()` — the resume point at that moment (chatStream.highestPosition) —
 * so graphql-ws's own retries after a drop replay what was missed; the reducer drops doubles.
 */
export function useChatEvents(
  chatId: string,
  enabled: boolean,
  afterPosition: () => number,
  dispatch: Dispatch<ChatStreamAction>,
  onGone: (error: GraphQLRequestError) => void,
): ChatEventsState {
  const [reconnecting, setReconnecting] = useState(false);
  const latest = useRef({ afterPosition, onGone });
  latest.current = { afterPosition, onGone };

  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let ended = false; // the chat was deleted: the server ends the stream
    let failures = 0;
    let generation = 0; // callbacks of a replaced subscription (it completes when ended) are ignored
    let timer: ReturnType<typeof setTimeout> | undefined;
    let unsubscribe = () => {};

    // Read when graphql-ws sends the subscribe message, i.e. at every reconnect too.
    const variables = {
      chatId,
      get afterPosition() {
        const position = latest.current.afterPosition();
        return position > 0 ? position : null;
      },
    };

    const retry = () => {
      if (stopped || ended || !session.user) return;
      failures += 1;
      clearTimeout(timer);
      timer = setTimeout(start, backoff(failures));
    };

    function start() {
      if (stopped) return;
      const mine = ++generation;
      const current = () => !stopped && mine === generation;
      unsubscribe();
      unsubscribe = subscribe(ChatEvents, variables, {
        next: ({ chatEvents: event }) => {
          if (!current()) return;
          failures = 0;
          setReconnecting(false);
          switch (event.__typename) {
            case "MessageAdded":
              dispatch({ type: "messageAdded", message: event.message });
              break;
            case "ReplyDelta":
              dispatch({ type: "replyDelta", messageId: event.messageId, offset: event.offset, delta: event.delta });
              break;
            case "ChatDeleted":
              ended = true;
              dispatch({ type: "chatDeleted" });
              break;
          }
        },
        error: (error) => {
          if (!current()) return;
          if (error.code === "NOT_FOUND" || error.code === "FORBIDDEN") {
            ended = true;
            latest.current.onGone(error);
            return;
          }
          if (error.code === "UNAUTHENTICATED") {
            // The socket's access token expired: a new socket, signed with a fresh token.
            void session
              .refresh()
              .catch(() => null)
              .then(() => {
                if (!current()) return;
                closeLive();
                retry();
              });
            return;
          }
          // RATE_LIMITED (a subscriber too slow), a refused reconnect, ...: resume after what we hold.
          retry();
        },
        // graphql-ws completes a subscription when its client is disposed (closeLive).
        complete: () => {
          if (current()) retry();
        },
      });
    }

    const unlisten = onSocketState((state) => {
      if (!stopped) setReconnecting(state === "closed" && !ended);
    });
    start();
    return () => {
      stopped = true;
      clearTimeout(timer);
      unlisten();
      unsubscribe();
      setReconnecting(false);
    };
  }, [chatId, enabled, dispatch]);

  return { reconnecting };
}
