// A reply as Markdown, loaded on first use: marked, highlight.js and DOMPurify are over half of
// the client's own code, so they stay out of the first load (docs/web.md has the budget). Until
// they arrive the reply shows as plain text (React escapes it), never as HTML.
import { lazy, Suspense } from "react";

const Markdown = lazy(() =>
  import("../../components/Markdown").then((module) => ({ default: module.Markdown })),
);

export function RichText({ text }: { text: string }) {
  return (
    <Suspense fallback={<p className="message-text">{text}</p>}>
      <Markdown text={text} />
    </Suspense>
  );
}
