"""Extracted documents to chunks: bounded in size, cut where the text allows, overlapping where a
cut falls inside a block, each knowing where it starts and where it lies in the text."""

import re
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.knowledge.chunking import ChunkSizes, chunk_id, split_into_chunks
from infra.knowledge.extraction import (
    Block,
    BlockKind,
    Extracted,
    Location,
    UnreadableDocument,
    extract_document,
)

DOCUMENT = uuid.UUID("2f0c6a4e-8d0b-4c8e-9b1e-5d7f0e7c1a11")

# Sentences of different lengths, so cuts do not line up by accident.
SENTENCES = [
    "Parley records every change as an event.",
    "Followers build read models from the log, each at its own pace.",
    "A follower that falls behind reports its lag.",
    "The audit chain hashes the stored bytes of every event, so any later change shows.",
    "Erasure destroys a data key and leaves the log intact.",
    "Replies stream to the browser as they are generated.",
]


def prose(sentences: int, offset: int = 0) -> str:
    return " ".join(SENTENCES[(offset + i) % len(SENTENCES)] for i in range(sentences))


def long_paragraph() -> Extracted:
    return extract_document(prose(60).encode(), "long.txt")


def test_no_chunk_is_longer_than_the_maximum() -> None:
    for sizes in (ChunkSizes(), ChunkSizes(300, 40), ChunkSizes(100, 0)):
        chunks = split_into_chunks(long_paragraph(), DOCUMENT, 1, sizes)
        assert len(chunks) > 3
        assert max(len(c.text) for c in chunks) <= sizes.max_chars


def test_offsets_map_back_to_the_document_text() -> None:
    extracted = extract_document(handbook().encode(), "handbook.md")
    text = extracted.text
    for chunk in split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(200, 30)):
        assert text[chunk.start : chunk.end] == chunk.text


def test_chunks_cover_the_whole_text() -> None:
    extracted = long_paragraph()
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(250, 40))
    assert chunks[0].start == 0 and chunks[-1].end == len(extracted.text)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start <= before.end  # an overlap or a seam, never a gap


def test_a_chunk_never_splits_a_word() -> None:
    extracted = long_paragraph()
    text = extracted.text
    for chunk in split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(170, 30)):
        assert chunk.start == 0 or text[chunk.start - 1].isspace()
        assert chunk.end == len(text) or text[chunk.end].isspace()


def test_inside_a_long_paragraph_chunks_end_after_a_sentence() -> None:
    chunks = split_into_chunks(long_paragraph(), DOCUMENT, 1)
    assert all(c.text.endswith(".") for c in chunks)


def test_the_next_chunk_repeats_about_the_overlap_starting_at_a_sentence() -> None:
    sizes = ChunkSizes(800, 120)
    chunks = split_into_chunks(long_paragraph(), DOCUMENT, 1, sizes)
    for before, after in zip(chunks, chunks[1:], strict=False):
        repeated = before.end - after.start
        assert sizes.overlap_chars // 2 <= repeated <= sizes.overlap_chars
        assert after.text.startswith(tuple(SENTENCES))
        assert before.text.endswith(after.text[:repeated])


def test_sizes_can_be_given_in_approximate_tokens() -> None:
    assert ChunkSizes.from_tokens(200, 30) == ChunkSizes(800, 120)
    with pytest.raises(ValueError, match="under half"):
        ChunkSizes(100, 50)


def handbook() -> str:
    sections = []
    for title, subtitles in (("Setup", ("Requirements", "Install?")), ("Operations", ("Backups",))):
        sections.append(f"# {title}\n\n{prose(2)}")
        for i, subtitle in enumerate(subtitles):
            sections.append(f"## {subtitle}\n\n{prose(3, i)}\n\n{prose(2, i + 2)}")
    return "\n\n".join(sections)


def test_short_blocks_are_packed_and_cut_between_blocks_without_overlap() -> None:
    extracted = extract_document(handbook().encode(), "handbook.md")
    block_ends, offset = set(), 0
    for block in extracted.text_blocks:
        offset += len(block.text)
        block_ends.add(offset)
        offset += len("\n\n")
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(400, 60))
    assert all(c.end in block_ends for c in chunks)
    assert any(c.text.count("\n\n") >= 2 for c in chunks)  # several blocks in one chunk
    assert all(after.start > before.end for before, after in zip(chunks, chunks[1:], strict=False))


