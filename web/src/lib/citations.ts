// What a grounded reply was given and cited (`Message.citations`), as the conversation shows it:
// pure, so the erased and cited states are unit-tested. The reply names a passage as [n], n its
// rank (infra/knowledge/prompt.py), so the same [n] links the text to its citation.

/** A citation as the client holds it (`Citation` in the SDL, the fields the conversation shows). */
export interface Citation {
  rank: number;
  cited: boolean;
  erased: boolean;
  documentId: string;
  chunkId: string;
  title?: string | null;
  location?: string | null;
  text?: string | null;
}

/** What an erased passage shows instead of its title and text. */
export const ERASED = "passage erased (document deleted)";

/** `[1]`: how the reply names the passage. */
export const marker = (rank: number): string => `[${rank}]`;

/** Best first, as the model was given them. */
export function byRank<T extends Pick<Citation, "rank">>(citations: readonly T[]): T[] {
  return [...citations].sort((a, b) => a.rank - b.rank);
}

/** The line a citation shows: its document and where in it, or that it is erased. */
export function citationHeading(citation: Citation): string {
  if (citation.erased) return ERASED;
  const title = citation.title || "Untitled document";
  return citation.location ? `${title} — ${citation.location}` : title;
}

/** Above the list: how many passages the reply was given and how many it cites. */
export function citationsSummary(citations: readonly Citation[]): string {
  const given = citations.length;
  const cited = citations.filter((c) => c.cited).length;
  const passages = given === 1 ? "1 passage" : `${given} passages`;
  return `Sources: ${passages} given, ${cited} cited`;
}

/** `[n]` at the start of `text` naming one of `given` passages (not a Markdown link `[n](…)`). */
export function markerAt(text: string, given: number): { rank: number; length: number } | null {
  const found = /^\[(\d{1,3})\](?!\()/.exec(text);
  if (!found) return null;
  const rank = Number(found[1]);
  return rank >= 1 && rank <= given ? { rank, length: found[0].length } : null;
}

/** The in-page link of a marker (`#citation-2`), and back: the rank a link points at. */
export const citationHref = (rank: number): string => `#citation-${rank}`;
export function rankOfHref(href: string | null): number | null {
  const found = /^#citation-(\d{1,3})$/.exec(href ?? "");
  return found ? Number(found[1]) : null;
}
