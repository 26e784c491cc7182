"""The `knowledge` benchmark's passages: the corpus read as production reads a document (extract,
chunk, embed: `infra/knowledge/ingest.py`'s steps, each timed), who owns which copy of it, and
the synthetic filler that brings one tenant to 100,000 passages.

Layout, in one run:

- tenant A, user U (the one asking): every corpus document once, alternately U's personal
  document and the tenant's collection, so `Scope(A, U)` sees them all;
- tenant A, user V: a copy of every corpus document, personal to V (U must never see it);
- tenant B: a copy of every corpus document in its collection (A must never see it);
- tenant A: filler documents up to `--chunks` passages in A, most in the collection, some U's
  (visible) and some V's (not).

Filler is synthetic, because embedding 100,000 real passages takes about an hour on this
machine. A filler passage's words are drawn at random from the corpus's word frequencies (as
many as a real passage has), and its vector is a random vector at a chosen cosine
(`FILLER_COSINE`) from the vector of a real passage picked at random. The two are drawn
independently: a filler passage competes with the real ones in either ranking, but it is not
real text, and it seldom competes in both at once as a real passage on the same subject would
(which flatters hybrid search). Recall at 100,000 says how well the answers stand out among such
distractors, not among 100,000 real passages.
"""

import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt

from api.progress import ProgressBar
from bench.knowledge_corpus import Document
from infra.knowledge.chunking import Chunk, ChunkSizes, chunk_id, split_into_chunks
from infra.knowledge.embeddings import Embedder
from infra.knowledge.extraction import Extracted, extract_document
from infra.knowledge.index import ChunkRecord
from infra.knowledge.ingest import embedding_text

Vector = npt.NDArray[np.float32]

FILLER_DOCUMENT_CHUNKS = 50
"""Passages per filler document (a manual of 20 to 30 pages)."""
FILLER_COSINE = (0.3, 0.9)
"""A filler passage's vector is at a cosine drawn uniformly from this range from the vector of a
real passage of the document it imitates."""
FILLER_OWNERS = {"collection": 0.7, "asker": 0.2, "other": 0.1}
"""Shares of the filler documents: the tenant's collection, the asking user's own, another
user's (invisible to the asker)."""
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'-]*[A-Za-z0-9]")


# -- ingestion, as production does it --------------------------------------------------------------


@dataclass(frozen=True)
class Extraction:
    """Reading documents of one format: documents, PDF pages, characters and the time taken."""

    documents: int
    pages: int
    characters: int
    seconds: float

    def figures(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "pages": self.pages,
            "characters": self.characters,
            "seconds": round(self.seconds, 3),
            "documents_per_second": _rate(self.documents, self.seconds),
            "pages_per_second": _rate(self.pages, self.seconds),
            "characters_per_second": _rate(self.characters, self.seconds),
        }


def extract_all(documents: Sequence[Document]) -> tuple[dict[str, Extracted], Extraction]:
    """Each document's text (keyed by its name), and how long reading them all took."""
    extracted: dict[str, Extracted] = {}
    started = time.perf_counter()
    for document in documents:
        extracted[document.name] = extract_document(document.data, document.name)
    seconds = time.perf_counter() - started
    pages = sum(e.page_count or 0 for e in extracted.values())
    characters = sum(len(e.text) for e in extracted.values())
    return extracted, Extraction(len(extracted), pages, characters, seconds)


@dataclass(frozen=True)
class CorpusPassage:
    document: str
    """The corpus document's name."""
    chunk: Chunk


@dataclass(frozen=True)
class Timed:
    """`items` done in `seconds`."""

    items: int
    seconds: float

    def figures(self, unit: str) -> dict[str, Any]:
        return {
            unit: self.items,
            "seconds": round(self.seconds, 3),
            f"{unit}_per_second": _rate(self.items, self.seconds),
        }


def chunk_all(
    extracted: dict[str, Extracted], document_ids: dict[str, UUID], sizes: ChunkSizes
) -> tuple[list[CorpusPassage], Timed]:
    """Every document's passages, in order, and how long cutting them took."""
    passages: list[CorpusPassage] = []
    started = time.perf_counter()
    for name, text in extracted.items():
        chunks = split_into_chunks(text, document_ids[name], 1, sizes)
        passages += [CorpusPassage(name, chunk) for chunk in chunks]
    return passages, Timed(len(passages), time.perf_counter() - started)


