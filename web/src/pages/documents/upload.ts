// Sending a file to `POST /documents` (multipart, api/documents_http.py) with XMLHttpRequest,
// whose upload events give progress (fetch reports none for a request body), and what the
// server's refusals mean to the person uploading.
import { describeError } from "../../components/ui";
import type { DocumentCollection } from "../../gql/graphql";
import { session } from "../../lib/session";

export interface Uploaded {
  documentId: string;
  /** Pass as afterPosition to read the document. */
  position: number;
  /** The same clientMutationId was seen before: nothing new was recorded. */
  duplicate: boolean;
}

export interface UploadFailure {
  code: string;
  message: string;
  /** The HTTP status; 0 when no answer arrived. */
  status: number;
  retryAfterSeconds?: number;
}

export class UploadError extends Error {
  constructor(readonly failure: UploadFailure) {
    super(failure.message);
  }
}

const CODE_OF_STATUS: Record<number, string> = {
  400: "BAD_USER_INPUT",
  401: "UNAUTHENTICATED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  413: "PAYLOAD_TOO_LARGE",
  429: "RATE_LIMITED",
};

/**
 * A refusal from either shape the server answers with: the endpoint's `{error: {code, message}}`
 * or the body limit's `{errors: [{message, extensions: {code}}]}`, which stops an oversized body
 * before the endpoint sees it.
 */
export function uploadFailure(status: number, body: unknown): UploadFailure {
  if (status === 0) {
    return { code: "NETWORK", message: "the upload did not reach Parley", status };
  }
  const answer = (body ?? {}) as {
    error?: { code?: string; message?: string; retryAfterSeconds?: number };
    errors?: { message?: string; extensions?: { code?: string; retryAfterSeconds?: number } }[];
  };
  const error = answer.error ?? {
    code: answer.errors?.[0]?.extensions?.code,
    message: answer.errors?.[0]?.message,
    retryAfterSeconds: answer.errors?.[0]?.extensions?.retryAfterSeconds,
  };
  const code = error.code ?? CODE_OF_STATUS[status] ?? "INTERNAL";
  const failure: UploadFailure = { code, message: error.message || `the server answered ${status}`, status };
  if (typeof error.retryAfterSeconds === "number") failure.retryAfterSeconds = error.retryAfterSeconds;
  return failure;
}

/** A server sentence ("the file is a PNG image; …") as a sentence of its own. */
function sentence(text: string): string {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** What a failed upload says to the person who sent `file`. */
export function describeUploadFailure(failure: UploadFailure, file: { size: number }): string {
  switch (failure.code) {
    case "BAD_USER_INPUT":
      // The server says what the file is and what Parley reads instead (docs/knowledge.md).
      return sentence(failure.message);
    case "PAYLOAD_TOO_LARGE":
      return `The file is ${formatBytes(file.size)}, more than Parley accepts for one document. Split it into smaller documents.`;
    case "RATE_LIMITED":
      return failure.retryAfterSeconds
        ? `Too many requests: try again in ${Math.ceil(failure.retryAfterSeconds)} s.`
        : "Too many requests: try again shortly.";
    case "FORBIDDEN":
      return "You may not add documents to this collection.";
    case "NETWORK":
      return "The upload did not reach Parley. Check your connection and try again.";
    case "CANCELLED":
      return "Upload cancelled.";
    case "INTERNAL":
    case "UNAVAILABLE":
      return "Parley could not take the file just now. Try again in a moment.";
    default:
      return describeError(failure);
  }
}

/** Sending the same file again (the same clientMutationId, so never twice recorded) may work. */
export function mayRetry(failure: UploadFailure): boolean {
  return ["NETWORK", "RATE_LIMITED", "INTERNAL", "UNAVAILABLE", "CANCELLED"].includes(failure.code);
}

/** 1536 → "1.5 KB" (binary units, as the server's limits are written). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export interface UploadOptions {
  collection: DocumentCollection;
  clientMutationId: string;
  /** Bytes of the request sent so far, of `total`. */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/** Upload `file`; an expired access token is refreshed once and the upload sent again. */
export async function uploadDocument(file: File, options: UploadOptions): Promise<Uploaded> {
  let answer = await send(file, await session.token(), options);
  if (answer.status === 401) {
    const token = await session.refresh();
    if (token) answer = await send(file, token, options);
  }
  if (answer.status === 200 || answer.status === 201) return answer.body as Uploaded;
  const failure = uploadFailure(answer.status, answer.body);
  if (failure.code === "UNAUTHENTICATED") session.ended();
  throw new UploadError(failure);
}

function send(
  file: File,
  token: string | null,
  { collection, clientMutationId, onProgress, signal }: UploadOptions,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const cancelled = () =>
      reject(new UploadError({ code: "CANCELLED", message: "the upload was cancelled", status: 0 }));
    if (signal?.aborted) return cancelled();
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("collection", collection.toLowerCase());
    form.append("clientMutationId", clientMutationId);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/documents");
    xhr.responseType = "json";
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
    // An oversized body may be refused by closing the connection before the answer is read.
    xhr.onerror = () => resolve({ status: 0, body: null });
    xhr.onabort = cancelled;
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}
