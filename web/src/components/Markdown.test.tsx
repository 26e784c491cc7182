import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Markdown, renderMarkdown } from "./Markdown";

const dom = (markdown: string) => {
  const div = document.createElement("div");
  div.innerHTML = renderMarkdown(markdown);
  return div;
};

describe("renderMarkdown", () => {
  it("renders Markdown", () => {
    const div = dom("# Title\n\n**bold** and *it*\n\n- one\n- two");
    expect(div.querySelector("h1")?.textContent).toBe("Title");
    expect(div.querySelector("strong")?.textContent).toBe("bold");
    expect(div.querySelectorAll("li")).toHaveLength(2);
  });

  it("shows raw HTML as text instead of interpreting it", () => {
    const div = dom('Hi <script>alert(1)</script> <b onmouseover="x()">b</b>\n\n<div onclick="x()">block</div>');
    expect(div.querySelector("script")).toBeNull();
    expect(div.querySelector("b")).toBeNull();
    expect(div.querySelector("div")).toBeNull();
    expect(div.textContent).toContain("<script>alert(1)</script>");
    expect(div.textContent).toContain('<div onclick="x()">block</div>');
  });

  it("drops javascript: links", () => {
    const div = dom("[click](javascript:alert(1)) and [data](data:text/html;base64,PHNjcmlwdD4=)");
    for (const a of div.querySelectorAll("a")) {
      expect(a.getAttribute("href") ?? "").not.toMatch(/^(javascript|data):/i);
    }
  });

  it("opens links in a new tab without an opener or referrer", () => {
    const a = dom("[Parley](https://example.com/docs)").querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://example.com/docs");
    expect(a?.getAttribute("target")).toBe("_blank");
    expect(a?.getAttribute("rel")).toBe("noopener noreferrer");
  });

  it("turns images into links and loads nothing", () => {
    const div = dom("![a cat](https://evil.example/cat.png)");
    expect(div.querySelector("img")).toBeNull();
    const a = div.querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://evil.example/cat.png");
    expect(a?.textContent).toBe("Image: a cat");
  });

  it("highlights code of a registered language", () => {
    const code = dom("```python\ndef f():\n    return 1\n```").querySelector("pre code");
    expect(code?.className).toContain("language-python");
    expect(code?.querySelector(".hljs-keyword")?.textContent).toBe("def");
  });

  it("escapes code of an unknown language", () => {
    const code = dom("```brainfoo\n<img src=x onerror=alert(1)>\n```").querySelector("pre code");
    expect(code?.querySelector("img")).toBeNull();
    expect(code?.textContent).toContain("<img src=x onerror=alert(1)>");
  });

  it("escapes HTML inside highlighted code", () => {
    const code = dom("```html\n<script>alert(1)</script>\n```").querySelector("pre code");
    expect(code?.querySelector("script")).toBeNull();
    expect(code?.textContent).toContain("<script>alert(1)</script>");
  });

  it("keeps a hostile language name out of the class attribute", () => {
    const div = dom('```"><img src=x onerror=alert(1)>\nx\n```');
    expect(div.querySelector("img")).toBeNull();
  });
});

it("the component renders into a .markdown container", () => {
  const { container } = render(<Markdown text="Some `code`" />);
  expect(container.querySelector(".markdown code")?.textContent).toBe("code");
});

describe("a grounded reply's [n] markers", () => {
  const grounded = (markdown: string, given: number) => {
    const div = document.createElement("div");
    div.innerHTML = renderMarkdown(markdown, given);
    return div;
  };

  it("link to the passages the reply was given, in the page", () => {
    const links = grounded("Receipts within thirty days [1], trains [2][3].", 3).querySelectorAll("a.citation-ref");
    expect([...links].map((a) => a.getAttribute("href"))).toEqual(["#citation-1", "#citation-2", "#citation-3"]);
    expect(links[0].textContent).toBe("[1]");
    expect(links[0].getAttribute("aria-label")).toBe("Source 1");
    expect(links[0].getAttribute("target")).toBeNull();
  });

  it("stay text beyond the passages given, in code, and in replies not grounded", () => {
    expect(grounded("see [4]", 3).querySelector("a")).toBeNull();
    expect(grounded("`[1]`", 3).querySelector("a")).toBeNull();
    expect(dom("see [1]").querySelector("a")).toBeNull();
  });

  it("leave Markdown links alone", () => {
    const a = grounded("[1](https://example.com)", 3).querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://example.com");
    expect(a?.getAttribute("target")).toBe("_blank");
  });
});
