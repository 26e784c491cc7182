import { describe, expect, it } from "vitest";
import { localInputToUtcIso, utcToLocalInput } from "./time";

describe("datetime-local and UTC", () => {
  it("converts a local time to the same moment in UTC", () => {
    const iso = localInputToUtcIso("2026-03-01T14:30");
    expect(iso).toBe(new Date(2026, 2, 1, 14, 30).toISOString());
    expect(iso?.endsWith("Z")).toBe(true);
  });

  it("keeps seconds", () => {
    expect(localInputToUtcIso("2026-03-01T14:30:15")).toBe(new Date(2026, 2, 1, 14, 30, 15).toISOString());
  });

  it("refuses what is not a time, and days that do not exist", () => {
    expect(localInputToUtcIso("")).toBeNull();
    expect(localInputToUtcIso("yesterday")).toBeNull();
    expect(localInputToUtcIso("2026-02-31T10:00")).toBeNull();
  });

  it("round-trips through the input's value", () => {
    const moment = new Date(2026, 10, 20, 9, 5, 7);
    expect(localInputToUtcIso(utcToLocalInput(moment))).toBe(moment.toISOString());
  });
});