def embed_passages(embedder: Embedder, passages: Sequence[CorpusPassage]) -> tuple[Vector, Timed]:
    """Each passage embedded as the knowledge projection embeds it (title, location, text), one
    call per passage, and how long that took."""
    progress = ProgressBar("embedding the corpus", unit="passages")
    vectors = np.zeros((len(passages), embedder.dimensions), dtype=np.float32)
    seconds = 0.0
    for i, passage in enumerate(passages):
        text = embedding_text(passage.document, passage.chunk)
        started = time.perf_counter()
        vectors[i] = embedder.embed([text])[0]
        seconds += time.perf_counter() - started
        progress.update(i + 1, len(passages))
    return vectors, Timed(len(passages), seconds)


def embed_questions(embedder: Embedder, questions: Sequence[str]) -> tuple[Vector, list[float]]:
    """Each question embedded as retrieval embeds it (the text alone), with each one's time."""
    vectors = np.zeros((len(questions), embedder.dimensions), dtype=np.float32)
    seconds: list[float] = []
    for i, question in enumerate(questions):
        started = time.perf_counter()
        vectors[i] = embedder.embed([question.strip()])[0]
        seconds.append(time.perf_counter() - started)
    return vectors, seconds


# -- who owns what ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class People:
    """The run's tenants and users (random ids: nothing is shared with another run)."""

    tenant: UUID
    asker: UUID
    other_user: UUID
    other_tenant: UUID

    @classmethod
    def of_seed(cls, seed: int) -> "People":
        """The same ids for the same seed, so ties between equal scores break alike."""
        return cls(*(run_uuid(seed, who) for who in ("tenant", "asker", "other", "other tenant")))


def run_uuid(seed: int, name: str) -> UUID:
    """A stable id for `name` in the runs of one seed."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"parley-bench-knowledge:{seed}:{name}")


@dataclass(frozen=True)
class IndexedDocument:
    tenant_id: UUID
    document_id: UUID
    chunks: list[ChunkRecord]


@dataclass
class Positions:
    """Log positions for the records, increasing as a log's would."""

    next: int = 1

    def take(self) -> int:
        self.next += 1
        return self.next - 1


def corpus_documents(
    passages: Sequence[CorpusPassage],
    vectors: Vector,
    document_ids: dict[str, UUID],
    people: People,
    positions: Positions,
) -> list[IndexedDocument]:
    """The labelled corpus in tenant A: every other document the asker's own, the rest the
    tenant's collection."""
    by_document = _grouped(passages, vectors)
    documents = []
    for i, (name, rows) in enumerate(by_document.items()):
        owner = people.asker if i % 2 == 0 else None
        document_id = document_ids[name]
        records = _records(people.tenant, document_id, owner, name, rows, positions.take())
        documents.append(IndexedDocument(people.tenant, document_id, records))
    return documents


def shadow_documents(
    passages: Sequence[CorpusPassage],
    vectors: Vector,
    people: People,
    positions: Positions,
    seed: int,
) -> list[IndexedDocument]:
    """The same texts and vectors where the asker must not see them: personal documents of
    another user of the tenant, and another tenant's collection."""
    by_document = _grouped(passages, vectors)
    documents = []
    for tenant, owner in ((people.tenant, people.other_user), (people.other_tenant, None)):
        for name, rows in by_document.items():
            document_id = run_uuid(seed, f"{tenant} {owner} {name}")
            copied = [(CorpusPassage(name, _renumbered(p.chunk, document_id)), v) for p, v in rows]
            records = _records(tenant, document_id, owner, name, copied, positions.take())
            documents.append(IndexedDocument(tenant, document_id, records))
    return documents


def _grouped(
    passages: Sequence[CorpusPassage], vectors: Vector
) -> dict[str, list[tuple[CorpusPassage, Vector]]]:
    grouped: dict[str, list[tuple[CorpusPassage, Vector]]] = {}
    for passage, vector in zip(passages, vectors, strict=True):
        grouped.setdefault(passage.document, []).append((passage, vector))
    return grouped


def _renumbered(chunk: Chunk, document_id: UUID) -> Chunk:
    return Chunk(
        chunk_id(document_id, 1, chunk.index),
        chunk.index,
        chunk.text,
        chunk.start,
        chunk.end,
        chunk.location,
        chunk.last_page,
    )


