// Typed GraphQL over HTTP and over WebSocket (graphql-transport-ws), on Parley's own API.
import { type Client, createClient } from "graphql-ws";
import type { TypedDocumentString } from "../gql/graphql";
import { session } from "./session";

export interface GraphQLErrorShape {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; retryAfterSeconds?: number; [key: string]: unknown };
}

/** A GraphQL error answer, with its stable `extensions.code` (docs/api.md). */
export class GraphQLRequestError extends Error {
  readonly code: string;
  constructor(readonly errors: GraphQLErrorShape[]) {
    super(errors.map((e) => e.message).join("; ") || "the request failed");
    this.code = errors[0]?.extensions?.code ?? "INTERNAL";
  }
}

async function post<TResult>(
  query: string,
  variables: unknown,
  token: string | null,
): Promise<{ data?: TResult | null; errors?: GraphQLErrorShape[] }> {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables: variables ?? {} }),
  });
  if (response.status >= 500) {
    throw new GraphQLRequestError([
      { message: `the server answered ${response.status}`, extensions: { code: "INTERNAL" } },
    ]);
  }
  return response.json();
}

/** Run a query or mutation; an expired access token is refreshed once and the call retried. */
export async function request<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  ...[variables]: TVariables extends Record<string, never> ? [] : [TVariables]
): Promise<TResult> {
  const query = document.toString();
  let answer = await post<TResult>(query, variables, await session.token());
  if (answer.errors?.[0]?.extensions?.code === "UNAUTHENTICATED") {
    const token = await session.refresh();
    if (token) answer = await post<TResult>(query, variables, token);
  }
  if (answer.errors?.length) {
    if (answer.errors[0].extensions?.code === "UNAUTHENTICATED") session.ended();
    throw new GraphQLRequestError(answer.errors);
  }
  return answer.data as TResult;
}

let socket: Client | null = null;
/** The server closed the socket for its token (4401/4403): sign the next one with a fresh one. */
let tokenRefused = false;
const TOKEN_REFUSED = new Set([4401, 4403]);
type SocketListener = (state: "connected" | "closed") => void;
const socketListeners = new Set<SocketListener>();

/** One WebSocket per tab; it reconnects on its own (with the current access token). */
export function liveClient(): Client {
  if (!socket) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = createClient({
      url: `${scheme}://${location.host}/graphql`,
      connectionParams: async () => {
        const token = tokenRefused ? await session.refresh().catch(() => session.token()) : await session.token();
        tokenRefused = false;
        return token ? { Authorization: `Bearer ${token}` } : {};
      },
      lazy: true,
      keepAlive: 15_000,
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => true,
      retryWait: async (retries) => {
        const base = Math.min(1000 * 2 ** retries, 10_000);
        await new Promise((resolve) => setTimeout(resolve, base / 2 + Math.random() * (base / 2)));
      },
      on: {
        connected: () => socketListeners.forEach((l) => l("connected")),
        closed: (event) => {
          if (TOKEN_REFUSED.has((event as CloseEvent | undefined)?.code ?? 0)) tokenRefused = true;
          socketListeners.forEach((l) => l("closed"));
        },
      },
    });
  }
  return socket;
}

export function onSocketState(listener: SocketListener): () => void {
  socketListeners.add(listener);
  return () => socketListeners.delete(listener);
}

/** Close the tab's WebSocket (signing out; tests that drop the connection). */
export function closeLive(): void {
  socket?.dispose();
  socket = null;
}

export interface LiveSink<T> {
  next: (value: T) => void;
  error?: (error: GraphQLRequestError) => void;
  complete?: () => void;
}

/** Subscribe with a typed document; returns the function that ends the subscription. */
export function subscribe<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  sink: LiveSink<TResult>,
): () => void {
  return liveClient().subscribe<TResult>(
    { query: document.toString(), variables: variables as Record<string, unknown> },
    {
      next: (value) => {
        if (value.errors?.length) {
          sink.error?.(new GraphQLRequestError(value.errors as GraphQLErrorShape[]));
        } else if (value.data) {
          sink.next(value.data as TResult);
        }
      },
      error: (error) => {
        const errors = Array.isArray(error)
          ? (error as GraphQLErrorShape[])
          : [{ message: String((error as Error)?.message ?? error), extensions: { code: "INTERNAL" } }];
        sink.error?.(new GraphQLRequestError(errors));
      },
      complete: () => sink.complete?.(),
    },
  );
}
