import { describe, expect, it } from "vitest";
import {
  type ChatMessage,
  type ChatStreamAction,
  type ChatStreamState,
  applyDelta,
  chatStreamReducer,
  emptyChatStream,
  highestPosition,
  isGenerating,
} from "./chatStream";

const user = (id: string, position: number, content = `hello ${id}`): ChatMessage => ({
  id,
  role: "USER",
  content,
  createdAt: "2025-01-01T00:00:00Z",
  position,
});

const reply = (id: string, position: number, replyTo: string, content = "done", finishReason = "stop"): ChatMessage => ({
  id,
  role: "ASSISTANT",
  content,
  createdAt: "2025-01-01T00:00:01Z",
  position,
  replyTo,
  model: "echo",
  finishReason,
});

const delta = (messageId: string, offset: number, text: string): ChatStreamAction => ({
  type: "replyDelta",
  messageId,
  offset,
  delta: text,
});

const run = (...actions: ChatStreamAction[]): ChatStreamState =>
  actions.reduce(chatStreamReducer, emptyChatStream);

const streamText = (state: ChatStreamState, id = "r1") => state.streams.find((s) => s.id === id)?.text;

describe("reply deltas", () => {
  it("append in order", () => {
    expect(streamText(run(delta("r1", 0, "Hel"), delta("r1", 3, "lo"), delta("r1", 5, "!")))).toBe("Hello!");
  });

  it("ignore a duplicated delta", () => {
    const state = run(delta("r1", 0, "Hel"), delta("r1", 3, "lo"), delta("r1", 3, "lo"));
    expect(streamText(state)).toBe("Hello");
  });

  it("ignore a delta already covered, returning the same state", () => {
    const before = run(delta("r1", 0, "Hello"));
    expect(chatStreamReducer(before, delta("r1", 1, "ell"))).toBe(before);
  });

  it("take only the new part of an overlapping delta", () => {
    expect(streamText(run(delta("r1", 0, "Hel"), delta("r1", 1, "ello")))).toBe("Hello");
  });

  it("hold a delta that arrives ahead of a gap until the gap is filled", () => {
    const gapped = run(delta("r1", 0, "Hel"), delta("r1", 5, " world"));
    expect(streamText(gapped)).toBe("Hel");
    expect(streamText(chatStreamReducer(gapped, delta("r1", 3, "lo")))).toBe("Hello world");
  });

  it("assemble deltas delivered in reverse order", () => {
    expect(streamText(run(delta("r1", 6, "c"), delta("r1", 3, "b  "), delta("r1", 0, "a  ")))).toBe("a  b  c");
  });

  it("accept the text so far at offset 0 after a resubscribe without doubling it", () => {
    const state = run(delta("r1", 0, "Hel"), delta("r1", 3, "lo"), delta("r1", 0, "Hello wo"), delta("r1", 8, "rld"));
    expect(streamText(state)).toBe("Hello world");
  });

  it("accept the text so far at offset 0 as the first delta a late subscriber sees", () => {
    expect(streamText(run(delta("r1", 0, "Hello wo"), delta("r1", 8, "rld")))).toBe("Hello world");
  });

  it("count offsets in code points, as the server does", () => {
    const state = run(delta("r1", 0, "a😀"), delta("r1", 2, "b"), delta("r1", 1, "😀b"));
    expect(streamText(state)).toBe("a😀b");
    expect(state.streams[0].length).toBe(3);
  });

  it("keep replies of different messages apart", () => {
    const state = run(delta("r1", 0, "one"), delta("r2", 0, "two"));
    expect(state.streams.map((s) => [s.id, s.text])).toEqual([
      ["r1", "one"],
      ["r2", "two"],
    ]);
  });

  it("apply a pending delta exactly once", () => {
    const stream = { id: "r1", text: "", length: 0, pending: [] };
    const ahead = applyDelta(applyDelta(stream, 2, "cd"), 2, "cd");
    expect(ahead.pending).toHaveLength(1);
    expect(applyDelta(ahead, 0, "ab").text).toBe("abcd");
    expect(applyDelta(ahead, 0, "ab").pending).toHaveLength(0);
  });
});