def test_a_section_that_fits_is_a_chunk_of_its_own() -> None:
    extracted = extract_document(handbook().encode(), "handbook.md")
    headings = [b.text for b in extracted.text_blocks if b.kind == BlockKind.HEADING]
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(400, 60))
    assert [c.text.split("\n")[0] for c in chunks] == headings


def test_a_chunk_never_ends_with_a_heading() -> None:
    extracted = extract_document(handbook().encode(), "handbook.md")
    headings = tuple(b.text for b in extracted.text_blocks if b.kind == BlockKind.HEADING)
    for sizes in (ChunkSizes(max_chars, max_chars // 7) for max_chars in range(60, 700, 7)):
        chunks = split_into_chunks(extracted, DOCUMENT, 1, sizes)
        assert not any(c.text.endswith(headings) for c in chunks)


def test_a_heading_that_ends_like_a_sentence_is_not_cut_off_from_its_text() -> None:
    question = "Why does Parley keep every change as an event instead of updating rows?"
    words = " ".join(["events"] * 60)  # no sentence in sight: only word ends to cut at
    faq = f"A short introduction to the questions\n\n## {question}\n\n{words}"
    extracted = extract_document(faq.encode(), "faq.md")
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(200, 30))
    assert not chunks[0].text.endswith(question)
    assert question in chunks[0].text and chunks[0].text.endswith("events")


def test_a_heading_before_a_word_longer_than_a_chunk_stays_with_it() -> None:
    extracted = extract_document(("Intro\n\n# Title\n\n" + "x" * 300).encode(), "a.md")
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(100, 10))
    assert [c.text for c in chunks[:2]] == ["Intro", "Title\n\n" + "x" * 93]
    assert [len(c.text) for c in chunks[2:]] == [100, 100, 7]


def test_an_overlap_gives_way_to_a_long_word() -> None:
    # The overlap would start at the second "a", leaving only a cut inside the x's in reach.
    extracted = extract_document(("a a " + "x" * 19).encode(), "a.txt")
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(20, 5))
    assert [c.text for c in chunks] == ["a a", "x" * 19]


def test_every_chunk_knows_the_headings_it_starts_under() -> None:
    extracted = extract_document(handbook().encode(), "handbook.md")
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(400, 60))
    starts = {c.text.split("\n")[0]: c.location.describe() for c in chunks}
    assert starts["Requirements"] == "Setup > Requirements"
    assert starts["Backups"] == "Operations > Backups"


def test_a_chunk_across_a_page_break_names_its_first_and_last_page() -> None:
    # Pages of about 400 characters: two fit in one chunk of 800, the third does not.
    pages = [
        Block(prose(7, page), BlockKind.PARAGRAPH, Location(page=page)) for page in range(1, 5)
    ]
    assert all(380 < len(page.text) < 430 for page in pages)
    chunks = split_into_chunks(Extracted("application/pdf", pages, 4), DOCUMENT, 1)
    assert [(c.location.page, c.last_page) for c in chunks] == [(1, 2), (3, 3), (4, 4)]
    assert [c.describe() for c in chunks] == ["pages 1–2", "page 3", "page 4"]


def test_a_word_longer_than_a_chunk_is_the_only_thing_cut() -> None:
    token = "x" * 250
    extracted = extract_document(f"Before the key. {token} After the key.".encode(), "key.txt")
    chunks = split_into_chunks(extracted, DOCUMENT, 1, ChunkSizes(100, 20))
    assert any(re.fullmatch("x{100}", c.text) for c in chunks)  # cut inside the long word
    assert max(len(c.text) for c in chunks) <= 100
    assert "".join(c.text for c in chunks).count("x") == 250
    assert chunks[0].text == "Before the key."


def test_the_same_document_gives_the_same_chunks_under_the_same_ids() -> None:
    first = split_into_chunks(long_paragraph(), DOCUMENT, 3)
    again = split_into_chunks(long_paragraph(), DOCUMENT, 3)
    assert first == again
    assert [c.id for c in first] == [chunk_id(DOCUMENT, 3, i) for i in range(len(first))]


