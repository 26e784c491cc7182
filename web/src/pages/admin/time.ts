// <input type="datetime-local"> speaks the browser's local time without a zone; the API speaks
// UTC ISO-8601 (a time without a zone is taken as UTC there, so it must be converted here).

/** "2026-03-01T14:30" in local time as UTC ISO, or null when it is not a time. */
export function localInputToUtcIso(value: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(value)) return null;
  const [date, time] = value.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi, s = "0"] = time.split(":");
  const seconds = Number(s);
  const local = new Date(y, mo - 1, d, Number(h), Number(mi), Math.floor(seconds), Math.round((seconds % 1) * 1000));
  // new Date() rolls 31 February over into March: refuse days that do not exist.
  if (local.getFullYear() !== y || local.getMonth() !== mo - 1 || local.getDate() !== d) return null;
  return local.toISOString();
}

/** A moment as the value of a datetime-local input, in local time, to the second. */
export function utcToLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** An exact time for the audit trail: local, with seconds, and the UTC value alongside. */
export function formatExact(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}
