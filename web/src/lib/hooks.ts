import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import type { TypedDocumentString } from "../gql/graphql";
import { GraphQLRequestError, request } from "./graphql";
import { type SessionUser, session } from "./session";

export function useSessionUser(): SessionUser | null {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.user,
  );
}

export interface QueryState<T> {
  data: T | undefined;
  error: GraphQLRequestError | undefined;
  loading: boolean;
  reload: () => Promise<void>;
}

/** Run a query when its variables change; `reload` runs it again. Stale answers are dropped. */
export function useQuery<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  { skip = false }: { skip?: boolean } = {},
): QueryState<TResult> {
  const [data, setData] = useState<TResult>();
  const [error, setError] = useState<GraphQLRequestError>();
  const [loading, setLoading] = useState(!skip);
  const key = JSON.stringify(variables);
  const generation = useRef(0);

  const run = useCallback(async () => {
    if (skip) return;
    const mine = ++generation.current;
    setLoading(true);
    try {
      // biome-ignore lint: the variables are those of the typed document
      const result = await (request as any)(document, JSON.parse(key));
      if (mine === generation.current) {
        setData(result);
        setError(undefined);
      }
    } catch (e) {
      if (mine === generation.current) setError(asRequestError(e));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, [document, key, skip]);

  useEffect(() => {
    void run();
  }, [run]);

  return { data, error, loading, reload: run };
}

export function asRequestError(e: unknown): GraphQLRequestError {
  if (e instanceof GraphQLRequestError) return e;
  return new GraphQLRequestError([
    { message: e instanceof Error ? e.message : String(e), extensions: { code: "NETWORK" } },
  ]);
}

/** A mutation: `run` returns the result or throws; `pending` and `error` for the form. */
export function useMutation<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<GraphQLRequestError>();
  const run = useCallback(
    async (variables: TVariables): Promise<TResult> => {
      setPending(true);
      setError(undefined);
      try {
        // biome-ignore lint: the variables are those of the typed document
        return await (request as any)(document, variables);
      } catch (e) {
        const err = asRequestError(e);
        setError(err);
        throw err;
      } finally {
        setPending(false);
      }
    },
    [document],
  );
  return { run, pending, error, reset: () => setError(undefined) };
}
