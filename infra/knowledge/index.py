"""The knowledge index: documents' passages, their vectors and their words, searched together.

One interface, two adapters, as for the chat search: `PostgresKnowledge`
(`infra/knowledge/index_postgres.py`, the embedded default: full-text search plus exact vector
similarity) and `ElasticsearchKnowledge` (`infra/knowledge/index_elasticsearch.py`: BM25 and a
`dense_vector` kNN search). Both rank the same way: the words' ranking and the vectors' ranking
are fused here, in Parley, by reciprocal rank fusion (`fuse`), because the Elasticsearch build we
run has no `rrf` retriever and so that both engines fuse alike.

Every search is scoped inside the engine (`Scope`): the tenant (and, in Elasticsearch, its
routing), whose documents (the caller's own and the tenant's collection, or every owner's for
auditors), optionally a set of documents (a chat's attachments), the current revision of each
document only, and the vectors of one embedding model. Nothing is filtered after the engine
answered.

Passages are written by the knowledge projection (`projections/knowledge.py`) with the log
position of the event that produced them, so a replayed batch never overwrites newer state.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID

import numpy as np
import numpy.typing as npt

Mode = Literal["hybrid", "bm25", "vector"]
MODES: tuple[Mode, ...] = ("hybrid", "bm25", "vector")

RRF_K = 60
"""The rank constant of reciprocal rank fusion (Cormack et al. 2009; Elasticsearch's default)."""

CANDIDATES = 50
"""How many hits each ranking contributes before fusion."""


@dataclass(frozen=True)
class ChunkRecord:
    """One passage to index: a chunk of one revision of a document, and its vector."""

    chunk_id: UUID
    document_id: UUID
    tenant_id: UUID
    owner_id: UUID | None
    """The uploader of a personal document; None for the tenant's collection."""
    revision: int
    index: int
    text: str
    title: str
    """The document's title (its file name), searched with the text."""
    location: str
    """Where in the document: "page 3", "Setup > Requirements", or ""."""
    start: int
    end: int
    """Offsets of the text in the document's extracted text."""
    vector: npt.NDArray[np.float32]
    position: int
    """Log position of the event whose processing produced it (an external version)."""


@dataclass(frozen=True)
class Scope:
    """Which passages a search may see. Built by domain/policy.py's `knowledge_scope`, never from
    input alone."""

    tenant_id: UUID
    owner_id: UUID | None
    """Personal documents of this user are visible, with the tenant's collection; None: every
    owner's (auditors)."""
    document_ids: frozenset[UUID] | None = None
    """Only these documents (a chat's attachments); None: every visible document."""


@dataclass(frozen=True)
class Passage:
    chunk_id: UUID
    document_id: UUID
    revision: int
    index: int
    title: str
    location: str
    text: str
    start: int
    end: int
    score: float
    """The fused score (hybrid) or the engine's own (bm25, vector)."""


class KnowledgeIndex(Protocol):
    model: str
    """The embedding model whose vectors this index holds (one index per model)."""

    def replace_document(
        self, tenant_id: UUID, document_id: UUID, revision: int, chunks: Sequence[ChunkRecord]
    ) -> None:
        """Make `chunks` the document's searchable passages: its other revisions stay readable
        by id (`passages`, for old citations) but are no longer searched. Idempotent."""
        ...

    def delete_documents(self, tenant_id: UUID, document_ids: Iterable[UUID]) -> None:
        """Delete every passage of every revision of these documents. Idempotent."""
        ...

    def delete_owner(self, tenant_id: UUID, owner_id: UUID) -> None:
        """Delete every passage of the documents this user owns (erasure). Idempotent."""
        ...

    def search(
        self,
        scope: Scope,
        text: str,
        vector: npt.NDArray[np.float32] | None,
        *,
        first: int = 5,
        mode: Mode = "hybrid",
    ) -> list[Passage]:
        """The best passages, best first. `vector` (the question embedded by this index's
        model) is needed for hybrid and vector searches."""
        ...

    def passages(self, tenant_id: UUID, chunk_ids: Iterable[UUID]) -> dict[UUID, Passage]:
        """Passages by id in the tenant, of any revision (for citations); missing ids were
        deleted or erased. Scores are 0."""
        ...


def candidates(
    scope: Scope, vector: npt.NDArray[np.float32] | None, *, first: int, mode: Mode
) -> int:
    """How many hits each ranking of a search brings (0: nothing can match); what every
    adapter's `search` checks first."""
    if mode != "bm25" and vector is None:
        raise ValueError(f"a {mode} search needs the question's vector")
    if first <= 0 or scope.document_ids == frozenset():
        return 0
    return max(first, CANDIDATES) if mode == "hybrid" else first


def knowledge_alias(base: str, model: str) -> str:
    """The Elasticsearch alias of one model's knowledge index, beside the chat search's `base`:
    `parley-knowledge-local-all-minilm-l6-v2-q`."""
    return f"{base}-knowledge-{re.sub(r'[^a-z0-9]+', '-', model.lower()).strip('-')}"


def fuse(rankings: Sequence[Sequence[UUID]], *, k: int = RRF_K) -> list[tuple[UUID, float]]:
    """Reciprocal rank fusion: each ranking gives 1/(k + rank) to its items (rank from 1); best
    first, ties in the order of first appearance."""
    scores: dict[UUID, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
