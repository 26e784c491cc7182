"""From a document's bytes to the passages the knowledge index holds: extract, chunk, embed.

The knowledge projection runs it for every revision of every document; `parley bench knowledge`
runs the same steps, so what it measures is what production does. Each passage is embedded with
where it stands in its document (its title and location) in front of its text, as a reader
would see it: a passage that says "it" then still says what "it" is about.
"""

from dataclasses import dataclass
from uuid import UUID

from infra.knowledge.chunking import DEFAULT_SIZES, Chunk, ChunkSizes, split_into_chunks
from infra.knowledge.embeddings import Embedder
from infra.knowledge.extraction import DEFAULT_LIMITS, Extracted, ExtractionLimits, extract
from infra.knowledge.index import ChunkRecord


@dataclass(frozen=True)
class DocumentFacts:
    document_id: UUID
    tenant_id: UUID
    owner_id: UUID | None
    title: str
    media_type: str
    revision: int
    position: int
    """Log position of the event asking for this revision."""


@dataclass(frozen=True)
class Ingested:
    extracted: Extracted
    chunks: list[ChunkRecord]


def embedding_text(title: str, chunk: Chunk) -> str:
    """What is embedded for a passage: its document's title, where it is, then the text."""
    where = chunk.describe()
    head = f"{title} — {where}" if where else title
    return f"{head}\n{chunk.text}"


def ingest(
    data: bytes,
    facts: DocumentFacts,
    embedder: Embedder,
    *,
    sizes: ChunkSizes = DEFAULT_SIZES,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> Ingested:
    """Extract (raises extraction's typed errors), chunk and embed one revision."""
    extracted = extract(data, facts.media_type, limits)
    return Ingested(extracted, records(extracted, facts, embedder, sizes))


def records(
    extracted: Extracted, facts: DocumentFacts, embedder: Embedder, sizes: ChunkSizes
) -> list[ChunkRecord]:
    chunks = split_into_chunks(extracted, facts.document_id, facts.revision, sizes)
    if not chunks:
        return []
    vectors = embedder.embed([embedding_text(facts.title, c) for c in chunks])
    return [
        ChunkRecord(
            chunk_id=chunk.id,
            document_id=facts.document_id,
            tenant_id=facts.tenant_id,
            owner_id=facts.owner_id,
            revision=facts.revision,
            index=chunk.index,
            text=chunk.text,
            title=facts.title,
            location=chunk.describe(),
            start=chunk.start,
            end=chunk.end,
            vector=vector,
            position=facts.position,
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]
