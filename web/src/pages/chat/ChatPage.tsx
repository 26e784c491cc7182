// The chat screens: the user's chats beside the open conversation (`/chats/<id>`), or a new
// conversation to start (`/`, `/chats`).
import { useCallback, useEffect, useId, useRef, useState } from "react";
import { ErrorMessage, Loading, formatTime } from "../../components/ui";
import type { ChatListQuery } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError, useQuery, useSessionUser } from "../../lib/hooks";
import { newMutationId, retryIdempotent } from "../../lib/idempotent";
import { match, navigate, useLocation, useTitle } from "../../lib/router";
import { Composer } from "./Composer";
import { Conversation, DEFAULT_TITLE, titleFrom } from "./Conversation";
import { ChatList, SendMessage, StartChat, TenantModels } from "./operations";
import { cancelSendMark, listWrittenPosition, markSend, noteWrite } from "./writes";

type ChatSummary = ChatListQuery["chats"]["nodes"][number];

const LIST_PAGE = 30;
const MODEL_KEY = "parley.model";

export function ChatPage() {
  const { path, query } = useLocation();
  const chatId = match("/chats/:id", path)?.id ?? null;
  const user = useSessionUser();
  const canWrite = user !== null && user.role !== "AUDITOR";
  const list = useChatList();
  const [model, setModel, models] = useModelChoice();
  const [startError, setStartError] = useState<GraphQLRequestError | null>(null);
  const [starting, setStarting] = useState(false);

  const startChat = async (title: string) => {
    const clientMutationId = newMutationId();
    const { startChat } = await retryIdempotent(() =>
      request(StartChat, { input: { title, model: model || null, clientMutationId } }),
    );
    noteWrite(startChat.chatId, startChat.position);
    return startChat;
  };

  const newChat = async () => {
    setStarting(true);
    setStartError(null);
    try {
      const { chatId: id, position } = await startChat(DEFAULT_TITLE);
      void list.reload(position);
      navigate(`/chats/${encodeURIComponent(id)}`);
    } catch (e) {
      setStartError(asRequestError(e));
    } finally {
      setStarting(false);
    }
  };

  // The first message of a conversation not started yet: a chat titled after it, then the message.
  const startWith = async (content: string) => {
    const pressedAt = performance.now();
    const { chatId: id } = await startChat(titleFrom(content));
    markSend(id, pressedAt);
    try {
      const clientMutationId = newMutationId();
      const { sendMessage } = await retryIdempotent(() =>
        request(SendMessage, { input: { chatId: id, content, clientMutationId } }),
      );
      noteWrite(id, sendMessage.position);
      void list.reload(sendMessage.position);
    } catch (e) {
      cancelSendMark();
      void list.reload(listWrittenPosition());
      navigate(`/chats/${encodeURIComponent(id)}`);
      throw e;
    }
    navigate(`/chats/${encodeURIComponent(id)}`);
  };

  const onChanged = useCallback((position: number) => void list.reload(position), [list.reload]);

  return (
    <div className="chat-layout">
      <aside className="chat-sidebar" aria-label="Your chats">
        {canWrite && (
          <div className="new-chat">
            <button type="button" className="primary" onClick={() => void newChat()} disabled={starting}>
              New chat
            </button>
            <ModelPicker value={model} onChange={setModel} models={models} />
            <ErrorMessage error={startError} />
          </div>
        )}
        <ChatListView list={list} currentId={chatId} />
      </aside>
      <div className="chat-main">
        {chatId ? (
          <Conversation
            key={chatId}
            chatId={chatId}
            focusMessageId={query.get("message")}
            onChanged={onChanged}
          />
        ) : (
          <Draft canWrite={canWrite} onSend={startWith} />
        )}
      </div>
    </div>
  );
}

function Draft({ canWrite, onSend }: { canWrite: boolean; onSend: (content: string) => Promise<void> }) {
  useTitle("Chats");
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus({ preventScroll: true }), []);
  return (
    <section className="conversation" aria-labelledby="draft-title">
      <header className="chat-header">
        <h1 id="draft-title" tabIndex={-1} ref={heading}>
          {canWrite ? "Start a conversation" : "Chats"}
        </h1>
      </header>
      {canWrite ? (
        <>
          <p className="hint">Your first message starts a chat with the model chosen beside “New chat”.</p>
          <Composer onSend={onSend} />
        </>
      ) : (
        <p className="empty">Choose a chat to read it.</p>
      )}
    </section>
  );
}

