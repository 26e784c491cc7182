// A reply as Markdown, loaded on first use: marked, highlight.js and DOMPurify are over half of
// the client's own code, so they stay out of the first load (docs/web.md has the budget). Until
// they arrive the reply shows as plain text (React escapes it), never as HTML.
import { lazy, Suspense, useDeferredValue } from "react";

const Markdown = lazy(() =>
  import("../../components/Markdown").then((module) => ({ default: module.Markdown })),
);

/** `citations`: how many passages a grounded reply was given (its [n] then link to them). */
export function RichText({ text, citations = 0 }: { text: string; citations?: number }) {
  // While a reply streams, each delta would re-parse the whole text: rendering the Markdown at
  // low priority lets React skip the versions a busy page has no time for.
  const deferred = useDeferredValue(text);
  return (
    <Suspense fallback={<p className="message-text">{text}</p>}>
      <Markdown text={deferred} citations={citations} />
    </Suspense>
  );
}
