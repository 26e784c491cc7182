// Searching the documents' passages (`searchKnowledge`): by words and meaning together, or one of
// the two alone; each hit shows its document, where in it, and the passage.
import { useEffect, useId, useState } from "react";
import { Empty, ErrorMessage, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import type { RetrievalMode, SearchKnowledgeQuery } from "../../gql/graphql";
import { type GraphQLRequestError, request } from "../../lib/graphql";
import { asRequestError } from "../../lib/hooks";
import { navigate } from "../../lib/router";
import { searchHref } from "./routes";

const SearchKnowledge = graphql(`
  query SearchKnowledge($query: String!, $first: Int!, $mode: RetrievalMode!) {
    searchKnowledge(query: $query, first: $first, mode: $mode) {
      documentId
      chunkId
      title
      location
      text
    }
  }
`);

type Passage = SearchKnowledgeQuery["searchKnowledge"][number];

const HITS = 10;
export const MODES: { mode: RetrievalMode; param: string; label: string }[] = [
  { mode: "HYBRID", param: "hybrid", label: "Words and meaning" },
  { mode: "BM25", param: "words", label: "Words" },
  { mode: "VECTOR", param: "meaning", label: "Meaning" },
];

/** The mode a URL names (`mode=words`), HYBRID when it names none or an unknown one. */
export function modeOf(value: string | null): RetrievalMode {
  return MODES.find((m) => m.param === value)?.mode ?? "HYBRID";
}

/** The URL's parameters for `mode` (none for the default). */
export function modeParams(mode: RetrievalMode): Record<string, string> {
  return mode === "HYBRID" ? {} : { mode: MODES.find((m) => m.mode === mode)?.param ?? "hybrid" };
}

export function KnowledgeSearch({ q, mode: named }: { q: string; mode: string | null }) {
  const mode = modeOf(named);
  const [text, setText] = useState(q);
  const [chosen, setChosen] = useState<RetrievalMode>(mode);
  const [hits, setHits] = useState<Passage[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<GraphQLRequestError | null>(null);
  const inputId = useId();
  const modeId = useId();

  useEffect(() => setText(q), [q]);
  useEffect(() => setChosen(mode), [mode]);

  useEffect(() => {
    setHits(null);
    setError(null);
    if (!q) return;
    let cancelled = false;
    setLoading(true);
    request(SearchKnowledge, { query: q, first: HITS, mode })
      .then(({ searchKnowledge }) => !cancelled && setHits(searchKnowledge))
      .catch((e) => !cancelled && setError(asRequestError(e)))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
  }, [q, mode]);

  const go = (query: string, next: RetrievalMode) =>
    navigate(searchHref("documents", query, modeParams(next)));

  return (
    <>
      <form
        role="search"
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          go(text.trim(), chosen);
        }}
      >
        <label htmlFor={inputId}>Search documents</label>
        <div className="search-row">
          <input
            id={inputId}
            type="text"
            inputMode="search"
            enterKeyHint="search"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="A question or some words"
            autoComplete="off"
          />
          <label htmlFor={modeId} className="visually-hidden">
            Match by
          </label>
          <select
            id={modeId}
            className="search-mode"
            value={chosen}
            onChange={(e) => {
              const next = e.target.value as RetrievalMode;
              setChosen(next);
              if (q) go(q, next);
            }}
          >
            {MODES.map((m) => (
              <option key={m.mode} value={m.mode}>
                {m.label}
              </option>
            ))}
          </select>
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </form>
      <ErrorMessage error={error} />
      {q && hits !== null && hits.length === 0 && <Empty>No passage of your documents matches “{q}”.</Empty>}
      {hits && hits.length > 0 && (
        <>
          <h2 className="visually-hidden">Passages</h2>
          <ol className="search-hits passage-hits">
            {hits.map((hit) => (
              <li key={hit.chunkId}>
                <article className="passage-hit" aria-label={hit.title}>
                  <span className="search-hit-title passage-title">{hit.title}</span>
                  {hit.location && <span className="search-hit-meta">{hit.location}</span>}
                  <p className="passage-text">{hit.text}</p>
                </article>
              </li>
            ))}
          </ol>
        </>
      )}
      {loading && <Loading label="Searching…" />}
    </>
  );
}
