// One conversation: its messages (history, then live), the reply streaming in, the composer, and
// the chat's own actions (rename, archive, delete).
import { useCallback, useEffect, useLayoutEffect, useReducer, useRef, useState } from "react";
import { RichText } from "./RichText";
import { ConfirmDialog, ErrorMessage, Loading, formatTime } from "../../components/ui";
import type { ChatViewQuery } from "../../gql/graphql";
import {
  type ChatMessage,
  chatStreamReducer,
  emptyChatStream,
  highestPosition,
  isGenerating,
} from "../../lib/chatStream";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError, useSessionUser } from "../../lib/hooks";
import { newMutationId, retryIdempotent } from "../../lib/idempotent";
import { navigate, useTitle } from "../../lib/router";
import { rankOfHref } from "../../lib/citations";
import { Citations, openCitation } from "./Citations";
import { Composer, type ComposerHandle } from "./Composer";
import { KnowledgeBar } from "./KnowledgeBar";
import { ArchiveChat, ChatView, DeleteChat, RenameChat, SendMessage, StopGeneration } from "./operations";
import { useChatEvents } from "./useChatEvents";
import { cancelSendMark, firstTokenRendered, lastFirstToken, markSend, noteWrite, writtenPosition } from "./writes";

type ChatInfo = Omit<ChatViewQuery["chat"], "messages">;

/** The title a chat started with "New chat" takes from its first message. */
export const DEFAULT_TITLE = "New chat";
const PAGE = 200;
const FLASH_MS = 3000;
/** Answers that mean the chat is not there for this user (another tenant's looks missing too). */
const GONE = new Set(["NOT_FOUND", "BAD_USER_INPUT", "FORBIDDEN"]);

/** A chat's title from a message: its first line, shortened. */
export function titleFrom(content: string): string {
  const line = content.trim().split("\n")[0].replace(/\s+/g, " ");
  return line.length > 60 ? `${line.slice(0, 59).trimEnd()}…` : line || DEFAULT_TITLE;
}

const AUTHOR: Record<ChatMessage["role"], string> = { USER: "You", ASSISTANT: "Assistant", SYSTEM: "System" };

