// The documents the user may read, newest first, a page at a time, kept current while any of
// them is being processed (polling.ts decides when to ask again).
import { useCallback, useEffect, useRef, useState } from "react";
import type { DocumentCollection, DocumentFieldsFragment } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError } from "../../lib/hooks";
import { DocumentById, Documents } from "./operations";
import { isSettled, nextRound, pendingIds, pollDelay } from "./polling";

export type DocumentRow = DocumentFieldsFragment;

const PAGE = 20;

let written: number | null = null;

/** Remember a document write's position: the next reads wait for it (read-your-writes). */
export function noteDocumentWrite(position: number): void {
  written = Math.max(position, written ?? 0);
}

/** The position reads of the documents should wait for (null: nothing written in this tab). */
export function documentsWrittenPosition(): number | null {
  return written;
}

export interface DocumentList {
  documents: DocumentRow[];
  loading: boolean;
  /** The first page has arrived (for the empty state). */
  loaded: boolean;
  error: GraphQLRequestError | null;
  hasMore: boolean;
  loadMore: () => Promise<void>;
  /** Start over from the first page, after a write at `position`. */
  reload: (position?: number) => Promise<void>;
  /** A document as a mutation's read returned it. */
  replace: (document: DocumentRow) => void;
  remove: (id: string) => void;
  /** The last document that finished processing while the page watched it. */
  settled: DocumentRow | null;
}

export function useDocuments(collection: DocumentCollection | null): DocumentList {
  const [documents, setDocuments] = useState<DocumentRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<GraphQLRequestError | null>(null);
  const [settled, setSettled] = useState<DocumentRow | null>(null);
  const generation = useRef(0);

  const fetchPage = useCallback(
    async (after: string | null) => {
      const mine = after === null ? ++generation.current : generation.current;
      setLoading(true);
      try {
        const { documents: page } = await request(Documents, {
          collection,
          first: PAGE,
          after,
          afterPosition: written,
        });
        if (mine !== generation.current) return;
        setDocuments((held) => {
          if (after === null) return page.nodes;
          const seen = new Set(held.map((d) => d.id));
          return [...held, ...page.nodes.filter((d) => !seen.has(d.id))];
        });
        setCursor(page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? null) : null);
        setHasMore(page.pageInfo.hasNextPage);
        setError(null);
        setLoaded(true);
      } catch (e) {
        if (mine === generation.current) setError(asRequestError(e));
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [collection],
  );

  useEffect(() => {
    void fetchPage(null);
  }, [fetchPage]);

  const reload = useCallback(
    (position?: number) => {
      if (position !== undefined) noteDocumentWrite(position);
      return fetchPage(null);
    },
    [fetchPage],
  );
  const loadMore = useCallback(() => (cursor ? fetchPage(cursor) : Promise.resolve()), [fetchPage, cursor]);
  const replace = useCallback(
    (document: DocumentRow) => setDocuments((held) => held.map((d) => (d.id === document.id ? document : d))),
    [],
  );
  const remove = useCallback((id: string) => setDocuments((held) => held.filter((d) => d.id !== id)), []);

  // Ask again about the documents being processed until none is.
  const pending = pendingIds(documents).join(" ");
  const [polls, setPolls] = useState(0);
  const round = useRef(0);
  const watched = useRef<string[]>([]);
  useEffect(() => {
    const ids = pending ? pending.split(" ") : [];
    round.current = nextRound(watched.current, ids, round.current);
    watched.current = ids;
    if (ids.length === 0) return;
    let stopped = false;
    const timer = setTimeout(async () => {
      for (const id of ids) {
        try {
          const { document } = await request(DocumentById, { id, afterPosition: written });
          if (stopped) return;
          replace(document);
          if (isSettled(document.status)) setSettled(document);
        } catch (e) {
          if (stopped) return;
          // Deleted meanwhile (another tab): it leaves the list; other failures wait for the next round.
          if (asRequestError(e).code === "NOT_FOUND") remove(id);
        }
      }
      if (stopped) return;
      round.current += 1;
      setPolls((n) => n + 1);
    }, pollDelay(round.current));
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [pending, polls, replace, remove]);

  return { documents, loading, loaded, error, hasMore, loadMore, reload, replace, remove, settled };
}
