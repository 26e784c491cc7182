// A conversation as the client holds it: durable messages (by log position) and the replies being
// generated, fed by pages of `chat.messages`, `sendMessage` answers and `chatEvents`. Pure, so
// that the delivery orders a dropped WebSocket can produce are all unit-tested.
import type { Citation } from "./citations";

export type MessageRole = "USER" | "ASSISTANT" | "SYSTEM";

/** A recorded message (`Message` in the SDL, the fields the conversation shows). */
export interface ChatMessage {
  id: string;
  role: MessageRole;
  content: string;
  createdAt: string;
  /** Log position of the event that recorded it. */
  position: number;
  model?: string | null;
  replyTo?: string | null;
  finishReason?: string | null;
  /** A grounded reply: the passages it was given, best first, and which it cites. */
  citations?: Citation[];
}

interface PendingDelta {
  offset: number;
  delta: string;
}

/** A reply being generated: its text so far, measured in Unicode code points like the server. */
export interface ReplyStream {
  /** The id the finished reply will have. */
  id: string;
  text: string;
  /** Code points in `text`: the offset the next delta should have. */
  length: number;
  /** Deltas that arrived ahead of a gap, applied once the gap is filled. */
  pending: PendingDelta[];
}

export interface ChatStreamState {
  /** Durable messages, unique by id, in log order. */
  messages: ChatMessage[];
  /** Replies being generated, in the order their first delta arrived. */
  streams: ReplyStream[];
  /** The user message whose reply has not been recorded yet (it drives "Stop generating"). */
  awaitingReplyTo: string | null;
  /**
   * The resume point: the highest position up to which we hold every message, from history pages
   * and the subscription (both gapless, in log order). A message known from our own sendMessage
   * answer does not move it: another tab's earlier message may still be on its way.
   */
  synced: number;
  deleted: boolean;
}

export type ChatStreamAction =
  /** A page of history, in log order and gapless. */
  | { type: "messages"; messages: ChatMessage[] }
  /** From the subscription, in log order. */
  | { type: "messageAdded"; message: ChatMessage }
  /** Our own message, from the sendMessage answer. */
  | { type: "replyDelta"; messageId: string; offset: number; delta: string }
  | { type: "sent"; message: ChatMessage }
  | { type: "stopped" }
  | { type: "chatDeleted" };

export const emptyChatStream: ChatStreamState = {
  messages: [],
  streams: [],
  awaitingReplyTo: null,
  synced: 0,
  deleted: false,
};

const codePoints = (s: string): string[] => Array.from(s);

/** Apply one delta by its offset: idempotent, tolerant of gaps, duplicates and overlaps. */
export function applyDelta(stream: ReplyStream, offset: number, delta: string): ReplyStream {
  if (offset > stream.length) {
    // Ahead of what we hold: keep it until the text before it arrives.
    if (stream.pending.some((p) => p.offset === offset && p.delta.length >= delta.length)) return stream;
    const pending = [...stream.pending.filter((p) => p.offset !== offset), { offset, delta }];
    return { ...stream, pending };
  }
  const points = codePoints(delta);
  const fresh = points.slice(stream.length - offset);
  let next = stream;
  if (fresh.length > 0) {
    next = { ...stream, text: stream.text + fresh.join(""), length: stream.length + fresh.length };
  }
  return drain(next);
}

function drain(stream: ReplyStream): ReplyStream {
  let current = stream;
  for (;;) {
    const ready = current.pending.find((p) => p.offset <= current.length);
    if (!ready) return current;
    current = applyDelta(
      { ...current, pending: current.pending.filter((p) => p !== ready) },
      ready.offset,
      ready.delta,
    );
  }
}

function byPosition(a: ChatMessage, b: ChatMessage): number {
  return a.position - b.position;
}

function mergeMessages(held: ChatMessage[], incoming: ChatMessage[]): ChatMessage[] {
  if (incoming.length === 0) return held;
  const byId = new Map(held.map((m) => [m.id, m]));
  for (const message of incoming) byId.set(message.id, message);
  return [...byId.values()].sort(byPosition);
}

function synced(state: ChatStreamState, incoming: ChatMessage[]): ChatStreamState {
  const next = settle(state, incoming);
  const synced = Math.max(state.synced, ...incoming.map((m) => m.position));
  return synced === next.synced ? next : { ...next, synced };
}

function settle(state: ChatStreamState, incoming: ChatMessage[]): ChatStreamState {
  const messages = mergeMessages(state.messages, incoming);
  const durable = new Set(incoming.map((m) => m.id));
  const streams = state.streams.filter((s) => !durable.has(s.id));
  const answered = incoming.some(
    (m) => m.role === "ASSISTANT" && m.replyTo != null && m.replyTo === state.awaitingReplyTo,
  );
  return {
    ...state,
    messages,
    streams: streams.length === state.streams.length ? state.streams : streams,
    awaitingReplyTo: answered ? null : state.awaitingReplyTo,
  };
}

export function chatStreamReducer(state: ChatStreamState, action: ChatStreamAction): ChatStreamState {
  switch (action.type) {
    case "messages":
      return synced(state, action.messages);
    case "messageAdded":
      return synced(state, [action.message]);
    case "sent": {
      const next = settle(state, [action.message]);
      // The reply may have been recorded before the sendMessage answer arrived.
      const answered = next.messages.some((m) => m.role === "ASSISTANT" && m.replyTo === action.message.id);
      return { ...next, awaitingReplyTo: answered ? null : action.message.id };
    }
    case "replyDelta": {
      // A delta of a reply already recorded is late news: the durable text wins.
      if (state.messages.some((m) => m.id === action.messageId)) return state;
      const index = state.streams.findIndex((s) => s.id === action.messageId);
      const stream = index >= 0 ? state.streams[index] : { id: action.messageId, text: "", length: 0, pending: [] };
      const next = applyDelta(stream, action.offset, action.delta);
      if (next === stream && index >= 0) return state;
      const streams = [...state.streams];
      if (index >= 0) streams[index] = next;
      else streams.push(next);
      return { ...state, streams };
    }
    case "stopped":
      // Nothing was being generated: no MessageAdded will come to end the wait.
      return state.streams.length === 0 ? { ...state, awaitingReplyTo: null } : state;
    case "chatDeleted":
      return { ...state, deleted: true, streams: [], awaitingReplyTo: null };
  }
}

/** Where to resume (or `floor`): resubscribe after it and nothing is lost. */
export function highestPosition(state: ChatStreamState, floor = 0): number {
  return Math.max(floor, state.synced);
}

/** A reply is on its way or being written. */
export function isGenerating(state: ChatStreamState): boolean {
  return state.streams.length > 0 || state.awaitingReplyTo !== null;
}
