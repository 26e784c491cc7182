import { expect, it } from "vitest";
import { highlightSegments, unescapeHtml } from "./searchHighlight";

it("splits a fragment into text and the matches' runs", () => {
  expect(highlightSegments("a <em>cat</em> sat")).toEqual([
    { text: "a ", match: false },
    { text: "cat", match: true },
    { text: " sat", match: false },
  ]);
});

it("shows escaped markup as the characters it is, never as markup", () => {
  expect(highlightSegments("&lt;script&gt;alert(1)&lt;/script&gt; <em>x</em>")).toEqual([
    { text: "<script>alert(1)</script> ", match: false },
    { text: "x", match: true },
  ]);
});

it("keeps any other tag as visible text, attributes and all", () => {
  const segments = highlightSegments('<img src=x onerror="alert(1)"><em onclick="x()">hit</em>');
  expect(segments.map((s) => s.text).join("")).toBe('<img src=x onerror="alert(1)"><em onclick="x()">hit');
  expect(segments.every((s) => !s.match)).toBe(true);
});

it("decodes numeric references and leaves unknown ones alone", () => {
  expect(unescapeHtml("&#39;&#x27;&amp;amp; &nosuch; &#x110000;")).toBe("''&amp; &nosuch; &#x110000;");
});
