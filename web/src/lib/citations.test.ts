// @vitest-environment node
import { describe, expect, it } from "vitest";
import {
  byRank,
  type Citation,
  citationHeading,
  citationHref,
  citationsSummary,
  ERASED,
  markerAt,
  rankOfHref,
} from "./citations";

const passage = (rank: number, fields: Partial<Citation> = {}): Citation => ({
  rank,
  cited: true,
  erased: false,
  documentId: "d1",
  chunkId: `c${rank}`,
  title: "handbook.md",
  location: "Staff handbook > Expenses",
  text: "Receipts are due within thirty days.",
  ...fields,
});

describe("a citation's heading", () => {
  it("names the document and where in it the passage is", () => {
    expect(citationHeading(passage(1))).toBe("handbook.md — Staff handbook > Expenses");
  });

  it("names only the document when the passage has no location (plain text)", () => {
    expect(citationHeading(passage(1, { location: "" }))).toBe("handbook.md");
    expect(citationHeading(passage(1, { location: null }))).toBe("handbook.md");
  });

  it("says the passage is erased once its document is deleted, whatever was left", () => {
    const erased = passage(2, { erased: true, title: null, location: null, text: null });
    expect(citationHeading(erased)).toBe(ERASED);
    expect(ERASED).toBe("passage erased (document deleted)");
    expect(citationHeading({ ...passage(2), erased: true })).toBe(ERASED);
  });
});

it("lists the passages best first", () => {
  expect(byRank([passage(3), passage(1), passage(2)]).map((c) => c.rank)).toEqual([1, 2, 3]);
});

it("counts the passages given and those cited", () => {
  expect(citationsSummary([passage(1), passage(2, { cited: false }), passage(3, { erased: true })])).toBe(
    "Sources: 3 passages given, 2 cited",
  );
  expect(citationsSummary([passage(1, { cited: false })])).toBe("Sources: 1 passage given, 0 cited");
});

describe("a [n] marker in a reply", () => {
  it("names one of the passages given", () => {
    expect(markerAt("[2] says so", 3)).toEqual({ rank: 2, length: 3 });
    expect(markerAt("[12]", 12)).toEqual({ rank: 12, length: 4 });
  });

  it("is not a marker beyond the passages given, at 0, or not at the start", () => {
    expect(markerAt("[4]", 3)).toBeNull();
    expect(markerAt("[0]", 3)).toBeNull();
    expect(markerAt("see [1]", 3)).toBeNull();
    expect(markerAt("[1a]", 3)).toBeNull();
  });

  it("is not a Markdown link's text, but may be followed by another marker", () => {
    expect(markerAt("[1](https://example.com)", 3)).toBeNull();
    expect(markerAt("[2][3]", 3)).toEqual({ rank: 2, length: 3 });
  });

  it("links to its citation and back", () => {
    expect(citationHref(2)).toBe("#citation-2");
    expect(rankOfHref(citationHref(2))).toBe(2);
    expect(rankOfHref("#citation-x")).toBeNull();
    expect(rankOfHref("https://example.com/#citation-2")).toBeNull();
    expect(rankOfHref(null)).toBeNull();
  });
});
