"""Documents to text: the type is read from the bytes, and the text keeps the place a citation
names (a PDF's page, a heading path). Real documents throughout: PDFs printed by Chromium,
Word files written by python-docx."""

import contextlib
import io
import os
import random
import subprocess
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from docx.document import Document as WordDocument
from pypdf import PdfReader, PdfWriter

from domain.errors import InvalidInput
from infra.knowledge.extraction import (
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    PLAIN_TEXT,
    BlockKind,
    DocumentTooLarge,
    ExtractionLimits,
    Location,
    UnreadableDocument,
    UnsupportedDocument,
    decode_text,
    extract,
    extract_document,
    sniff,
)

CHROMIUM = os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium")

THREE_PAGES = """<!doctype html>
<html><head><meta charset="utf-8"><title>Handbook</title>
<style>section { break-after: page; } body { font: 14px serif; }</style></head>
<body>
<section><h1>Installation</h1><p>Parley installs from the lock file with pip.</p></section>
<section><h1>Configuration</h1><p>Every setting starts with PARLEY and an underscore.</p></section>
<section><h1>Operations</h1><p>The worker runs every follower of the event log.</p></section>
</body></html>
"""


def print_to_pdf(html: str, directory: Path) -> bytes:
    """A real PDF: Chromium prints the page, as a person saving a web page as PDF would."""
    source, target = directory / "page.html", directory / "page.pdf"
    source.write_text(html, encoding="utf-8")
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={directory / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return target.read_bytes()


@pytest.fixture(scope="module")
def three_page_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return print_to_pdf(THREE_PAGES, tmp_path_factory.mktemp("pdf"))


def word_document(build: Callable[[WordDocument], object]) -> bytes:
    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_of(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


# --- the type comes from the bytes --------------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


def test_a_png_renamed_to_pdf_is_refused_as_an_image() -> None:
    with pytest.raises(UnsupportedDocument, match="PNG image") as refused:
        sniff(PNG, "report.pdf", "application/pdf")
    assert refused.value.code == "BAD_USER_INPUT"
    assert isinstance(refused.value, InvalidInput)


def test_a_program_is_refused_whatever_it_is_called() -> None:
    elf = Path("/bin/true").read_bytes()
    with pytest.raises(UnsupportedDocument, match="program"):
        sniff(elf, "notes.txt", "text/plain")
    windows = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(48)
    with pytest.raises(UnsupportedDocument, match="Windows executable"):
        sniff(windows, "setup.docx", DOCX)


def test_a_pdf_declared_as_plain_text_is_read_as_a_pdf(three_page_pdf: bytes) -> None:
    assert sniff(three_page_pdf, "notes.txt", "text/plain") == PDF
    assert extract_document(three_page_pdf, "notes.txt", "text/plain").page_count == 3


def test_text_declared_as_a_pdf_is_read_as_text() -> None:
    assert sniff(b"Quarterly figures, typed by hand.", "q3.pdf", "application/pdf") == PLAIN_TEXT


def test_a_word_document_is_known_by_its_parts_not_its_name() -> None:
    data = word_document(lambda d: d.add_paragraph("Hello"))
    assert sniff(data, "upload.bin", "application/octet-stream") == DOCX


def test_other_zip_files_are_refused_by_what_they_are() -> None:
    workbook = zip_of({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
    with pytest.raises(UnsupportedDocument, match=r"Excel workbook"):
        sniff(workbook, "table.docx", DOCX)
    with pytest.raises(UnsupportedDocument, match="ZIP archive"):
        sniff(zip_of({"a.txt": b"hello"}), "a.zip", None)


def test_an_old_word_file_is_refused_with_what_to_do() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with pytest.raises(UnsupportedDocument, match=r"save it as \.docx"):
        sniff(ole, "letter.doc", "application/msword")


def test_html_is_known_by_its_doctype_whatever_its_name() -> None:
    assert sniff(b"\n<!DOCTYPE html><p>hi</p>", "page.txt", "text/plain") == HTML
    assert sniff(b"<!-- saved --><HTML><body>hi</body></HTML>", "x", None) == HTML


def test_an_html_fragment_is_html_only_when_named_or_declared_so() -> None:
    fragment = b"<p>Hello <b>there</b></p>"
    assert sniff(fragment, "part.html", None) == HTML
    assert sniff(fragment, "part", "text/html; charset=utf-8") == HTML
    assert sniff(fragment, "part.txt", None) == PLAIN_TEXT


def test_markdown_is_told_from_plain_text_by_its_extension_only() -> None:
    text = b"# Title\n\nSome *text*."
    assert sniff(text, "README.md", None) == MARKDOWN
    assert sniff(text, "readme.markdown", "text/plain") == MARKDOWN
    assert sniff(text, "readme.txt", None) == PLAIN_TEXT
    assert extract_document(text, "readme.txt").text == "# Title\n\nSome *text*."


# --- character sets -----------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_not_part_of_the_text() -> None:
    assert decode_text(b"\xef\xbb\xbfna\xc3\xafve") == "naïve"


def test_utf16_with_a_byte_order_mark_either_way() -> None:
    text = "Grüße, 世界"
    assert decode_text(text.encode("utf-16")) == text
    assert decode_text(b"\xfe\xff" + text.encode("utf-16-be")) == text
    assert sniff(text.encode("utf-16"), "a.txt", None) == PLAIN_TEXT


def test_utf16_without_a_byte_order_mark() -> None:
    text = "Plain ASCII saved as UTF-16 by an old Windows tool."
    assert decode_text(text.encode("utf-16-le")) == text
    assert decode_text(text.encode("utf-16-be")) == text


def test_text_that_is_not_utf8_is_read_as_windows_1252() -> None:
    assert decode_text("“Price”: 5 € – café".encode("cp1252")) == "“Price”: 5 € – café"


def test_bytes_windows_1252_leaves_undefined_fall_back_to_latin1() -> None:
    # 0x81 has no character in Windows-1252; Latin-1 reads every byte.
    assert decode_text(b"caf\xe9 " * 30 + b"\x81") == "café " * 30 + "\x81"


def test_binary_data_is_not_text() -> None:
    with pytest.raises(UnsupportedDocument, match="binary data"):
        decode_text(bytes(range(256)) * 4)


# --- HTML -----------------------------------------------------------------------------------------


def test_html_keeps_the_reading_text_and_drops_code_styles_and_navigation() -> None:
    page = b"""<!doctype html><html><head><title>Site title</title>
    <script>document.write("injected")</script><style>p { color: red }</style></head>
    <body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
    <h1>Caf&eacute; &amp; Tea</h1><p>Opening&nbsp;hours&#58; 8&ndash;18<br>Closed on Sundays</p>
    <noscript>Enable JavaScript</noscript><template><p>later</p></template>
    <footer>Imprint</footer></body></html>"""
    extracted = extract_document(page, "cafe.html")
    # A non-breaking space is a space to a search.
    assert extracted.text == "Café & Tea\n\nOpening hours: 8–18\nClosed on Sundays\n\nImprint"
    assert [b.kind for b in extracted.text_blocks] == [
        BlockKind.HEADING,
        BlockKind.PARAGRAPH,
        BlockKind.PARAGRAPH,
    ]


def test_html_headings_give_each_block_its_heading_path() -> None:
    page = b"""<!doctype html><h1>Guide</h1><p>Intro.</p><h2>Setup</h2><h3>Requirements</h3>
    <ul><li>Python 3.11</li><li>PostgreSQL <b>16</b></li></ul><h2>Usage</h2><p>Run it.</p>"""
    blocks = extract_document(page, "guide.html").text_blocks
    where = {b.text: b.location.describe() for b in blocks}
    assert where["Intro."] == "Guide"
    assert where["PostgreSQL 16"] == "Guide > Setup > Requirements"
    assert where["Run it."] == "Guide > Usage"
    assert [b.kind for b in blocks if b.text.startswith(("Python", "Postgre"))] == [
        BlockKind.LIST_ITEM,
        BlockKind.LIST_ITEM,
    ]


def test_an_html_table_is_one_block_a_row_a_line() -> None:
    page = b"""<!doctype html><table><tr><th>Setting</th><th>Default</th></tr>
    <tr><td>PARLEY_WORKERS</td><td> 4 </td></tr>
    <tr><td>PARLEY_DEBUG</td><td>off</td></tr></table>"""
    (table,) = extract_document(page, "t.html").text_blocks
    assert table.kind == BlockKind.TABLE
    assert table.text == "Setting | Default\nPARLEY_WORKERS | 4\nPARLEY_DEBUG | off"


def test_a_head_left_open_ends_where_the_body_starts() -> None:
    page = b"<html><head><title>Kept out</title><p>The body's first paragraph.</p>"
    assert extract_document(page, "p.html").text == "The body's first paragraph."


def test_preformatted_text_keeps_its_indentation() -> None:
    page = b"<!doctype html><pre>  def f():\n      return 1</pre><p>After.</p>"
    code, after = extract_document(page, "c.html").text_blocks
    assert (code.kind, code.text) == (BlockKind.CODE, "  def f():\n      return 1")
    assert (after.kind, after.text) == (BlockKind.PARAGRAPH, "After.")


def test_what_can_never_close_reads_as_a_browser_shows_it() -> None:
    page = b"<!doctype html><p>1 &lt; 2</p><p>and 3 < 4, <b>5 <= 6"
    assert extract_document(page, "p.html").text == "1 < 2\n\nand 3 < 4, 5 <= 6"
    commented = b"<!doctype html><p>Shown.</p><!-- <p>never closed</p>"
    assert extract_document(commented, "c.html").text == "Shown."


@pytest.mark.parametrize(
    "unit", ["<!--", "<!-- >", "<a ", '<a x="', "</a ", "<?", "<!x", "<![CDATA[ >", "<p"]
)
def test_crafted_html_takes_linear_time(unit: str) -> None:
    # Python's html.parser before 3.11.13 rescans to the end of the input for each of these
    # (CVE-2025-6069): 40,000 "<a " took 45 s, this many would take an hour.
    page = ("<!doctype html><p>text</p>" + unit * 200_000).encode()
    started = time.monotonic()
    assert extract_document(page, "crafted.html").text.startswith("text")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "text", ["# " + " " * 500_000 + "x", "para" + " " * 500_000 + "x", "#" * 500_000 + " x"]
)
def test_crafted_markdown_takes_linear_time(text: str) -> None:
    started = time.monotonic()
    extract_document(text.encode(), "crafted.md")
    assert time.monotonic() - started < 10


# --- Markdown and plain text --------------------------------------------------------------------

README = """# Parley

An event-sourced chat backend.

## Setup

### Requirements

- Python 3.11
- PostgreSQL 16,
  or the embedded one

```sh
# not a heading: a comment in code
make run
```

Usage
-----

| command | does |
|---|---|
| `make test` | runs the suite |
"""


def test_markdown_headings_give_each_block_its_heading_path() -> None:
    extracted = extract_document(README.encode(), "README.md")
    where = {b.text: (b.kind, b.location.headings) for b in extracted.text_blocks}
    assert where["An event-sourced chat backend."] == (BlockKind.PARAGRAPH, ("Parley",))
    assert where["- PostgreSQL 16,\n  or the embedded one"] == (
        BlockKind.LIST_ITEM,
        ("Parley", "Setup", "Requirements"),
    )
    assert where["```sh\n# not a heading: a comment in code\nmake run\n```"][0] == BlockKind.CODE
    assert where["Usage"] == (BlockKind.HEADING, ("Parley", "Usage"))
    assert where["| command | does |\n|---|---|\n| `make test` | runs the suite |"] == (
        BlockKind.TABLE,
        ("Parley", "Usage"),
    )


def test_markdown_front_matter_is_kept_as_one_block_not_read_as_a_heading() -> None:
    page = b"---\ntitle: Backups\nlayout: page\n---\n\n# Backups\n\nNightly."
    blocks = extract_document(page, "backups.md").text_blocks
    assert [(b.kind, b.text) for b in blocks] == [
        (BlockKind.CODE, "---\ntitle: Backups\nlayout: page\n---"),
        (BlockKind.HEADING, "Backups"),
        (BlockKind.PARAGRAPH, "Nightly."),
    ]


def test_plain_text_paragraphs_are_what_blank_lines_separate() -> None:
    text = b"First line\nof the first paragraph.\r\n\r\n  \nSecond paragraph.\n"
    blocks = extract_document(text, "notes.txt").text_blocks
    assert [b.text for b in blocks] == ["First line\nof the first paragraph.", "Second paragraph."]
    assert all(b.location == Location() for b in blocks)


def test_an_empty_document_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match="no text"):
        extract_document(b" \n\n ", "empty.txt")


def test_a_document_over_the_text_limit_is_refused() -> None:
    with pytest.raises(DocumentTooLarge, match="characters"):
        extract_document(b"word " * 1000, "long.txt", limits=ExtractionLimits(max_text_chars=1000))


# --- PDF ----------------------------------------------------------------------------------------


def test_pdf_text_keeps_its_page_numbers(three_page_pdf: bytes) -> None:
    extracted = extract(three_page_pdf, PDF)
    pages = {
        page: " ".join(b.text for b in extracted.text_blocks if b.location.page == page)
        for page in (1, 2, 3)
    }
    assert "Installation" in pages[1] and "lock file" in pages[1]
    assert "Configuration" in pages[2] and "PARLEY" in pages[2]
    assert "Operations" in pages[3] and "follower" in pages[3]
    assert extracted.text_blocks[0].location.describe() == "page 1"


def test_a_location_reads_as_a_citation() -> None:
    assert Location(page=3).describe() == "page 3"
    assert Location(page=3, headings=("Setup", "Requirements")).describe(last_page=4) == (
        "pages 3–4, Setup > Requirements"
    )
    assert Location(headings=("Setup",)).describe() == "Setup"
    assert Location().describe() == ""


def test_a_pdf_over_the_page_limit_is_refused(three_page_pdf: bytes) -> None:
    with pytest.raises(DocumentTooLarge, match="3 pages"):
        extract(three_page_pdf, PDF, ExtractionLimits(max_pdf_pages=2))


def encrypted(pdf: bytes, user_password: str, owner_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_password_protected_pdf_is_refused(three_page_pdf: bytes) -> None:
    locked = encrypted(three_page_pdf, "secret", "owner-secret")
    with pytest.raises(UnreadableDocument, match="password-protected"):
        extract_document(locked, "locked.pdf")


def test_a_pdf_restricted_only_by_an_owner_password_is_read(three_page_pdf: bytes) -> None:
    restricted = encrypted(three_page_pdf, "", "owner-secret")
    assert "Configuration" in extract_document(restricted, "restricted.pdf").text


def test_a_damaged_pdf_is_refused(three_page_pdf: bytes) -> None:
    with pytest.raises(UnreadableDocument, match="damaged"):
        extract_document(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R", "broken.pdf")
    with pytest.raises(UnreadableDocument):
        extract_document(three_page_pdf[:400], "truncated.pdf")


def test_a_pdf_without_text_is_refused_as_such() -> None:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(UnreadableDocument, match="scanned PDF"):
        extract_document(out.getvalue(), "scan.pdf")


def pdf_with_page_content(content: bytes) -> bytes:
    """A one-page PDF written by hand, its page's content stream compressed as given."""
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    return bytes(out + b"startxref\n%d\n%%%%EOF\n" % xref)


def test_a_pdf_whose_page_decompresses_past_pypdfs_cap_is_refused_as_too_large() -> None:
    text = b"BT /F1 12 Tf 72 720 Td (Hello from a hand-made PDF) Tj ET "
    assert extract_document(pdf_with_page_content(text), "hello.pdf").text == (
        "Hello from a hand-made PDF"
    )
    bomb = pdf_with_page_content(text + b" " * (80 * 1024 * 1024))  # 80 MB in about 80 kB
    assert len(bomb) < 200_000
    with pytest.raises(DocumentTooLarge, match="decompresses to more than Parley reads"):
        extract_document(bomb, "bomb.pdf")


# --- Word -----------------------------------------------------------------------------------------


def handbook(document: WordDocument) -> None:
    document.add_heading("Handbook", 0)
    document.add_paragraph("What every operator should know.")
    document.add_heading("Setup", 1)
    document.add_heading("Requirements", 2)
    document.add_paragraph("Python 3.11", style="List Bullet")
    table = document.add_table(rows=2, cols=3)
    table.rows[0].cells[0].merge(table.rows[0].cells[1]).text = "Setting"
    table.rows[0].cells[2].text = "Default"
    for cell, text in zip(table.rows[1].cells, ["PARLEY_WORKERS", "", "4"], strict=True):
        cell.text = text
    document.add_heading("Upgrades", 1)
    document.add_paragraph("Read the release notes first.")


def test_word_headings_paragraphs_lists_and_tables_in_order() -> None:
    extracted = extract_document(word_document(handbook), "handbook.docx")
    assert [(b.kind, b.text, b.location.describe()) for b in extracted.text_blocks] == [
        (BlockKind.HEADING, "Handbook", "Handbook"),
        (BlockKind.PARAGRAPH, "What every operator should know.", "Handbook"),
        (BlockKind.HEADING, "Setup", "Setup"),
        (BlockKind.HEADING, "Requirements", "Setup > Requirements"),
        (BlockKind.LIST_ITEM, "Python 3.11", "Setup > Requirements"),
        (BlockKind.TABLE, "Setting | Default\nPARLEY_WORKERS |  | 4", "Setup > Requirements"),
        (BlockKind.HEADING, "Upgrades", "Upgrades"),
        (BlockKind.PARAGRAPH, "Read the release notes first.", "Upgrades"),
    ]


def test_a_word_file_that_expands_past_the_limit_is_refused_before_it_is_read() -> None:
    # A ZIP bomb's shape: a few kilobytes that decompress to 16 MiB of zeros.
    real = zipfile.ZipFile(io.BytesIO(word_document(handbook)))
    parts = {name: real.read(name) for name in real.namelist()}
    bomb = zip_of(parts | {"word/media/padding.bin": bytes(16 * 1024 * 1024)})
    assert len(bomb) < 100_000
    assert sniff(bomb, "handbook.docx", DOCX) == DOCX
    with pytest.raises(DocumentTooLarge, match=r"expands to 1\d MB once decompressed"):
        extract(bomb, DOCX, ExtractionLimits(max_docx_expanded_bytes=8 * 1024 * 1024))


def test_a_damaged_word_file_is_refused() -> None:
    broken = zip_of({"word/document.xml": b"<w:document><unclosed"})
    with pytest.raises(UnreadableDocument, match="damaged"):
        extract_document(broken, "broken.docx")


# --- damaged documents --------------------------------------------------------------------------


def mutations(document: bytes, count: int, seed: int) -> list[bytes]:
    """`count` copies of a document, each with a few bytes changed, cut out or put in."""
    rng = random.Random(seed)
    copies = []
    for _ in range(count):
        data = bytearray(document)
        for _ in range(rng.randint(1, 6)):
            at, change = rng.randrange(len(data)), rng.random()
            if change < 0.6:
                data[at] = rng.randrange(256)
            elif change < 0.8:
                del data[at : at + rng.randint(1, 50)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 10))
        copies.append(bytes(data))
    return copies


@pytest.mark.parametrize("kind", ["pdf", "docx", "html", "md"])
def test_a_damaged_document_is_read_or_refused_never_a_crash(
    kind: str, three_page_pdf: bytes
) -> None:
    document = {
        "pdf": three_page_pdf,
        "docx": word_document(handbook),
        "html": THREE_PAGES.encode(),
        "md": README.encode(),
    }[kind]
    for damaged in mutations(document, 200, seed=len(kind)):
        with contextlib.suppress(InvalidInput):  # refused with a reason the uploader can read
            extract_document(damaged, f"damaged.{kind}")


def test_a_huge_heading_is_shortened_in_every_citation_location() -> None:
    """A heading is the uploader's text: megabytes of it must not be copied into every passage
    (nor exceed what an index may store in a field)."""
    page = b"# " + b"A" * 40_000 + b"\n\n" + b"Some text under it.\n\n## Setup\n\nMore text."
    blocks = extract_document(page, "huge.md").text_blocks
    locations = [b.location.describe() for b in blocks]
    assert all(len(where) <= 450 for where in locations), [len(w) for w in locations]
    assert locations[-1].endswith("> Setup") and "…" in locations[-1]
