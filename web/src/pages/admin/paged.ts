// A list read page by page (Relay connections: first/after): the first page when the variables
// change, `loadMore` appends the next one, `reload` starts over. Stale answers are dropped.
import { useCallback, useEffect, useRef, useState } from "react";
import type { TypedDocumentString } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError } from "../../lib/hooks";

export interface Page<TNode> {
  nodes: TNode[];
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

export interface Paged<TNode> {
  nodes: TNode[];
  loading: boolean;
  /** The first page has arrived (for the empty state). */
  loaded: boolean;
  error: GraphQLRequestError | undefined;
  hasMore: boolean;
  loadMore: () => Promise<void>;
  reload: () => Promise<void>;
}

export function usePaged<TResult, TVars extends { after?: string | null }, TNode>(
  document: TypedDocumentString<TResult, TVars>,
  variables: Omit<TVars, "after">,
  page: (result: TResult) => Page<TNode> | null | undefined,
  { skip = false }: { skip?: boolean } = {},
): Paged<TNode> {
  const [nodes, setNodes] = useState<TNode[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<GraphQLRequestError>();
  const [loading, setLoading] = useState(!skip);
  const [loaded, setLoaded] = useState(false);
  const key = JSON.stringify(variables);
  const generation = useRef(0);
  const select = useRef(page);
  select.current = page;

  const load = useCallback(
    async (after: string | null) => {
      const mine = after === null ? ++generation.current : generation.current;
      setLoading(true);
      try {
        const run = request as unknown as (d: typeof document, v: TVars) => Promise<TResult>;
        const result = await run(document, { ...JSON.parse(key), after } as TVars);
        if (mine !== generation.current) return;
        const p = select.current(result);
        setNodes((prev) => (after === null ? (p?.nodes ?? []) : [...prev, ...(p?.nodes ?? [])]));
        setNext(p?.pageInfo.hasNextPage ? (p.pageInfo.endCursor ?? null) : null);
        setError(undefined);
        setLoaded(true);
      } catch (e) {
        if (mine === generation.current) setError(asRequestError(e));
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [document, key],
  );

  useEffect(() => {
    if (!skip) {
      void load(null);
      return;
    }
    generation.current++;
    setNodes([]);
    setNext(null);
    setError(undefined);
    setLoaded(false);
    setLoading(false);
  }, [load, skip]);

  return {
    nodes,
    loading,
    loaded,
    error,
    hasMore: next !== null,
    loadMore: async () => {
      if (next !== null) await load(next);
    },
    reload: () => load(null),
  };
}