export function Conversation({
  chatId,
  focusMessageId,
  onChanged,
}: {
  chatId: string;
  /** A message to scroll to and mark (from a search hit). */
  focusMessageId: string | null;
  /** The chat list should show a write (its position). */
  onChanged: (position: number) => void;
}) {
  const user = useSessionUser();
  const [chat, setChat] = useState<ChatInfo | null>(null);
  const [loadError, setLoadError] = useState<GraphQLRequestError | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [state, dispatch] = useReducer(chatStreamReducer, emptyChatStream);
  const [firstTokenMs, setFirstTokenMs] = useState<number | null>(lastFirstToken);
  const [actionError, setActionError] = useState<GraphQLRequestError | null>(null);
  const [flashId, setFlashId] = useState<string | null>(null);
  const [missingFocus, setMissingFocus] = useState(false);
  const composer = useRef<ComposerHandle>(null);
  const stateRef = useRef(state);
  stateRef.current = state;
  useTitle(chat?.title ?? (loadError ? "Chat not found" : "Chat"));

  // The whole history, oldest first (the API pages forward only), waiting for our own writes.
  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        let after: string | null = null;
        for (;;) {
          const answer: ChatViewQuery = await request(ChatView, {
            id: chatId,
            afterPosition: writtenPosition(chatId),
            first: PAGE,
            after,
          });
          const page: ChatViewQuery["chat"] = answer.chat;
          if (cancelled) return;
          const { messages, ...info } = page;
          setChat(info);
          dispatch({ type: "messages", messages: messages.nodes });
          if (!messages.pageInfo.hasNextPage || !messages.pageInfo.endCursor) break;
          after = messages.pageInfo.endCursor;
        }
        setLoaded(true);
      } catch (e) {
        if (!cancelled) setLoadError(asRequestError(e));
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [chatId]);

  const afterPosition = useCallback(() => highestPosition(stateRef.current, chat?.position ?? 0), [chat?.position]);
  const onGone = useCallback((error: GraphQLRequestError) => setLoadError(error), []);
  const { reconnecting } = useChatEvents(chatId, loaded, afterPosition, dispatch, onGone);

  const owner = chat !== null && user !== null && chat.ownerId === user.id;
  const writable = owner && !state.deleted;
  const generating = isGenerating(state);

  // Send-to-first-token: the first reply text rendered after Send was pressed.
  useLayoutEffect(() => {
    const replies = [
      ...state.streams.filter((s) => s.length > 0).map((s) => s.id),
      ...state.messages.filter((m) => m.role === "ASSISTANT").map((m) => m.id),
    ];
    const ms = firstTokenRendered(chatId, replies);
    if (ms !== null) setFirstTokenMs(ms);
  }, [chatId, state.streams, state.messages]);

  // Follow the conversation's end while the reader is there.
  const atEnd = useRef(true);
  useEffect(() => {
    const onScroll = () => {
      atEnd.current = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
    };
    window.addEventListener("scroll", onScroll, { passive: true });
    return () => window.removeEventListener("scroll", onScroll);
  }, []);
  useLayoutEffect(() => {
    if (loaded && atEnd.current && !flashId) window.scrollTo({ top: document.documentElement.scrollHeight });
  }, [loaded, state.messages, state.streams, flashId]);

  // A search hit: scroll to its message and mark it for a moment.
  useEffect(() => {
    if (!loaded || !focusMessageId) return;
    const element = document.getElementById(`message-${focusMessageId}`);
    if (!element) {
      setMissingFocus(true);
      return;
    }
    setMissingFocus(false);
    element.scrollIntoView({ block: "center" });
    element.focus({ preventScroll: true });
    setFlashId(focusMessageId);
    const timer = setTimeout(() => setFlashId(null), FLASH_MS);
    return () => clearTimeout(timer);
  }, [loaded, focusMessageId]);

  useEffect(() => {
    if (loaded && writable && !focusMessageId) composer.current?.focus();
  }, [loaded, writable, focusMessageId]);

  const send = async (content: string) => {
    if (!chat) return;
    const clientMutationId = newMutationId();
    const current = stateRef.current;
    markSend(chatId, performance.now(), [
      ...current.streams.map((s) => s.id),
      ...current.messages.filter((m) => m.role === "ASSISTANT").map((m) => m.id),
    ]);
    const first = current.messages.length === 0;
    try {
      const { sendMessage } = await retryIdempotent(() =>
        request(SendMessage, { input: { chatId, content, clientMutationId } }),
      );
      dispatch({ type: "sent", message: sendMessage.message });
      noteWrite(chatId, sendMessage.position);
      onChanged(sendMessage.position);
    } catch (e) {
      cancelSendMark();
      throw e;
    }
    if (first && chat.title === DEFAULT_TITLE) void rename(titleFrom(content)).catch(() => null);
  };

  const stop = async () => {
    setActionError(null);
    try {
      await request(StopGeneration, { input: { chatId } });
      dispatch({ type: "stopped" });
    } catch (e) {
      setActionError(asRequestError(e));
    }
  };

  const rename = async (title: string) => {
    const { renameChat } = await request(RenameChat, { input: { chatId, title } });
    noteWrite(chatId, renameChat.position);
    setChat((c) => (c ? { ...c, title } : c));
    onChanged(renameChat.position);
  };

  const archive = async () => {
    setActionError(null);
    try {
      const { archiveChat } = await request(ArchiveChat, { input: { chatId } });
      noteWrite(chatId, archiveChat.position);
      setChat((c) => (c ? { ...c, status: "ARCHIVED" } : c));
      onChanged(archiveChat.position);
    } catch (e) {
      setActionError(asRequestError(e));
    }
  };

  const remove = async () => {
    setActionError(null);
    try {
      const { deleteChat } = await request(DeleteChat, { input: { chatId } });
      noteWrite(chatId, deleteChat.position);
      onChanged(deleteChat.position);
      navigate("/chats");
    } catch (e) {
      setActionError(asRequestError(e));
    }
  };

  if (loadError && GONE.has(loadError.code)) return <ChatNotFound />;
  if (!chat) {
    return loadError ? (
      <section className="conversation">
        <ErrorMessage error={loadError} />
      </section>
    ) : (
      <Loading label="Opening the chat…" />
    );
  }

  return (
    <section className="conversation" aria-labelledby="chat-title">
      <ChatHeader
        chat={chat}
        owner={owner && !state.deleted}
        onRename={rename}
        onArchive={archive}
        onDelete={remove}
      />
      <KnowledgeBar chatId={chatId} writable={writable} />
      <ErrorMessage error={actionError ?? loadError} />
      {reconnecting && (
        <p className="live-status" role="status">
          Reconnecting…
        </p>
      )}
      {state.deleted && (
        <p className="error" role="alert">
          This chat was deleted.{" "}
          <a href="/chats" onClick={(e) => (e.preventDefault(), navigate("/chats"))}>
            Back to your chats
          </a>
        </p>
      )}
      {missingFocus && (
        <p className="hint" role="status">
          The message you searched for is no longer in this chat.
        </p>
      )}
      <div
        className="message-list"
        role="log"
        aria-label="Messages"
        aria-busy={state.streams.length > 0}
        data-first-token-ms={firstTokenMs ?? undefined}
      >
        {!loaded && <Loading label="Loading messages…" />}
        {loaded && state.messages.length === 0 && state.streams.length === 0 && (
          <p className="empty">No messages yet.{writable ? " Write the first one below." : ""}</p>
        )}
        {state.messages.map((message) => (
          <MessageView key={message.id} message={message} flash={flashId === message.id} />
        ))}
        {state.streams.map((stream) => (
          <article
            key={stream.id}
            id={`message-${stream.id}`}
            className="message assistant"
            aria-label="Assistant message"
            data-streaming="true"
          >
            <header className="message-meta">
              <span className="message-author">Assistant</span>
              <span className="message-model">{chat.model}</span>
            </header>
            {stream.length > 0 ? <RichText text={stream.text} /> : <p className="typing">…</p>}
          </article>
        ))}
        {state.awaitingReplyTo !== null && state.streams.length === 0 && (
          <p className="typing hint">The assistant is replying…</p>
        )}
      </div>
      {writable && (
        <Composer ref={composer} onSend={send} disabled={!loaded}>
          {generating && (
            <button type="button" onClick={() => void stop()}>
              Stop generating
            </button>
          )}
        </Composer>
      )}
      {!owner && chat && <p className="hint">You are reading someone else's chat; only its owner can write in it.</p>}
    </section>
  );
}

