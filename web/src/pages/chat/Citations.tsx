// A grounded reply's sources under it: every passage it was given, numbered as the reply cites
// them ([1], …), the cited ones emphasised, each opening to its text; a passage of a deleted
// document shows as erased. The reply's own [n] markers open the matching entry (openCitation).
import { byRank, type Citation, citationHeading, citationsSummary, marker } from "../../lib/citations";

export function Citations({ citations }: { citations: readonly Citation[] }) {
  if (citations.length === 0) return null;
  return (
    // A group, not a region: a long conversation would otherwise be a list of landmarks.
    <div className="citations" role="group" aria-label="Sources">
      <p className="citations-summary">{citationsSummary(citations)}</p>
      <ol className="citation-list">
        {byRank(citations).map((citation) => (
          <CitationItem key={`${citation.rank}-${citation.chunkId}`} citation={citation} />
        ))}
      </ol>
    </div>
  );
}

function CitationItem({ citation }: { citation: Citation }) {
  const state = citation.erased ? "erased" : citation.cited ? "cited" : "given";
  const label = (
    <>
      <span className="citation-rank">{marker(citation.rank)}</span>{" "}
      <span className="citation-heading">{citationHeading(citation)}</span>
      {!citation.erased && !citation.cited && <span className="citation-note"> (given, not cited)</span>}
    </>
  );
  return (
    <li className={`citation citation-${state}`} data-rank={citation.rank}>
      {citation.erased || !citation.text ? (
        <p className="citation-line">{label}</p>
      ) : (
        <details>
          <summary>{label}</summary>
          <blockquote className="citation-text">{citation.text}</blockquote>
        </details>
      )}
    </li>
  );
}

/** Open and show the entry of `rank` in a message's sources (a click on its [n] in the reply). */
export function openCitation(message: HTMLElement, rank: number): void {
  const item = message.querySelector<HTMLElement>(`.citation[data-rank="${rank}"]`);
  if (!item) return;
  const details = item.querySelector("details");
  if (details) details.open = true;
  const target = item.querySelector<HTMLElement>("summary") ?? item;
  if (target === item) item.tabIndex = -1;
  item.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
}
