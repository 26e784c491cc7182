"""Retrieval as the rest of Parley uses it: a question in, the best passages out.

`Knowledge` puts the embedder and the index together for the query side (`searchKnowledge`,
citations) and the responder (grounded replies): it embeds the question with the index's model
(not for a BM25-only search), searches, and counts the time. The local model is loaded on first
use (`LazyEmbedder`), so a process that never retrieves never loads it, and a machine without
the model file fetches it then (from PARLEY_EMBEDDING_MODEL_REPOSITORY) or says how to.
"""

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from uuid import UUID

from infra.knowledge.embeddings import LOCAL_MODEL, Embedder, Vectors, build_embedder
from infra.knowledge.index import KnowledgeIndex, Mode, Passage, Scope
from infra.knowledge.local_model import ensure_model, model_dir
from infra.metrics import KNOWLEDGE_SEARCH_SECONDS
from infra.settings import Settings

LOCAL_DIMENSIONS = 384
MAX_QUESTION = 2_000
"""Characters of a question that are searched (the rest adds nothing to either ranking)."""


class LazyEmbedder:
    """The configured embedder, built at its first `embed` (the local model's files are fetched
    and loaded then); `model` and `dimensions` are known before."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        if settings.embedding_model == LOCAL_MODEL:
            self.model = LOCAL_MODEL
            self.dimensions = LOCAL_DIMENSIONS
        else:  # a provider's client: built now, nothing is sent before the first embed
            self._embedder = build_embedder(settings)
            self.model = self._embedder.model
            self.dimensions = self._embedder.dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._loaded().embed(texts)

    def _loaded(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    s = self._settings
                    files = ensure_model(model_dir(s), s.embedding_model_repository)
                    self._embedder = build_embedder(s, files)
        return self._embedder


Erased = Callable[[Iterable[UUID]], set[UUID]]
"""Those of the given documents whose key was destroyed (deleted, expired, owner erased)."""


class Knowledge:
    def __init__(
        self,
        index: KnowledgeIndex,
        embedder: Embedder,
        engine: str,
        erased: Erased = lambda _ids: set(),
    ) -> None:
        """`erased`: nothing of a document whose key is destroyed is answered, even before the
        knowledge projection has removed its passages (it may be behind, or retrying an
        outage): the destroyed key is the deletion, as it is for the events."""
        if embedder.model != index.model:
            raise ValueError(f"the index holds {index.model} vectors, not {embedder.model}")
        self.index = index
        self.embedder = embedder
        self.engine = engine
        """postgres or elasticsearch (a metric label)."""
        self._erased = erased

    def search(self, scope: Scope, question: str, *, first: int, mode: Mode) -> list[Passage]:
        started = time.perf_counter()
        text = question.strip()[:MAX_QUESTION]
        if not text:
            return []
        vector = None if mode == "bm25" else self.embedder.embed([text])[0]
        passages = self.index.search(scope, text, vector, first=first, mode=mode)
        gone = self._erased({p.document_id for p in passages}) if passages else set()
        KNOWLEDGE_SEARCH_SECONDS.labels(self.engine, mode).observe(time.perf_counter() - started)
        return [p for p in passages if p.document_id not in gone]

    def passages(self, tenant_id: UUID, chunk_ids: Iterable[UUID]) -> dict[UUID, Passage]:
        found = self.index.passages(tenant_id, chunk_ids)
        gone = self._erased({p.document_id for p in found.values()}) if found else set()
        return {i: p for i, p in found.items() if p.document_id not in gone}
