// A model's reply as Markdown: parsed by marked, code highlighted by highlight.js, and every
// rendered string sanitised by DOMPurify before it reaches the DOM. Raw HTML in a reply is shown
// as text, never interpreted; images become links (the CSP would block remote ones anyway).
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { Marked, type MarkedExtension, type TokenizerAndRendererExtension } from "marked";
import { useMemo } from "react";
import { citationHref, markerAt } from "../lib/citations";

const languages = { bash, css, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, language] of Object.entries(languages)) hljs.registerLanguage(name, language);
hljs.registerAliases(["shell", "console"], { languageName: "bash" });

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

const OPTIONS: MarkedExtension = {
  gfm: true,
  async: false,
  renderer: {
    // A model writing `<div>` means the characters, not an element.
    html: ({ text }) => escapeHtml(text),
    code: ({ text, lang }) => {
      const language = (lang ?? "").trim().split(/\s+/)[0]?.toLowerCase() ?? "";
      if (language && hljs.getLanguage(language)) {
        const body = hljs.highlight(text, { language, ignoreIllegals: true }).value;
        return `<pre><code class="hljs language-${escapeHtml(language)}">${body}</code></pre>\n`;
      }
      return `<pre><code>${escapeHtml(text)}</code></pre>\n`;
    },
    image: ({ href, text }) =>
      `<a href="${escapeHtml(href)}">${escapeHtml(text ? `Image: ${text}` : href)}</a>`,
  },
};

const markdown = new Marked(OPTIONS);

/** A grounded reply's [n] (n one of the `given` passages) as a link to its citation. */
function citationMarkers(given: number): TokenizerAndRendererExtension {
  return {
    name: "citation",
    level: "inline",
    start: (src: string) => src.match(/\[\d/)?.index,
    tokenizer(src: string) {
      const found = markerAt(src, given);
      return found ? { type: "citation", raw: src.slice(0, found.length), rank: found.rank } : undefined;
    },
    renderer: (token) =>
      `<a class="citation-ref" href="${citationHref(token.rank)}" aria-label="Source ${token.rank}">[${token.rank}]</a>`,
  };
}

const grounded = new Map<number, Marked>();
function parserFor(given: number): Marked {
  if (given <= 0) return markdown;
  let parser = grounded.get(given);
  if (!parser) {
    parser = new Marked(OPTIONS, { extensions: [citationMarkers(given)] });
    grounded.set(given, parser);
  }
  return parser;
}

// An instance of its own, so that its hook touches no other sanitising (search highlights).
const purifier = DOMPurify(window);
purifier.addHook("afterSanitizeAttributes", (node) => {
  // In-page links (a citation's [n]) stay in the page.
  if (node.tagName === "A" && !node.getAttribute("href")?.startsWith("#")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["img", "picture", "source", "video", "audio", "iframe", "form", "input", "button", "select", "textarea", "style"],
  FORBID_ATTR: ["style", "id", "name", "srcset"],
  ALLOW_DATA_ATTR: false,
};

/** Markdown to sanitised HTML; with `citations` (the passages a grounded reply was given), its
 * [1]…[n] link to them. */
export function renderMarkdown(text: string, citations = 0): string {
  const html = parserFor(citations).parse(text) as string;
  return purifier.sanitize(html, PURIFY_CONFIG);
}

export function Markdown({ text, className, citations = 0 }: { text: string; className?: string; citations?: number }) {
  const html = useMemo(() => renderMarkdown(text, citations), [text, citations]);
  // biome-ignore lint/security/noDangerouslySetInnerHtml: sanitised by renderMarkdown
  return <div className={className ? `markdown ${className}` : "markdown"} dangerouslySetInnerHTML={{ __html: html }} />;
}
