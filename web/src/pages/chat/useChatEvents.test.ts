import { act, renderHook } from "@testing-library/react";
import { beforeEach, expect, it, vi } from "vitest";
import type { ChatStreamAction } from "../../lib/chatStream";
import { GraphQLRequestError, type LiveSink } from "../../lib/graphql";

interface Subscription {
  variables: { chatId: string; afterPosition?: number | null };
  sink: LiveSink<unknown>;
  ended: boolean;
}

const live = vi.hoisted(() => ({
  subscriptions: [] as Subscription[],
  socketListeners: new Set<(state: "connected" | "closed") => void>(),
}));

vi.mock("../../lib/graphql", async (original) => ({
  ...(await original<typeof import("../../lib/graphql")>()),
  subscribe: (_doc: unknown, variables: Subscription["variables"], sink: LiveSink<unknown>) => {
    const subscription = { variables, sink, ended: false };
    live.subscriptions.push(subscription);
    return () => {
      subscription.ended = true;
    };
  },
  onSocketState: (listener: (state: "connected" | "closed") => void) => {
    live.socketListeners.add(listener);
    return () => live.socketListeners.delete(listener);
  },
  closeLive: () => undefined,
}));

vi.mock("../../lib/session", () => ({ session: { user: { id: "u" }, refresh: async () => "token" } }));

const { useChatEvents } = await import("./useChatEvents");

beforeEach(() => {
  live.subscriptions.length = 0;
  live.socketListeners.clear();
});

function mount(position: { current: number }) {
  const actions: ChatStreamAction[] = [];
  const onGone = vi.fn();
  const dispatch = (a: ChatStreamAction) => void actions.push(a);
  const hook = renderHook(() => useChatEvents("c1", true, () => position.current, dispatch, onGone));
  return { actions, onGone, hook };
}

it("asks for the messages after the highest position held whenever the subscribe message is sent", () => {
  const position = { current: 5 };
  mount(position);
  const { variables } = live.subscriptions[0];
  expect(JSON.parse(JSON.stringify(variables))).toEqual({ chatId: "c1", afterPosition: 5 });
  position.current = 9; // graphql-ws re-sends the same variables after a reconnect
  expect(JSON.parse(JSON.stringify(variables))).toEqual({ chatId: "c1", afterPosition: 9 });
});

it("turns events into reducer actions", () => {
  const { actions } = mount({ current: 0 });
  const { sink } = live.subscriptions[0];
  act(() => {
    sink.next({ chatEvents: { __typename: "ReplyDelta", messageId: "r1", delta: "Hi", offset: 0 } });
    sink.next({ chatEvents: { __typename: "ChatDeleted", chatId: "c1" } });
  });
  expect(actions).toEqual([
    { type: "replyDelta", messageId: "r1", offset: 0, delta: "Hi" },
    { type: "chatDeleted" },
  ]);
});

it("shows reconnecting while the socket is closed", () => {
  const { hook } = mount({ current: 0 });
  act(() => live.socketListeners.forEach((l) => l("closed")));
  expect(hook.result.current.reconnecting).toBe(true);
  act(() => live.socketListeners.forEach((l) => l("connected")));
  expect(hook.result.current.reconnecting).toBe(false);
});

it("resubscribes after a failure, after the position held then", async () => {
  vi.useFakeTimers();
  try {
    const position = { current: 3 };
    mount(position);
    position.current = 7;
    act(() => live.subscriptions[0].sink.error?.(new GraphQLRequestError([{ message: "slow", extensions: { code: "RATE_LIMITED" } }])));
    await act(async () => vi.advanceTimersByTime(1000));
    expect(live.subscriptions).toHaveLength(2);
    expect(live.subscriptions[1].variables.afterPosition).toBe(7);
  } finally {
    vi.useRealTimers();
  }
});

it("reports a chat that is not there and does not resubscribe", async () => {
  vi.useFakeTimers();
  try {
    const { onGone } = mount({ current: 0 });
    act(() => live.subscriptions[0].sink.error?.(new GraphQLRequestError([{ message: "no", extensions: { code: "NOT_FOUND" } }])));
    await act(async () => vi.advanceTimersByTime(20_000));
    expect(onGone).toHaveBeenCalledOnce();
    expect(live.subscriptions).toHaveLength(1);
  } finally {
    vi.useRealTimers();
  }
});

it("ends its subscription when unmounted", () => {
  const { hook } = mount({ current: 0 });
  hook.unmount();
  expect(live.subscriptions[0].ended).toBe(true);
});
