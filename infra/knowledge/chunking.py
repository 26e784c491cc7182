"""Extracted documents to passages ("chunks") of bounded size, the unit that is embedded,
searched and cited.

A chunk ends, by preference, where a section ends (just before a heading), then where a block
ends, then after a sentence, then at a line break, and only otherwise between two words; a word
longer than a whole chunk is the one thing cut. Only ends in the second half of a chunk's room
count (a section's end from its second quarter on), so chunks are not needlessly short. The next
chunk repeats the end of the previous one (the overlap) when the cut fell inside a block,
starting at a sentence where it can and never reaching back over a block boundary; a cut between
blocks needs no overlap. Chunks are a pure function of the text and the sizes, so processing a
document version again gives the same chunks under the same ids.
"""

from __future__ import annotations

import re
import uuid
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from uuid import UUID

from infra.knowledge.extraction import BLOCK_SEPARATOR, BlockKind, Extracted, Location


@dataclass(frozen=True)
class ChunkSizes:
    """How long a chunk may be and how much of it the next one repeats, in characters."""

    max_chars: int = 800
    overlap_chars: int = 120

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError("a chunk must be allowed at least 20 characters")
        if not 0 <= self.overlap_chars < self.max_chars // 2:
            raise ValueError("the overlap must be under half a chunk")

    @classmethod
    def from_tokens(
        cls, max_tokens: int, overlap_tokens: int, chars_per_token: float = 4.0
    ) -> ChunkSizes:
        """Sizes given in approximate tokens (about four characters each in English prose)."""
        return cls(round(max_tokens * chars_per_token), round(overlap_tokens * chars_per_token))


DEFAULT_SIZES = ChunkSizes()


@dataclass(frozen=True)
class Chunk:
    id: UUID
    """Stable per (document, version, index): `chunk_id`."""
    index: int
    text: str
    """Exactly `Extracted.text[start:end]`."""
    start: int
    end: int
    location: Location
    """Where the chunk starts: its first block's page and heading path."""
    last_page: int | None
    """The page the chunk ends on (a PDF's chunk may run onto the next page)."""

    def describe(self) -> str:
        """Where a citation points: "pages 3–4", "page 3", "Setup > Requirements", or ""."""
        return self.location.describe(last_page=self.last_page)


def chunk_id(document_id: UUID, version: int, index: int) -> UUID:
    """The id of a document version's `index`-th chunk; the same on every processing."""
    return uuid.uuid5(document_id, f"chunk {version}:{index}")


# Each match is tried only at the start of a run of stops (the lookbehind) and never gives
# characters back (possessive quantifiers): a long run of "." would otherwise cost its length
# squared.
_STOPS = r"(?<![.!?…。！？])[.!?…。！？]++[\"'”’)\]]*+"
_SENTENCE_END = re.compile(_STOPS + r"(?=\s)")
_SENTENCE_START = re.compile(_STOPS + r"\s++(?=\S)|\n[ \t]*+(?=\S)")
_LINE_END = re.compile(r"\S(?=[ \t]*\n)")
_WORD_END = re.compile(r"\S(?=\s)")
_WORD_START = re.compile(r"(?<=\s)\S")

# Preferred ends of a chunk, best first (see the module's docstring).
_SECTION, _BLOCK, _SENTENCE, _LINE = 4, 3, 2, 1