function ModelPicker({
  value,
  onChange,
  models,
}: {
  value: string;
  onChange: (model: string) => void;
  models: { defaultModel: string; allowedModels: string[] } | null;
}) {
  const id = useId();
  const options = models ? [...new Set([models.defaultModel, ...models.allowedModels])] : [];
  return (
    <div className="field model-field">
      <label htmlFor={id}>Model</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)} aria-describedby={`${id}-hint`}>
        {options.length === 0 && <option value="">Tenant default</option>}
        {options.map((m) => (
          <option key={m} value={m}>
            {m === models?.defaultModel ? `${m} (default)` : m}
          </option>
        ))}
      </select>
      <small id={`${id}-hint`} className="hint">
        For new chats; a chat keeps its model.
      </small>
    </div>
  );
}

/** The model for new chats: the last one chosen in this browser if still allowed, else the default. */
function useModelChoice(): [string, (model: string) => void, { defaultModel: string; allowedModels: string[] } | null] {
  const tenant = useQuery(TenantModels, {});
  const models = tenant.data?.tenant ?? null;
  const [chosen, setChosen] = useState<string | null>(() => localStorage.getItem(MODEL_KEY));
  const allowed = models ? new Set([models.defaultModel, ...models.allowedModels]) : null;
  const value = chosen && (!allowed || allowed.has(chosen)) ? chosen : (models?.defaultModel ?? "");
  const choose = (model: string) => {
    setChosen(model);
    localStorage.setItem(MODEL_KEY, model);
  };
  return [allowed && allowed.size > 0 ? value : "", choose, models];
}

interface ChatListState {
  chats: ChatSummary[];
  loading: boolean;
  error: GraphQLRequestError | null;
  hasMore: boolean;
  loadMore: () => Promise<void>;
  reload: (afterPosition?: number | null) => Promise<void>;
}

/** The user's chats, newest first, a page at a time. */
function useChatList(): ChatListState {
  const [chats, setChats] = useState<ChatSummary[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<GraphQLRequestError | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const generation = useRef(0);

  const fetchPage = useCallback(async (after: string | null, afterPosition: number | null) => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const { chats: page } = await request(ChatList, { first: LIST_PAGE, after, afterPosition });
      if (mine !== generation.current) return;
      setChats((held) => {
        if (!after) return page.nodes;
        const seen = new Set(held.map((c) => c.id));
        return [...held, ...page.nodes.filter((c) => !seen.has(c.id))];
      });
      setCursor(page.pageInfo.endCursor ?? null);
      setHasMore(page.pageInfo.hasNextPage);
      setError(null);
    } catch (e) {
      if (mine === generation.current) setError(asRequestError(e));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    void fetchPage(null, listWrittenPosition());
  }, [fetchPage]);

  const reload = useCallback(
    (afterPosition: number | null = null) => fetchPage(null, afterPosition ?? listWrittenPosition()),
    [fetchPage],
  );
  const loadMore = useCallback(() => fetchPage(cursor, null), [fetchPage, cursor]);
  return { chats, loading, error, hasMore, loadMore, reload };
}

function ChatListView({ list, currentId }: { list: ChatListState; currentId: string | null }) {
  const { chats, loading, error, hasMore, loadMore } = list;
  return (
    <nav className="chat-list" aria-label="Chats">
      <h2 className="chat-list-title">Your chats</h2>
      <ErrorMessage error={error} />
      {chats.length === 0 && !loading && !error && <p className="empty">No chats yet.</p>}
      <ul>
        {chats.map((chat) => (
          <li key={chat.id}>
            <a
              href={`/chats/${encodeURIComponent(chat.id)}`}
              aria-current={chat.id === currentId ? "page" : undefined}
              onClick={(e) => {
                if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                e.preventDefault();
                navigate(`/chats/${encodeURIComponent(chat.id)}`);
              }}
            >
              <span className="chat-list-name">{chat.title}</span>
              <span className="chat-list-meta">
                {chat.status === "ARCHIVED" && <span className="badge">Archived</span>}
                <time dateTime={chat.lastMessageAt ?? chat.createdAt}>{formatTime(chat.lastMessageAt ?? chat.createdAt)}</time>
              </span>
            </a>
          </li>
        ))}
      </ul>
      {/* A reload after a write keeps the list in place instead of flashing a loading line. */}
      {loading && chats.length === 0 && <Loading label="Loading chats…" />}
      {hasMore && (
        <button type="button" onClick={() => void loadMore()} disabled={loading} aria-busy={loading}>
          Load more
        </button>
      )}
    </nav>
  );
}
