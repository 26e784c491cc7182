// While documents are processed in the background (PROCESSING → READY or FAILED), the page
// asks again: soon at first, then less and less often, and not at all once every document has
// settled. Pure decisions, so that the schedule is unit-tested.

export const POLL_FIRST_MS = 1000;
export const POLL_FACTOR = 1.5;
export const POLL_MAX_MS = 15_000;

/** How long to wait before poll number `round` (0 for the first). */
export function pollDelay(round: number): number {
  return Math.min(POLL_MAX_MS, Math.round(POLL_FIRST_MS * POLL_FACTOR ** Math.max(0, round)));
}

/** A document still being processed: the reason to keep polling. */
export const isSettled = (status: string): boolean => status !== "PROCESSING";

/** The documents to ask about again, in a stable order (their ids). */
export function pendingIds(documents: readonly { id: string; status: string }[]): string[] {
  return documents
    .filter((d) => !isSettled(d.status))
    .map((d) => d.id)
    .sort();
}

/**
 * The round to continue at when the pending documents change from `before` to `after`: a
 * document that has just started processing (an upload, a reprocessing) is worth asking about
 * soon, so the backoff starts over; documents settling leave it as it was.
 */
export function nextRound(before: readonly string[], after: readonly string[], round: number): number {
  const known = new Set(before);
  return after.some((id) => !known.has(id)) ? 0 : round;
}
