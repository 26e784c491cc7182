// @vitest-environment node
import { describe, expect, it } from "vitest";
import { isSettled, nextRound, POLL_FIRST_MS, POLL_MAX_MS, pendingIds, pollDelay } from "./polling";

describe("the polling schedule", () => {
  it("asks again soon at first, then less and less often", () => {
    const delays = [0, 1, 2, 3, 4].map(pollDelay);
    expect(delays[0]).toBe(POLL_FIRST_MS);
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]);
  });

  it("never waits longer than its cap, however long processing takes", () => {
    expect(pollDelay(50)).toBe(POLL_MAX_MS);
    expect(pollDelay(10_000)).toBe(POLL_MAX_MS);
  });

  it("treats a negative round as the first", () => {
    expect(pollDelay(-3)).toBe(POLL_FIRST_MS);
  });
});

describe("what to poll", () => {
  const docs = [
    { id: "b", status: "PROCESSING" },
    { id: "a", status: "READY" },
    { id: "c", status: "FAILED" },
    { id: "a2", status: "PROCESSING" },
  ];

  it("only documents still processing; ready and failed ones have settled", () => {
    expect(pendingIds(docs)).toEqual(["a2", "b"]);
    expect(isSettled("READY")).toBe(true);
    expect(isSettled("FAILED")).toBe(true);
    expect(isSettled("PROCESSING")).toBe(false);
  });

  it("nothing once every document has settled: polling stops", () => {
    expect(pendingIds(docs.map((d) => ({ ...d, status: "READY" })))).toEqual([]);
    expect(pendingIds([])).toEqual([]);
  });
});

describe("the backoff", () => {
  it("starts over when a document starts processing (an upload, a reprocessing)", () => {
    expect(nextRound(["a"], ["a", "b"], 6)).toBe(0);
    expect(nextRound([], ["a"], 3)).toBe(0);
  });

  it("goes on when documents settle or nothing changed", () => {
    expect(nextRound(["a", "b"], ["b"], 4)).toBe(4);
    expect(nextRound(["a"], ["a"], 2)).toBe(2);
    expect(nextRound(["a"], [], 5)).toBe(5);
  });
});