class _Boundaries:
    """Every place of a text where a chunk may end or start, as sorted offsets."""

    def __init__(self, extracted: Extracted, text: str) -> None:
        self.block_starts: list[int] = []
        self.ends: dict[int, list[int]] = {_SECTION: [], _BLOCK: []}
        heading_ends = set()
        offset = 0
        blocks = extracted.text_blocks
        for i, block in enumerate(blocks):
            self.block_starts.append(offset)
            offset += len(block.text)
            if block.kind == BlockKind.HEADING:
                heading_ends.add(offset)
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            # Never right after a heading: the heading belongs with what follows it.
            if following is not None and block.kind != BlockKind.HEADING:
                level = _SECTION if following.kind == BlockKind.HEADING else _BLOCK
                self.ends[level].append(offset)
            offset += len(BLOCK_SEPARATOR)
        for level, pattern in ((_SENTENCE, _SENTENCE_END), (_LINE, _LINE_END)):
            ends = (m.end() for m in pattern.finditer(text))
            self.ends[level] = [end for end in ends if end not in heading_ends]
        self.word_ends = [m.end() for m in _WORD_END.finditer(text) if m.end() not in heading_ends]
        self.sentence_starts = [m.end() for m in _SENTENCE_START.finditer(text)]
        self.word_starts = [m.start() for m in _WORD_START.finditer(text)]

    def best_end(self, start: int, limit: int, beyond: int) -> tuple[int, int]:
        """The best end in (start, limit] past `beyond` (the previous chunk's end: every chunk
        brings new text) and its level: the last one of the best level found in the chunk's
        second half (a section's end already in its second quarter), else the last word end,
        else `limit` itself (level -1: mid-word)."""
        size = limit - start
        for level in (_SECTION, _BLOCK, _SENTENCE, _LINE):
            floor = start + (size // 4 if level == _SECTION else size // 2)
            if (end := _last_in(self.ends[level], max(floor, beyond + 1), limit)) is not None:
                return end, level
        if (end := _last_in(self.word_ends, max(start, beyond) + 1, limit)) is not None:
            return end, 0
        return limit, -1

    def next_start(self, start: int, end: int, level: int, overlap: int) -> int:
        """Where the chunk after [start, end) begins."""
        if level == -1:
            return end
        if level >= _BLOCK:
            return self.block_starts[bisect_left(self.block_starts, end)]
        block_start = self.block_starts[bisect_right(self.block_starts, end - 1) - 1]
        earliest = max(end - overlap, block_start, start + 1)
        if earliest < end:
            # A sentence start gives an overlap that reads well; at least half the overlap.
            sentence = _first_in(self.sentence_starts, earliest, end - overlap // 2)
            if sentence is not None:
                return sentence
            if (word := _first_in(self.word_starts, earliest, end - 1)) is not None:
                return word
        return self.word_starts[bisect_left(self.word_starts, end)]


def _last_in(offsets: list[int], low: int, high: int) -> int | None:
    i = bisect_right(offsets, high) - 1
    return offsets[i] if i >= 0 and offsets[i] >= low else None


def _first_in(offsets: list[int], low: int, high: int) -> int | None:
    i = bisect_left(offsets, low)
    return offsets[i] if i < len(offsets) and offsets[i] <= high else None


def split_into_chunks(
    extracted: Extracted, document_id: UUID, version: int, sizes: ChunkSizes = DEFAULT_SIZES
) -> list[Chunk]:
    """The chunks of one version of a document, in order; offsets index `extracted.text`."""
    text = extracted.text
    if not text:
        return []
    bounds = _Boundaries(extracted, text)
    blocks = extracted.text_blocks
    chunks: list[Chunk] = []
    start = 0
    while start < len(text):
        limit = start + sizes.max_chars
        if limit >= len(text):
            end, following = len(text), len(text)
        else:
            beyond = chunks[-1].end if chunks else 0
            end, level = bounds.best_end(start, limit, beyond)
            if level == -1 and start < beyond:
                # Only a cut inside a word is in reach: the overlap gives way, and the word starts
                # a chunk of its own (it is cut only if longer than a whole chunk).
                start = bounds.word_starts[bisect_left(bounds.word_starts, beyond)]
                continue
            following = bounds.next_start(start, end, level, sizes.overlap_chars)
        first = blocks[bisect_right(bounds.block_starts, start) - 1]
        last = blocks[bisect_right(bounds.block_starts, end - 1) - 1]
        index = len(chunks)
        chunks.append(
            Chunk(
                chunk_id(document_id, version, index),
                index,
                text[start:end],
                start,
                end,
                first.location,
                last.location.page,
            )
        )
        start = following
    return chunks
