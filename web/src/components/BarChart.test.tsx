import { cleanup, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { BarChart, labelStride, niceMax, summarise } from "./BarChart";

afterEach(cleanup);

const count = (n: number) => `${n} messages`;

describe("summarise", () => {
  it("names the total and the highest bar", () => {
    const bars = [
      { label: "a", value: 2 },
      { label: "b", value: 5 },
    ];
    expect(summarise("Messages per day", bars, count)).toBe(
      "Messages per day: 2 bars, total 7 messages, highest 5 messages (b).",
    );
  });

  it("says when there is nothing or only zeros", () => {
    expect(summarise("T", [], count)).toBe("T: no data.");
    expect(summarise("T", [{ label: "a", value: 0 }], count)).toBe("T: 1 bar, all zero.");
  });
});

describe("niceMax", () => {
  it("rounds the top of the axis up to 1, 2 or 5 times a power of ten", () => {
    expect(niceMax(7)).toBe(10);
    expect(niceMax(13)).toBe(20);
    expect(niceMax(200)).toBe(200);
    expect(niceMax(0.03)).toBe(0.05);
    expect(niceMax(0)).toBe(1);
  });
});

describe("labelStride", () => {
  it("draws every label when they fit, every nth when they do not", () => {
    expect(labelStride(7, 11)).toBe(1);
    expect(labelStride(30, 11)).toBe(3);
    expect(labelStride(365, 11)).toBe(34);
  });
});

describe("BarChart", () => {
  it("is one image with a summary, and a table of the numbers", () => {
    render(
      <BarChart
        title="Tokens per model"
        bars={[
          { label: "openai/gpt-4o-mini", value: 1200 },
          { label: "anthropic/claude", value: 300 },
        ]}
        format={(n) => `${n} tokens`}
        orientation="rows"
        labelHeader="Model"
        valueHeader="Tokens"
      />,
    );
    expect(screen.getByRole("img")).toHaveAccessibleName(
      "Tokens per model: 2 bars, total 1500 tokens, highest 1200 tokens (openai/gpt-4o-mini).",
    );
    const table = screen.getByRole("table", { name: "Tokens per model" });
    const row = within(table).getByRole("row", { name: /anthropic\/claude/ });
    expect(row).toHaveTextContent("300 tokens");
  });

  it("says so when there is no data", () => {
    render(<BarChart title="Cost per day" bars={[]} format={String} />);
    expect(screen.getByText("No data for this period.")).toBeInTheDocument();
    expect(screen.queryByRole("img")).toBeNull();
  });
});
