// A hand-drawn SVG bar chart: no chart library. The picture is one role="img" with a summary for
// screen readers; the numbers themselves are in a table that assistive technology reads instead.
import { type RefObject, useEffect, useId, useRef, useState } from "react";

export interface Bar {
  label: string;
  value: number;
  /** A shorter label for the axis under a column (the table keeps `label`). */
  short?: string;
}

export interface BarChartProps {
  title: string;
  bars: Bar[];
  /** How a value reads, e.g. "1,204 tokens" or "$0.42". */
  format: (value: number) => string;
  /** Columns (time series, e.g. per day) or rows (categories with long names). */
  orientation?: "columns" | "rows";
  /** The data table's header for the labels, e.g. "Day" or "User". */
  labelHeader?: string;
  valueHeader?: string;
}

/** The sentence a screen reader hears for the picture. */
export function summarise(title: string, bars: Bar[], format: (value: number) => string): string {
  if (bars.length === 0) return `${title}: no data.`;
  const total = bars.reduce((sum, b) => sum + b.value, 0);
  const top = bars.reduce((best, b) => (b.value > best.value ? b : best), bars[0]);
  const count = `${bars.length} ${bars.length === 1 ? "bar" : "bars"}`;
  if (total === 0) return `${title}: ${count}, all zero.`;
  return `${title}: ${count}, total ${format(total)}, highest ${format(top.value)} (${top.label}).`;
}

/** The axis's top: the maximum rounded up to 1, 2 or 5 times a power of ten. */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) {
    if (max <= step * power) return step * power;
  }
  return 10 * power;
}

/** Which labels fit under columns: every nth, so that at most `room` are drawn. */
export function labelStride(count: number, room: number): number {
  return Math.max(1, Math.ceil(count / Math.max(1, room)));
}

export function BarChart({
  title,
  bars,
  format,
  orientation = "columns",
  labelHeader = "Label",
  valueHeader = "Value",
}: BarChartProps) {
  const captionId = useId();
  const summary = summarise(title, bars, format);
  const box = useRef<HTMLElement>(null);
  const width = useWidth(box);
  return (
    <figure className="bar-chart" aria-labelledby={captionId} ref={box}>
      <figcaption id={captionId}>{title}</figcaption>
      {bars.length === 0 ? (
        <p className="empty">No data for this period.</p>
      ) : orientation === "columns" ? (
        <Columns bars={bars} format={format} summary={summary} width={width} />
      ) : (
        <Rows bars={bars} format={format} summary={summary} width={width} />
      )}
      {bars.length > 0 && (
        <table className="visually-hidden">
          <caption>{title}</caption>
          <thead>
            <tr>
              <th scope="col">{labelHeader}</th>
              <th scope="col">{valueHeader}</th>
            </tr>
          </thead>
          <tbody>
            {bars.map((b) => (
              <tr key={b.label}>
                <th scope="row">{b.label}</th>
                <td>{format(b.value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </figure>
  );
}

/** The figure's inner width, followed as it resizes, so that the drawing's units are pixels and
 * its text keeps its size (a scaled viewBox would shrink or blow it up). */
function useWidth(ref: RefObject<HTMLElement | null>): number {
  const [width, setWidth] = useState(640);
  useEffect(() => {
    const element = ref.current;
    if (!element || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => {
      const w = Math.floor(entry.contentRect.width);
      if (w > 0) setWidth(w);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [ref]);
  return width;
}

interface DrawingProps {
  bars: Bar[];
  format: (v: number) => string;
  summary: string;
  width: number;
}

function Columns({ bars, format, summary, width: WIDTH }: DrawingProps) {
  const height = 200;
  const left = 8;
  const bottom = 22;
  const top = 18;
  const plot = height - bottom - top;
  const max = niceMax(Math.max(...bars.map((b) => b.value)));
  const slot = (WIDTH - left * 2) / bars.length;
  const gap = Math.min(4, slot * 0.2);
  const stride = labelStride(bars.length, Math.floor(WIDTH / 64));
  return (
    <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={summary} className="chart-svg">
      <text x={left} y={12} className="chart-axis">
        {format(max)}
      </text>
      <line x1={left} x2={WIDTH - left} y1={top} y2={top} className="chart-grid" />
      <line x1={left} x2={WIDTH - left} y1={top + plot} y2={top + plot} className="chart-baseline" />
      {bars.map((b, i) => {
        const h = (b.value / max) * plot;
        const x = left + i * slot + gap / 2;
        return (
          <g key={b.label}>
            <rect x={x} y={top + plot - h} width={Math.max(1, slot - gap)} height={h} className="chart-bar">
              <title>{`${b.label}: ${format(b.value)}`}</title>
            </rect>
            {i % stride === 0 && (
              <text x={x + (slot - gap) / 2} y={height - 6} textAnchor="middle" className="chart-axis">
                {b.short ?? b.label}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
}

function Rows({ bars, format, summary, width: WIDTH }: DrawingProps) {
  const row = 26;
  const labelWidth = Math.min(200, Math.round(WIDTH * 0.38));
  const valueWidth = 100;
  const height = bars.length * row + 4;
  const plot = Math.max(20, WIDTH - labelWidth - valueWidth);
  const max = niceMax(Math.max(...bars.map((b) => b.value)));
  return (
    <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={summary} className="chart-svg">
      {bars.map((b, i) => {
        const y = i * row + 2;
        const w = (b.value / max) * plot;
        return (
          <g key={b.label}>
            <text x={labelWidth - 8} y={y + row / 2 + 4} textAnchor="end" className="chart-label">
              {clip(b.label, Math.floor((labelWidth - 8) / 9))}
            </text>
            <rect x={labelWidth} y={y + 4} width={Math.max(w, b.value > 0 ? 1 : 0)} height={row - 8} className="chart-bar">
              <title>{`${b.label}: ${format(b.value)}`}</title>
            </rect>
            <text x={labelWidth + w + 6} y={y + row / 2 + 4} className="chart-value">
              {format(b.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
