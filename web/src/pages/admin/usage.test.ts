import { describe, expect, it } from "vitest";
import { daysOf, formatMeasure, formatUsd, lastDays, perDay, perKey, rangeProblem, shortDay, totals } from "./usage";

const row = (over: Partial<Parameters<typeof totals>[0][number]>) => ({
  userMessages: 0,
  assistantMessages: 0,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: 0,
  ...over,
});

describe("ranges", () => {
  it("the last 30 days end today (UTC) and include it", () => {
    expect(lastDays(30, new Date("2026-03-10T23:30:00Z"))).toEqual({ from: "2026-02-09", to: "2026-03-10" });
  });

  it("lists every day, across months, both ends included", () => {
    expect(daysOf("2026-02-27", "2026-03-02")).toEqual(["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]);
    expect(daysOf("2026-03-02", "2026-03-01")).toEqual([]);
    expect(daysOf("nonsense", "2026-03-01")).toEqual([]);
  });

  it("refuses a backwards or empty range", () => {
    expect(rangeProblem("2026-03-02", "2026-03-01")).toMatch(/on or after/);
    expect(rangeProblem("", "2026-03-01")).toMatch(/both/);
    expect(rangeProblem("2026-03-01", "2026-03-01")).toBeNull();
  });
});

describe("series", () => {
  it("fills days without usage with zero", () => {
    const bars = perDay([row({ day: "2026-03-02", userMessages: 2, assistantMessages: 2 })], "2026-03-01", "2026-03-03", "messages");
    expect(bars.map((b) => [b.label, b.value])).toEqual([
      ["2026-03-01", 0],
      ["2026-03-02", 4],
      ["2026-03-03", 0],
    ]);
    expect(bars[1].short).toBe("Mar 2");
  });

  it("sums per key, largest first, with the key's name", () => {
    const rows = [
      row({ userId: "u1", inputTokens: 10, outputTokens: 5 }),
      row({ userId: "u2", inputTokens: 100 }),
      row({ userId: null, inputTokens: 1 }),
    ];
    expect(perKey(rows, (r) => r.userId, "tokens", (id) => `${id}@x`)).toEqual([
      { label: "u2@x", value: 100 },
      { label: "u1@x", value: 15 },
      { label: "(none)", value: 1 },
    ]);
  });

  it("totals every figure", () => {
    const t = totals([row({ userMessages: 1, costUsd: 0.5 }), row({ assistantMessages: 2, costUsd: 0.25 })]);
    expect(t).toEqual({ userMessages: 1, assistantMessages: 2, inputTokens: 0, outputTokens: 0, costUsd: 0.75 });
  });
});

describe("formatting", () => {
  it("shows cents, and more digits below a cent", () => {
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatUsd(0.0042)).toBe("$0.0042");
    expect(formatUsd(1234.5)).toBe("$1,234.50");
  });

  it("counts with units", () => {
    expect(formatMeasure("messages")(1)).toBe("1 message");
    expect(formatMeasure("tokens")(12345)).toBe("12,345 tokens");
  });

  it("labels a day without shifting it to the local zone", () => {
    expect(shortDay("2026-01-01")).toBe("Jan 1");
  });
});
