// Search hits' highlighted fragments: the server sends them HTML-escaped with matches in
// <em>…</em>; only `em` survives, without attributes, whatever else the string holds.
import DOMPurify from "dompurify";

const purifier = DOMPurify(window);

/** A fragment as HTML that holds text and bare `<em>` elements only. */
export function sanitizeHighlight(fragment: string): string {
  return purifier.sanitize(fragment, { ALLOWED_TAGS: ["em"], ALLOWED_ATTR: [], KEEP_CONTENT: true });
}
