// Usage figures for the charts: date ranges, measures, and days without rows filled with zero.
import type { Bar } from "../../components/BarChart";

export type Measure = "messages" | "tokens" | "cost";

export interface UsageFigures {
  day?: string | null;
  userId?: string | null;
  model?: string | null;
  userMessages: number;
  assistantMessages: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

const DAY_MS = 86_400_000;

/** A UTC calendar day as YYYY-MM-DD. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** The last `days` days up to and including today (UTC), the way usage counts days. */
export function lastDays(days: number, now: Date = new Date()): { from: string; to: string } {
  return { from: isoDay(new Date(now.getTime() - (days - 1) * DAY_MS)), to: isoDay(now) };
}

/** Every day from `from` to `to` inclusive; empty when the range is backwards or malformed. */
export function daysOf(from: string, to: string): string[] {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) return [];
  const days: string[] = [];
  for (let t = start; t <= end && days.length <= 3661; t += DAY_MS) days.push(isoDay(new Date(t)));
  return days;
}

/** Why a range cannot be asked for, or null when it can. */
export function rangeProblem(from: string, to: string): string | null {
  if (!from || !to) return "Choose both days.";
  if (daysOf(from, to).length === 0) return "The end day must be on or after the start day.";
  return null;
}

export function valueOf(row: UsageFigures, measure: Measure): number {
  if (measure === "messages") return row.userMessages + row.assistantMessages;
  if (measure === "tokens") return row.inputTokens + row.outputTokens;
  return row.costUsd;
}

/** One bar per day of the range, zero where nothing was used. */
export function perDay(rows: UsageFigures[], from: string, to: string, measure: Measure): Bar[] {
  const sums = new Map<string, number>();
  for (const row of rows) {
    if (row.day) sums.set(row.day, (sums.get(row.day) ?? 0) + valueOf(row, measure));
  }
  return daysOf(from, to).map((day) => ({ label: day, short: shortDay(day), value: sums.get(day) ?? 0 }));
}

/** One bar per key (user, model), largest first; `name` turns a key into its label. */
export function perKey(
  rows: UsageFigures[],
  key: (row: UsageFigures) => string | null | undefined,
  measure: Measure,
  name: (key: string) => string = (k) => k,
): Bar[] {
  const sums = new Map<string, number>();
  for (const row of rows) {
    const k = key(row) ?? "";
    sums.set(k, (sums.get(k) ?? 0) + valueOf(row, measure));
  }
  return [...sums]
    .map(([k, value]) => ({ label: k ? name(k) : "(none)", value }))
    .sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
}

export interface Totals {
  userMessages: number;
  assistantMessages: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export function totals(rows: UsageFigures[]): Totals {
  const t: Totals = { userMessages: 0, assistantMessages: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  for (const r of rows) {
    t.userMessages += r.userMessages;
    t.assistantMessages += r.assistantMessages;
    t.inputTokens += r.inputTokens;
    t.outputTokens += r.outputTokens;
    t.costUsd += r.costUsd;
  }
  return t;
}

const integer = new Intl.NumberFormat("en-US");

export function formatCount(n: number): string {
  return integer.format(Math.round(n));
}

/** Dollars with cents, and more digits for amounts below a cent (model calls are cheap). */
export function formatUsd(n: number): string {
  if (n === 0) return "$0.00";
  if (Math.abs(n) < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function formatMeasure(measure: Measure): (n: number) => string {
  if (measure === "cost") return formatUsd;
  const unit = measure === "messages" ? "message" : "token";
  return (n) => `${formatCount(n)} ${Math.round(n) === 1 ? unit : `${unit}s`}`;
}

/** A short day label for the axis: "Mar 3" from "2026-03-03" (UTC, so it never shifts). */
export function shortDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  return date.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}
