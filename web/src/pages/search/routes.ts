// The search page's addresses: `/search?q=…` for messages, `/search?in=documents&q=…` for the
// documents' passages (with `mode=words|meaning` when not both).

export type SearchKind = "messages" | "documents";

/** Where a search of `kind` for `q` lives. */
export function searchHref(kind: SearchKind, q: string, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    ...(kind === "documents" ? { in: "documents" } : {}),
    ...(q ? { q } : {}),
    ...extra,
  });
  const query = params.toString();
  return query ? `/search?${query}` : "/search";
}

export const searchKind = (value: string | null): SearchKind => (value === "documents" ? "documents" : "messages");
