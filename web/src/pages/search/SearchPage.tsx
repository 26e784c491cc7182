// Full-text search over the user's messages and chat titles (`/search?q=…`); a hit opens its
// chat at the message. The Documents tab (`/search?in=documents&q=…`) searches the passages of
// the documents the user may read (KnowledgeSearch).
import { useEffect, useId, useState } from "react";
import { Empty, ErrorMessage, Loading, Page, formatTime } from "../../components/ui";
import { graphql } from "../../gql";
import type { SearchMessagesQuery } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError } from "../../lib/hooks";
import { navigate, useLocation, useTitle } from "../../lib/router";
import { highlightSegments } from "../../lib/searchHighlight";
import { KnowledgeSearch } from "./KnowledgeSearch";
import { searchHref, searchKind } from "./routes";

const SearchMessages = graphql(`
  query SearchMessages($query: String!, $first: Int!, $after: String) {
    searchMessages(query: $query, first: $first, after: $after) {
      nodes {
        kind
        chatId
        chatTitle
        messageId
        role
        highlights
        content
        createdAt
        position
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

type Hit = SearchMessagesQuery["searchMessages"]["nodes"][number];

const PAGE = 20;
const ROLE: Record<string, string> = { USER: "You", ASSISTANT: "Assistant", SYSTEM: "System" };

/** Where a hit opens: its chat, at its message when it is one. */
export function hitHref(hit: Pick<Hit, "chatId" | "messageId">): string {
  const chat = `/chats/${encodeURIComponent(hit.chatId)}`;
  return hit.messageId ? `${chat}?message=${encodeURIComponent(hit.messageId)}` : chat;
}

export function SearchPage() {
  const { query } = useLocation();
  const q = (query.get("q") ?? "").trim();
  const kind = searchKind(query.get("in"));
  useTitle(q ? `Search: ${q}` : "Search");
  return (
    <Page title="Search">
      <nav aria-label="Search in">
        <ul className="tabs">
          {(["messages", "documents"] as const).map((k) => (
            <li key={k}>
              <a
                href={searchHref(k, q)}
                aria-current={k === kind ? "page" : undefined}
                onClick={(e) => {
                  if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                  e.preventDefault();
                  navigate(searchHref(k, q));
                }}
              >
                {k === "messages" ? "Messages" : "Documents"}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {kind === "documents" ? <KnowledgeSearch q={q} mode={query.get("mode")} /> : <MessageSearch q={q} />}
    </Page>
  );
}

function MessageSearch({ q }: { q: string }) {
  const [text, setText] = useState(q);
  const [hits, setHits] = useState<Hit[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<GraphQLRequestError | null>(null);
  const inputId = useId();

  useEffect(() => setText(q), [q]);

  useEffect(() => {
    setHits([]);
    setCursor(null);
    setHasMore(false);
    setError(null);
    if (!q) return;
    let cancelled = false;
    setLoading(true);
    request(SearchMessages, { query: q, first: PAGE, after: null })
      .then(({ searchMessages }) => {
        if (cancelled) return;
        setHits(searchMessages.nodes);
        setCursor(searchMessages.pageInfo.endCursor ?? null);
        setHasMore(searchMessages.pageInfo.hasNextPage);
      })
      .catch((e) => !cancelled && setError(asRequestError(e)))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
  }, [q]);

  const loadMore = async () => {
    setLoading(true);
    try {
      const { searchMessages } = await request(SearchMessages, { query: q, first: PAGE, after: cursor });
      setHits((held) => [...held, ...searchMessages.nodes]);
      setCursor(searchMessages.pageInfo.endCursor ?? null);
      setHasMore(searchMessages.pageInfo.hasNextPage);
    } catch (e) {
      setError(asRequestError(e));
    } finally {
      setLoading(false);
    }
  };

  return (
    <>
      <form
        role="search"
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          const next = text.trim();
          navigate(searchHref("messages", next));
        }}
      >
        <label htmlFor={inputId}>Search messages</label>
        <div className="search-row">
          <input
            id={inputId}
            type="text"
            inputMode="search"
            enterKeyHint="search"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder='Words, "an exact phrase", -excluded'
            autoComplete="off"
          />
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </form>
      <ErrorMessage error={error} />
      {q && !loading && !error && hits.length === 0 && <Empty>Nothing matches “{q}”.</Empty>}
      {hits.length > 0 && (
        <>
          <h2 className="visually-hidden">Results</h2>
          <ol className="search-hits">
            {hits.map((hit) => (
              <li key={`${hit.kind}-${hit.messageId ?? hit.chatId}-${hit.position}`}>
                <SearchHitView hit={hit} />
              </li>
            ))}
          </ol>
        </>
      )}
      {loading && <Loading label="Searching…" />}
      {hasMore && !loading && (
        <button type="button" onClick={() => void loadMore()}>
          More results
        </button>
      )}
    </>
  );
}

function SearchHitView({ hit }: { hit: Hit }) {
  const href = hitHref(hit);
  const who = hit.kind === "CHAT_TITLE" ? "Chat title" : (ROLE[hit.role ?? ""] ?? "Message");
  // One link per hit, its name the title and the matching text, so it reads well in a links list.
  return (
    <a
      className="search-hit"
      href={href}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      <span className="search-hit-title">{hit.chatTitle}</span>
      <span className="search-hit-meta">
        <span>{who}</span>
        <time dateTime={hit.createdAt}>{formatTime(hit.createdAt)}</time>
      </span>
      {hit.highlights.length > 0 ? (
        hit.highlights.map((fragment, i) => (
          // Fragments have no identity but their place.
          <span key={i} className="search-hit-fragment">
            {highlightSegments(fragment).map((segment, j) =>
              segment.match ? <em key={j}>{segment.text}</em> : segment.text,
            )}
          </span>
        ))
      ) : (
        <span className="search-hit-fragment">{hit.content.slice(0, 240)}</span>
      )}
    </a>
  );
}
