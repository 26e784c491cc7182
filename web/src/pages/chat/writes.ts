// What this tab wrote last, so that the next read waits for it (read-your-writes: a mutation's
// `position` passed as the next query's or subscription's `afterPosition`), and the
// send-to-first-token figure, which outlives the navigation from a new chat to its page.

const chatPositions = new Map<string, number>();
let listPosition: number | null = null;

/** Remember a mutation's position for the chat it touched and for the chat list. */
export function noteWrite(chatId: string, position: number): void {
  chatPositions.set(chatId, Math.max(position, chatPositions.get(chatId) ?? 0));
  listPosition = Math.max(position, listPosition ?? 0);
}

/** The position the next read of this chat should wait for (null: nothing written here). */
export function writtenPosition(chatId: string): number | null {
  return chatPositions.get(chatId) ?? null;
}

export function listWrittenPosition(): number | null {
  return listPosition;
}

interface PendingFirstToken {
  chatId: string;
  startedAt: number;
  /** Replies that existed when Send was pressed: their text is not the new reply's. */
  before: Set<string>;
}

let pending: PendingFirstToken | null = null;
let lastFirstTokenMs: number | null = null;

/** Send was pressed at `startedAt` (performance.now()) in this chat. */
export function markSend(chatId: string, startedAt: number, replyIds: Iterable<string> = []): void {
  pending = { chatId, startedAt, before: new Set(replyIds) };
}

export function cancelSendMark(): void {
  pending = null;
}

/** Call once replies are rendered: the first new one ends the measurement and gives its figure. */
export function firstTokenRendered(chatId: string, replyIds: Iterable<string>, now = performance.now()): number | null {
  if (!pending || pending.chatId !== chatId) return null;
  for (const id of replyIds) {
    if (!pending.before.has(id)) {
      lastFirstTokenMs = Math.round(now - pending.startedAt);
      pending = null;
      return lastFirstTokenMs;
    }
  }
  return null;
}

export function lastFirstToken(): number | null {
  return lastFirstTokenMs;
}