function MessageView({ message, flash }: { message: ChatMessage; flash: boolean }) {
  const author = AUTHOR[message.role];
  const citations = message.citations ?? [];
  const given = citations.reduce((most, c) => Math.max(most, c.rank), 0);
  return (
    <article
      id={`message-${message.id}`}
      className={`message ${message.role.toLowerCase()}${flash ? " flash" : ""}`}
      aria-label={`${author} message`}
      tabIndex={-1}
      onClick={
        given > 0
          ? (event) => {
              // A [n] in a grounded reply opens its source below.
              const link = (event.target as Element).closest?.("a.citation-ref");
              const rank = rankOfHref(link?.getAttribute("href") ?? null);
              if (rank === null) return;
              event.preventDefault();
              openCitation(event.currentTarget, rank);
            }
          : undefined
      }
    >
      <header className="message-meta">
        <span className="message-author">{author}</span>
        {message.role === "ASSISTANT" && message.model && <span className="message-model">{message.model}</span>}
        <time dateTime={message.createdAt}>{formatTime(message.createdAt)}</time>
      </header>
      {message.role === "USER" ? (
        <p className="message-text">{message.content}</p>
      ) : (
        <RichText text={message.content} citations={given} />
      )}
      {message.role === "ASSISTANT" && message.finishReason && message.finishReason !== "stop" && (
        <small className="finish-reason">Finish reason: {message.finishReason}</small>
      )}
      <Citations citations={citations} />
    </article>
  );
}

