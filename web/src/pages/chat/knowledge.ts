// What a chat's replies are grounded in (`chatKnowledge`), said in a line: pure, unit-tested.

export interface AttachedKnowledge {
  /** The tenant's whole collection (and the owner's own documents) ground the replies. */
  tenantCollection: boolean;
  documents: readonly { id: string; title: string }[];
}

export const NOT_GROUNDED = "no documents";

/** "handbook.pdf", "a.md and b.md", "a.md, b.md and 2 more", or the tenant's collection. */
export function knowledgeSummary(knowledge: AttachedKnowledge): string {
  if (knowledge.tenantCollection) return "the tenant's collection and your own documents";
  const titles = knowledge.documents.map((d) => d.title);
  if (titles.length === 0) return NOT_GROUNDED;
  if (titles.length === 1) return titles[0];
  if (titles.length === 2) return `${titles[0]} and ${titles[1]}`;
  return `${titles[0]}, ${titles[1]} and ${titles.length - 2} more`;
}

export const isGrounded = (knowledge: AttachedKnowledge): boolean =>
  knowledge.tenantCollection || knowledge.documents.length > 0;

/**
 * The documents the picker offers: those ready to answer from, and those already attached
 * whatever their state (so that saving keeps them unless they are unticked), attached first.
 */
export function pickable<T extends { id: string; status: string }>(
  documents: readonly T[],
  attached: readonly T[],
): T[] {
  const seen = new Set(attached.map((d) => d.id));
  return [...attached, ...documents.filter((d) => d.status === "READY" && !seen.has(d.id))];
}
