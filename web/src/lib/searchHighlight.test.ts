import { expect, it } from "vitest";
import { sanitizeHighlight } from "./searchHighlight";

it("keeps the matches' em elements", () => {
  expect(sanitizeHighlight("a <em>cat</em> sat")).toBe("a <em>cat</em> sat");
});

it("keeps escaped markup escaped", () => {
  expect(sanitizeHighlight("&lt;script&gt; <em>x</em>")).toBe("&lt;script&gt; <em>x</em>");
});

it("removes every other element and attribute", () => {
  const html = sanitizeHighlight('<img src=x onerror="alert(1)"><em onclick="x()" class="y">hit</em><script>bad()</script><b>b</b>');
  expect(html).toBe("<em>hit</em>b");
});