export function ChatNotFound() {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus({ preventScroll: true }), []);
  return (
    <section className="conversation not-found" aria-labelledby="chat-not-found">
      <h1 id="chat-not-found" tabIndex={-1} ref={heading}>
        Chat not found
      </h1>
      <p>There is no such chat, or it is not yours to see.</p>
      <p>
        <a href="/chats" onClick={(e) => (e.preventDefault(), navigate("/chats"))}>
          Back to your chats
        </a>
      </p>
    </section>
  );
}

function ChatHeader({
  chat,
  owner,
  onRename,
  onArchive,
  onDelete,
}: {
  chat: ChatInfo;
  owner: boolean;
  onRename: (title: string) => Promise<void>;
  onArchive: () => Promise<void>;
  onDelete: () => Promise<void>;
}) {
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(chat.title);
  const [renameError, setRenameError] = useState<GraphQLRequestError | null>(null);
  const [confirming, setConfirming] = useState(false);
  const renameButton = useRef<HTMLButtonElement>(null);
  const titleInput = useRef<HTMLInputElement>(null);
  const archived = chat.status === "ARCHIVED";

  useEffect(() => {
    if (renaming) titleInput.current?.select();
  }, [renaming]);

  const closeRename = () => {
    setRenaming(false);
    setRenameError(null);
    requestAnimationFrame(() => renameButton.current?.focus());
  };

  const save = async () => {
    const next = title.trim();
    if (!next) return;
    try {
      await onRename(next);
      closeRename();
    } catch (e) {
      setRenameError(asRequestError(e));
    }
  };

  return (
    <header className="chat-header">
      {renaming ? (
        <form
          className="rename-form"
          aria-label="Rename chat"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
          onKeyDown={(e) => {
            if (e.key === "Escape") closeRename();
          }}
        >
          <label htmlFor="chat-title-input" className="visually-hidden">
            Chat title
          </label>
          <input
            id="chat-title-input"
            ref={titleInput}
            value={title}
            maxLength={200}
            required
            onChange={(e) => setTitle(e.target.value)}
          />
          <button type="submit" className="primary">
            Save
          </button>
          <button type="button" onClick={closeRename}>
            Cancel
          </button>
          <ErrorMessage error={renameError} />
        </form>
      ) : (
        <h1 id="chat-title" tabIndex={-1}>
          {chat.title}
        </h1>
      )}
      <p className="chat-facts">
        <span>Model: {chat.model}</span>
        {archived && <span className="badge">Archived</span>}
      </p>
      {owner && !renaming && (
        <div className="chat-actions">
          <button
            type="button"
            ref={renameButton}
            onClick={() => {
              setTitle(chat.title);
              setRenaming(true);
            }}
          >
            Rename chat
          </button>
          <button type="button" onClick={() => void onArchive()} disabled={archived}>
            Archive chat
          </button>
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Delete chat
          </button>
        </div>
      )}
      <ConfirmDialog
        open={confirming}
        title="Delete this chat?"
        confirmLabel="Delete"
        danger
        onCancel={() => setConfirming(false)}
        onConfirm={() => {
          setConfirming(false);
          void onDelete();
        }}
      >
        <p>“{chat.title}” and its messages leave every list and search. This cannot be undone here.</p>
      </ConfirmDialog>
    </header>
  );
}
