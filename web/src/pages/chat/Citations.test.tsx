import { cleanup, render, screen, within } from "@testing-library/react";
import { afterEach, beforeAll, expect, it } from "vitest";
import type { Citation } from "../../lib/citations";
import { Citations, openCitation } from "./Citations";

beforeAll(() => {
  Element.prototype.scrollIntoView ??= () => undefined; // jsdom lays nothing out
});
afterEach(cleanup);

const citations: Citation[] = [
  {
    rank: 2,
    cited: false,
    erased: false,
    documentId: "d1",
    chunkId: "c2",
    title: "handbook.md",
    location: "Travel",
    text: "Trains for journeys under four hours.",
  },
  {
    rank: 1,
    cited: true,
    erased: false,
    documentId: "d1",
    chunkId: "c1",
    title: "handbook.md",
    location: "Expenses",
    text: "Receipts within thirty days.",
  },
  { rank: 3, cited: true, erased: true, documentId: "d2", chunkId: "c9", title: null, location: null, text: null },
];

it("lists the sources numbered as the reply cites them, cited ones marked, text behind a disclosure", () => {
  render(<Citations citations={citations} />);
  const sources = screen.getByRole("group", { name: "Sources" });
  const items = within(sources).getAllByRole("listitem");
  const lines = items.map((li) => li.querySelector("summary, .citation-line")?.textContent);
  expect(lines).toEqual([
    "[1] handbook.md — Expenses",
    "[2] handbook.md — Travel (given, not cited)",
    "[3] passage erased (document deleted)",
  ]);
  expect(items[0]).toHaveClass("citation-cited");
  expect(items[1]).toHaveClass("citation-given");
  expect(within(items[0]).getByText("Receipts within thirty days.")).not.toBeVisible();
  expect(sources).toHaveTextContent("Sources: 3 passages given, 2 cited");
});

it("shows an erased passage with nothing to open", () => {
  render(<Citations citations={[citations[2]]} />);
  const item = screen.getByRole("listitem");
  expect(item).toHaveClass("citation-erased");
  expect(item.querySelector("details")).toBeNull();
});

it("opens the source a [n] of the reply points at", () => {
  const { container } = render(<Citations citations={citations} />);
  openCitation(container, 2);
  const details = container.querySelector<HTMLDetailsElement>('[data-rank="2"] details');
  expect(details?.open).toBe(true);
  expect(document.activeElement).toBe(details?.querySelector("summary"));
});

it("shows nothing for a reply that was not grounded", () => {
  const { container } = render(<Citations citations={[]} />);
  expect(container).toBeEmptyDOMElement();
});