def _records(
    tenant: UUID,
    document_id: UUID,
    owner: UUID | None,
    title: str,
    rows: Sequence[tuple[CorpusPassage, Vector]],
    position: int,
) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            chunk_id=p.chunk.id,
            document_id=document_id,
            tenant_id=tenant,
            owner_id=owner,
            revision=1,
            index=p.chunk.index,
            text=p.chunk.text,
            title=title,
            location=p.chunk.describe(),
            start=p.chunk.start,
            end=p.chunk.end,
            vector=vector,
            position=position,
        )
        for p, vector in rows
    ]


# -- synthetic filler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillerPlan:
    """How many filler documents and passages bring tenant A to the wanted size, and whose."""

    documents: int
    chunks: int
    visible_chunks: int
    """Filler passages the asker may see (the collection's and their own)."""


class Filler:
    """Filler documents imitating the corpus, generated one at a time from the run's seed (the
    same for every engine)."""

    def __init__(
        self,
        passages: Sequence[CorpusPassage],
        vectors: Vector,
        extracted: dict[str, Extracted],
        people: People,
        seed: int,
    ) -> None:
        self._people = people
        self._seed = seed
        counts = Counter(w for e in extracted.values() for w in _WORD.findall(e.text))
        self._words = sorted(counts)
        weights = np.array([counts[w] for w in self._words], dtype=np.float64)
        self._weights = weights / weights.sum()
        self._vectors = vectors
        lengths = [len(_WORD.findall(p.chunk.text)) for p in passages]
        self._lengths = np.array(lengths or [100], dtype=np.int64)

    def plan(self, chunks: int) -> FillerPlan:
        documents = math.ceil(chunks / FILLER_DOCUMENT_CHUNKS) if chunks > 0 else 0
        visible = 0
        for i in range(documents):
            size = self._size(i, chunks)
            if self._owner(np.random.default_rng([self._seed, i])) != self._people.other_user:
                visible += size
        return FillerPlan(documents, max(chunks, 0), visible)

    def documents(self, chunks: int, positions: Positions) -> Iterator[IndexedDocument]:
        """Filler documents holding `chunks` passages in all."""
        for i in range(self.plan(chunks).documents):
            rng = np.random.default_rng([self._seed, i])
            owner = self._owner(rng)
            yield self._document(rng, owner, self._size(i, chunks), positions.take())

    def _size(self, i: int, chunks: int) -> int:
        return min(FILLER_DOCUMENT_CHUNKS, chunks - i * FILLER_DOCUMENT_CHUNKS)

    def _owner(self, rng: np.random.Generator) -> UUID | None:
        roll = rng.random()
        if roll < FILLER_OWNERS["collection"]:
            return None
        if roll < FILLER_OWNERS["collection"] + FILLER_OWNERS["asker"]:
            return self._people.asker
        return self._people.other_user

    def _document(
        self, rng: np.random.Generator, owner: UUID | None, size: int, position: int
    ) -> IndexedDocument:
        document_id = uuid.UUID(bytes=rng.bytes(16), version=4)
        title = "-".join(rng.choice(self._words, size=3)).lower() + ".pdf"
        sources = self._vectors[rng.integers(len(self._vectors), size=size)]
        vectors = _at_cosine(sources, rng.uniform(*FILLER_COSINE, size=size), rng)
        records = []
        offset = 0
        for index in range(size):
            length = int(self._lengths[rng.integers(len(self._lengths))])
            text = " ".join(rng.choice(self._words, size=length, p=self._weights))
            records.append(
                ChunkRecord(
                    chunk_id=uuid.uuid5(document_id, f"chunk 1:{index}"),
                    document_id=document_id,
                    tenant_id=self._people.tenant,
                    owner_id=owner,
                    revision=1,
                    index=index,
                    text=text,
                    title=title,
                    location=f"page {index // 2 + 1}",
                    start=offset,
                    end=offset + len(text),
                    vector=vectors[index],
                    position=position,
                )
            )
            offset += len(text) + 2
        return IndexedDocument(self._people.tenant, document_id, records)


def _at_cosine(
    sources: npt.NDArray[np.float32], cosines: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """For each unit row of `sources`, a unit vector at exactly that row's cosine from it, in a
    random direction otherwise."""
    noise = rng.standard_normal(sources.shape)
    noise -= np.sum(noise * sources, axis=1, keepdims=True) * sources  # orthogonal to the source
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    c = cosines[:, None]
    vectors = c * sources + np.sqrt(1 - c * c) * noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _rate(items: int, seconds: float) -> float:
    return round(items / seconds, 1) if seconds > 0 else 0.0