def test_another_version_or_document_gives_other_chunk_ids() -> None:
    ids = {c.id for c in split_into_chunks(long_paragraph(), DOCUMENT, 1)}
    assert ids.isdisjoint(c.id for c in split_into_chunks(long_paragraph(), DOCUMENT, 2))
    assert ids.isdisjoint(c.id for c in split_into_chunks(long_paragraph(), uuid.uuid4(), 1))
    assert chunk_id(DOCUMENT, 1, 0) == uuid.uuid5(DOCUMENT, "chunk 1:0")


@pytest.mark.parametrize("text", ["." * 500_000 + "x", "x." + " " * 500_000 + "y"])
def test_crafted_text_is_chunked_in_linear_time(text: str) -> None:
    # A run of full stops once cost its length squared in the sentence patterns: minutes here.
    extracted = extract_document(text.encode(), "crafted.txt")
    started = time.monotonic()
    chunks = split_into_chunks(extracted, DOCUMENT, 1)
    assert time.monotonic() - started < 10
    assert "".join(c.text for c in chunks).count(".") >= text.count(".")


def test_a_short_document_is_one_chunk() -> None:
    extracted = extract_document(b"# Hello\n\nA short note.", "note.md")
    (chunk,) = split_into_chunks(extracted, DOCUMENT, 1)
    assert (chunk.text, chunk.start, chunk.end) == ("Hello\n\nA short note.", 0, 20)
    assert chunk.location.describe() == "Hello"


# Documents made of words (now and then one longer than a chunk) and what separates them: mostly
# spaces, sometimes a sentence's end, a line break, a new paragraph, heading, list item or row.
WORDS = st.one_of(
    st.text(st.sampled_from("abcdefgh"), min_size=1, max_size=12),
    st.text(st.sampled_from("x"), min_size=1, max_size=500),
)
SEPARATORS = st.sampled_from(
    [" "] * 20
    + [". ", "! ", "? ", '." ', "…\t", "\n", "\n\n", "\n\n# ", "\n\n- ", "\n| ", "\n\n## On\n\n"]
)
DOCUMENTS = st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=600).map(
    lambda parts: "".join(word + separator for word, separator in parts)
)
# And any mix of the characters the chunker looks at.
CHARACTERS = st.text(st.sampled_from(list("aaaaabbbbcc     \n\n\t.!?…\"')#-=|`*1")), max_size=2_000)


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(DOCUMENTS, CHARACTERS),
    markdown=st.booleans(),
    max_chars=st.integers(20, 400),
    overlap_share=st.floats(0, 0.49),
)
def test_any_text_gives_chunks_that_keep_every_promise(
    text: str, markdown: bool, max_chars: int, overlap_share: float
) -> None:
    try:
        extracted = extract_document(text.encode(), "any.md" if markdown else "any.txt")
    except UnreadableDocument:
        return  # only blank: nothing to chunk
    sizes = ChunkSizes(max_chars, min(int(max_chars * overlap_share), max_chars // 2 - 1))
    chunks = split_into_chunks(extracted, DOCUMENT, 7, sizes)
    assert chunks == split_into_chunks(extracted, DOCUMENT, 7, sizes)
    whole = extracted.text
    assert chunks[0].start == 0 and chunks[-1].end == len(whole)
    for i, chunk in enumerate(chunks):
        assert chunk.text == whole[chunk.start : chunk.end] and chunk.text.strip() == chunk.text
        assert 0 < len(chunk.text) <= sizes.max_chars
        assert (chunk.index, chunk.id) == (i, chunk_id(DOCUMENT, 7, i))
        # A word is cut only where it fills a whole chunk, and the next chunk goes on from there.
        if chunk.end < len(whole) and not whole[chunk.end].isspace():
            assert not any(c.isspace() for c in chunk.text)
            assert chunks[i + 1].start == chunk.end
    heading_ends, offset = set(), 0
    for block in extracted.text_blocks:
        offset += len(block.text)
        if block.kind == BlockKind.HEADING:
            heading_ends.add(offset)
        offset += len("\n\n")
    assert not any(c.end in heading_ends for c in chunks[:-1])  # a heading goes with its text
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.start < after.start and before.end < after.end  # each brings new text
        assert not whole[before.end : after.start].strip()  # an overlap or a seam, no gap
        assert before.end - after.start <= sizes.overlap_chars
        if after.start > 0 and not whole[after.start - 1].isspace():  # starts inside a word
            assert after.start == before.end