describe("durable messages", () => {
  it("replace the streaming text when the reply is recorded", () => {
    const state = run(delta("r1", 0, "Hel"), { type: "messageAdded", message: reply("r1", 7, "u1", "Hello") });
    expect(state.streams).toHaveLength(0);
    expect(state.messages.map((m) => m.content)).toEqual(["Hello"]);
  });

  it("ignore deltas that arrive after the reply is recorded", () => {
    const recorded = run({ type: "messageAdded", message: reply("r1", 7, "u1", "Hello") });
    expect(chatStreamReducer(recorded, delta("r1", 3, "lo"))).toBe(recorded);
  });

  it("are deduplicated by id (a replay after reconnecting)", () => {
    const state = run(
      { type: "messages", messages: [user("u1", 5), reply("r1", 7, "u1")] },
      { type: "messageAdded", message: user("u1", 5) },
      { type: "messageAdded", message: reply("r1", 7, "u1") },
    );
    expect(state.messages.map((m) => m.id)).toEqual(["u1", "r1"]);
  });

  it("are ordered by log position whatever the arrival order", () => {
    const state = run(
      { type: "messageAdded", message: reply("r2", 12, "u2") },
      { type: "messages", messages: [user("u1", 5), reply("r1", 7, "u1")] },
      { type: "messageAdded", message: user("u2", 10) },
    );
    expect(state.messages.map((m) => m.position)).toEqual([5, 7, 10, 12]);
  });

  it("give the highest position to resubscribe after", () => {
    const state = run({ type: "messages", messages: [user("u1", 5), reply("r1", 9, "u1")] });
    expect(highestPosition(state)).toBe(9);
    expect(highestPosition(emptyChatStream, 3)).toBe(3);
  });

  it("resume after what history and the subscription gave, not after our own sent message", () => {
    // Another tab's message (position 8) may not have arrived when our send answer (9) does.
    const state = run(
      { type: "messages", messages: [user("u1", 5), reply("r1", 7, "u1")] },
      { type: "sent", message: user("u3", 9) },
    );
    expect(highestPosition(state)).toBe(7);
    const caughtUp = chatStreamReducer(state, { type: "messageAdded", message: user("u2", 8) });
    expect(highestPosition(caughtUp)).toBe(8);
    expect(caughtUp.messages.map((m) => m.id)).toEqual(["u1", "r1", "u2", "u3"]);
  });
});

describe("waiting for a reply", () => {
  it("starts when a message is sent and ends when its reply is recorded", () => {
    const sent = run({ type: "sent", message: user("u1", 5) });
    expect(isGenerating(sent)).toBe(true);
    const answered = chatStreamReducer(sent, { type: "messageAdded", message: reply("r1", 7, "u1") });
    expect(isGenerating(answered)).toBe(false);
  });

  it("does not start when the reply was recorded before the send answer arrived", () => {
    const state = run(
      { type: "messageAdded", message: user("u1", 5) },
      { type: "messageAdded", message: reply("r1", 7, "u1") },
      { type: "sent", message: user("u1", 5) },
    );
    expect(isGenerating(state)).toBe(false);
    expect(state.messages).toHaveLength(2);
  });

  it("ends on stop when nothing is being generated", () => {
    const state = run({ type: "sent", message: user("u1", 5) }, { type: "stopped" });
    expect(isGenerating(state)).toBe(false);
  });

  it("goes on after stop while a reply streams, until it is recorded as cancelled", () => {
    const stopped = run({ type: "sent", message: user("u1", 5) }, delta("r1", 0, "He"), { type: "stopped" });
    expect(isGenerating(stopped)).toBe(true);
    const recorded = chatStreamReducer(stopped, {
      type: "messageAdded",
      message: reply("r1", 7, "u1", "He", "cancelled"),
    });
    expect(isGenerating(recorded)).toBe(false);
    expect(recorded.messages[1].finishReason).toBe("cancelled");
  });
});

it("a deleted chat drops its streams", () => {
  const state = run(delta("r1", 0, "Hel"), { type: "chatDeleted" });
  expect(state.deleted).toBe(true);
  expect(state.streams).toHaveLength(0);
});
