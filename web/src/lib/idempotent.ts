// Mutations that carry a clientMutationId may be sent again: the server answers a repeat with
// the first result and records nothing new, so a network failure is retried with the same id.
import { asRequestError } from "./hooks";

/** Failures after which the request may or may not have been recorded. */
const UNCERTAIN = new Set(["NETWORK", "INTERNAL", "INTERNAL_SERVER_ERROR"]);

export interface RetryOptions {
  attempts?: number;
  /** Wait before retry n (1-based), in milliseconds. */
  delay?: (retry: number) => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Run `send` until it succeeds, fails with an answer, or runs out of attempts. */
export async function retryIdempotent<T>(
  send: () => Promise<T>,
  { attempts = 4, delay = (n) => 400 * 2 ** (n - 1), sleep = (ms) => new Promise((r) => setTimeout(r, ms)) }: RetryOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (e) {
      const error = asRequestError(e);
      if (attempt >= attempts || !UNCERTAIN.has(error.code)) throw error;
      await sleep(delay(attempt));
    }
  }
}

/** A fresh clientMutationId. */
export function newMutationId(): string {
  return crypto.randomUUID();
}
