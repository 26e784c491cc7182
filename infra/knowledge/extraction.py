"""Documents to text: the type sniffed from the bytes, then blocks of text that keep their place.

A `Block` is a heading, a paragraph, a list item, a table (one row a line, cells joined by
" | ") or a code block, with the `Location` a citation names: the page of a PDF, the heading path
of a Word, HTML or Markdown document ("Setup > Requirements"). Nothing in a document is ever run:
HTML is read by the standard library's tokenizer, PDFs by pypdf, Word files by python-docx.
The rules and limits are described for users in docs/knowledge.md ("Supported documents").
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser

import docx
from docx.table import Table
from pypdf import PasswordType, PdfReader
from pypdf.errors import LimitReachedError

from domain.errors import InvalidInput

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN_TEXT = "text/plain"
SUPPORTED = (PDF, DOCX, HTML, MARKDOWN, PLAIN_TEXT)

# Between two blocks in `Extracted.text`; the chunker's offsets count it.
BLOCK_SEPARATOR = "\n\n"

_SUPPORTED_NAMES = "PDF, Word (.docx), HTML, Markdown or plain text"


class UnsupportedDocument(InvalidInput):
    """The bytes are not a document Parley reads (an image, a program, an archive, ...)."""


class DocumentTooLarge(InvalidInput):
    """The document is over one of the extraction limits (pages, expanded size, text)."""


class UnreadableDocument(InvalidInput):
    """The document has a supported type but cannot be read: password-protected, damaged or
    without any text."""


@dataclass(frozen=True)
class ExtractionLimits:
    """What one document may cost to read; the defaults suit an upload of tens of megabytes."""

    max_pdf_pages: int = 2_000
    """More pages than this and a PDF is refused before any page is read."""
    max_docx_expanded_bytes: int = 128 * 1024 * 1024
    """The sum of a Word file's parts once decompressed (python-docx holds them all in memory):
    a ZIP bomb's parts add up to far more than its size."""
    max_text_chars: int = 5_000_000
    """The extracted text of one document, in characters."""


DEFAULT_LIMITS = ExtractionLimits()


class BlockKind(StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    TABLE = "table"
    CODE = "code"


MAX_HEADING = 120
"""Characters of one heading a citation location shows."""
MAX_LOCATION = 400
"""Characters of headings a citation location shows (the innermost ones)."""


@dataclass(frozen=True)
class Location:
    """Where a block sits: the page (PDF, counted from 1) and the headings it is under."""

    page: int | None = None
    headings: tuple[str, ...] = ()

    def describe(self, last_page: int | None = None) -> str:
        """What a citation shows: "page 3" ("pages 3–4" up to `last_page`), "Setup >
        Requirements", or both; "" if neither. Bounded: each heading at MAX_HEADING characters,
        the innermost headings kept within MAX_LOCATION (a document's headings are the
        uploader's text: a heading of megabytes must not be copied into every passage)."""
        parts = []
        if self.page is not None:
            ends_later = last_page is not None and last_page > self.page
            parts.append(f"pages {self.page}–{last_page}" if ends_later else f"page {self.page}")
        if self.headings:
            kept: list[str] = []
            for heading in reversed(self.headings):
                short = heading if len(heading) <= MAX_HEADING else heading[: MAX_HEADING - 1] + "…"
                if kept and sum(len(h) + 3 for h in kept) + len(short) > MAX_LOCATION:
                    kept.append("…")
                    break
                kept.append(short)
            parts.append(" > ".join(reversed(kept)))
        return ", ".join(parts)


@dataclass(frozen=True)
class Block:
    text: str
    kind: BlockKind
    location: Location
    level: int = 0
    """A heading's level, 1 (the top) to 6; 0 for every other kind."""


@dataclass(frozen=True)
class Extracted:
    content_type: str
    text_blocks: list[Block]
    page_count: int | None = None
    """A PDF's number of pages; None for the other types."""

    @property
    def text(self) -> str:
        """The document's text: its blocks joined by `BLOCK_SEPARATOR` (chunk offsets index it)."""
        return BLOCK_SEPARATOR.join(block.text for block in self.text_blocks)


def extract_document(
    data: bytes,
    filename: str,
    declared: str | None = None,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> Extracted:
    """Sniffs the type of `data` and extracts its text; raises one of this module's errors."""
    return extract(data, sniff(data, filename, declared), limits)


def extract(
    data: bytes,
    content_type: str,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> Extracted:
    """Extracts the text of a document of a type `sniff` returned."""
    page_count = None
    if content_type == PDF:
        blocks, page_count = _pdf_blocks(data, limits)
    elif content_type == DOCX:
        blocks = _docx_blocks(data, limits)
    elif content_type == HTML:
        blocks = _html_blocks(decode_text(data))
    elif content_type == MARKDOWN:
        blocks = _markdown_blocks(decode_text(data))
    elif content_type == PLAIN_TEXT:
        blocks = _plain_blocks(decode_text(data))
    else:
        raise UnsupportedDocument(f"{content_type} is not a type Parley reads ({_SUPPORTED_NAMES})")
    if not blocks:
        raise UnreadableDocument(
            "the document contains no text (a scanned PDF holds images of text, which Parley "
            "does not read)"
            if content_type == PDF
            else "the document contains no text"
        )
    chars = sum(len(block.text) for block in blocks)
    if chars > limits.max_text_chars:
        raise DocumentTooLarge(
            f"the document holds {chars:,} characters of text, more than the "
            f"{limits.max_text_chars:,} allowed: split it into smaller documents"
        )
    return Extracted(content_type, blocks, page_count)


# --- sniffing -----------------------------------------------------------------------------------

# Named only to tell the uploader what they sent; anything else that is not text is refused too.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x7fELF", "a program (an ELF executable)"),
    (b"MZ", "a program (a Windows executable)"),
    (b"\xfe\xed\xfa\xce", "a program (a macOS executable)"),
    (b"\xfe\xed\xfa\xcf", "a program (a macOS executable)"),
    (b"\xce\xfa\xed\xfe", "a program (a macOS executable)"),
    (b"\xcf\xfa\xed\xfe", "a program (a macOS executable)"),
    (b"\xca\xfe\xba\xbe", "a program (a Java class or macOS executable)"),
    (b"\x00asm", "a program (a WebAssembly module)"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an older Office file (.doc, .xls, .ppt) or a password-protected one: save it as .docx "
        "without a password",
    ),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"RIFF", "a media file (WebP, WAV or AVI)"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg media file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1aE\xdf\xa3", "a video (Matroska or WebM)"),
)

# Parts that identify the other ZIP-based formats people upload by mistake.
_OTHER_ZIP_FORMATS = (
    ("xl/workbook.xml", "an Excel workbook (.xlsx)"),
    ("ppt/presentation.xml", "a PowerPoint presentation (.pptx)"),
    ("content.xml", "an OpenDocument file: save it as .docx"),
    ("META-INF/container.xml", "an EPUB book"),
)

_HTML_START = re.compile(
    r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b",
    re.IGNORECASE | re.DOTALL,
)


def sniff(data: bytes, filename: str, declared: str | None) -> str:
    """The document's content type, read from its bytes (one of `SUPPORTED`).

    `declared` (the uploader's Content-Type) and `filename` only choose between two readings of
    the same text: Markdown or plain text (.md/.markdown, text/markdown), HTML without a
    `<!doctype html>`/`<html>` start or plain text (.html/.htm, text/html). Raises
    `UnsupportedDocument` for anything else.
    """
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    text = decode_text(data)
    if _HTML_START.match(text[:4096]):
        return HTML
    name = filename.lower()
    media_type = (declared or "").split(";")[0].strip().lower()
    if name.endswith((".md", ".markdown")) or media_type in ("text/markdown", "text/x-markdown"):
        return MARKDOWN
    if (name.endswith((".html", ".htm")) or media_type == HTML) and text.lstrip().startswith("<"):
        return HTML
    return PLAIN_TEXT


# What zipfile raises for a damaged archive; NotImplementedError for a garbled version field.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ValueError,
    EOFError,
    OSError,
    NotImplementedError,
)


def _sniff_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except _ZIP_ERRORS as error:
        raise UnsupportedDocument(
            f"the file is a damaged ZIP archive; Parley reads {_SUPPORTED_NAMES}"
        ) from error
    if "word/document.xml" in names:
        return DOCX
    kind = next((kind for part, kind in _OTHER_ZIP_FORMATS if part in names), "a ZIP archive")
    raise UnsupportedDocument(f"the file is {kind}; Parley reads {_SUPPORTED_NAMES}")


def _binary_kind(data: bytes) -> str:
    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return kind
    return "binary data, not text"


# --- text and its character set -----------------------------------------------------------------

# UTF-32's byte order marks first: UTF-32LE's starts with UTF-16LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 and C1 control characters other than tab, newlines and form feed: real text has almost none.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def decode_text(data: bytes) -> str:
    """Text from bytes by the rule in docs/knowledge.md; raises `UnsupportedDocument` if the
    bytes are not text."""
    text = _decode_or_none(data)
    if text is None:
        raise UnsupportedDocument(
            f"the file is {_binary_kind(data)}; Parley reads {_SUPPORTED_NAMES}"
        )
    return text


def _decode_or_none(data: bytes) -> str | None:
    """A byte order mark decides; without one, UTF-16 if every other byte is zero, then UTF-8,
    then Windows-1252 (the superset of Latin-1 that writes bytes 0x80-0x9F as €, ‘ ’ “ ” and
    the like), and Latin-1 only for the five bytes Windows-1252 leaves undefined. None when the
    result is not text (a zero byte, or more than one control character in a hundred)."""
    text = None
    bom_codec = next((codec for bom, codec in _BOMS if data.startswith(bom)), None)
    utf16 = _bomless_utf16(data)
    candidates = [bom_codec] if bom_codec else [utf16] if utf16 else ["utf-8", "cp1252", "latin-1"]
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        break
    if text is None or "\x00" in text or len(_CONTROL.findall(text)) * 100 > len(text):
        return None
    return text


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a byte order mark shows as ASCII letters alternating with zero bytes."""
    sample = data[:4096]
    pairs = len(sample) // 2
    if pairs < 2 or len(data) % 2:
        return None
    zeros_even = sample[0 : pairs * 2 : 2].count(0)
    zeros_odd = sample[1 : pairs * 2 : 2].count(0)
    # Mostly zeros on one side, (almost) none on the other: Latin text in UTF-16.
    if zeros_odd * 10 >= pairs * 4 and zeros_even * 20 < pairs:
        return "utf-16-le"
    if zeros_even * 10 >= pairs * 4 and zeros_odd * 20 < pairs:
        return "utf-16-be"
    return None


_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st", "\xad": ""}
)


def _clean(text: str) -> str:
    """One form for every extractor: composed Unicode (so a search for "café" finds both
    spellings), no ligatures or soft hyphens (PDFs are full of them), "\\n" line ends, no
    control characters, no trailing spaces or blank lines around it (a line's indentation stays:
    code needs it)."""
    text = unicodedata.normalize("NFC", text).translate(_LIGATURES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    # Line by line, not with a regular expression: "[ \t]+$" backtracks quadratically over a
    # long run of spaces that is not at the end of its line.
    return "\n".join(line.rstrip(" \t\f\v") for line in text.split("\n")).strip("\n")


class _HeadingPath:
    """The headings above the current position, each replaced by the next of its level or above."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))

    def location(self, page: int | None = None) -> Location:
        return Location(page, tuple(title for _, title in self._stack))


class _BlockList:
    """Collects blocks, dropping empty ones and keeping the heading path up to date."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings = _HeadingPath()

    def add(self, text: str, kind: BlockKind) -> None:
        text = _clean(text) if kind == BlockKind.CODE else _clean(text).strip()
        if text.strip():
            self.blocks.append(Block(text, kind, self.headings.location()))

    def heading(self, text: str, level: int) -> None:
        text = " ".join(_clean(text).split())
        if text:
            self.headings.enter(level, text)
            self.blocks.append(Block(text, BlockKind.HEADING, self.headings.location(), level))


# --- plain text and Markdown --------------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def _plain_blocks(text: str) -> list[Block]:
    """Paragraphs are what blank lines separate."""
    blocks = _BlockList()
    for paragraph in _BLANK_LINES.split(_clean(text)):
        blocks.add(paragraph, BlockKind.PARAGRAPH)
    return blocks.blocks


_ATX_OPENING = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r" {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_TABLE_ROW = re.compile(r" {0,3}\|")


def _markdown_blocks(text: str) -> list[Block]:
    """Markdown stays Markdown (emphasis, links and tables as written); what is read is its block
    structure: headings (with # or underlined), paragraphs, list items, tables and fenced code."""
    blocks = _BlockList()
    lines: list[str] = []
    kind = BlockKind.PARAGRAPH
    fence = ""

    def flush() -> None:
        nonlocal lines
        blocks.add("\n".join(lines), kind)
        lines = []

    all_lines = _clean(text).split("\n")
    # Front matter (YAML between two "---" lines, as static site generators write it) is kept
    # as one block: read as Markdown, its last line would be an underlined heading.
    if all_lines[0] == "---" and (close := _front_matter_end(all_lines)):
        blocks.add("\n".join(all_lines[: close + 1]), BlockKind.CODE)
        all_lines = all_lines[close + 1 :]
    for line in all_lines:
        if fence:
            lines.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                flush()
                fence = ""
            continue
        if opening := _FENCE.match(line):
            flush()
            fence, kind, lines = opening.group(1), BlockKind.CODE, [line]
            continue
        if not line.strip():
            flush()
            continue
        if opening := _ATX_OPENING.match(line):
            flush()
            blocks.heading(_atx_title(line[opening.end() :]), len(opening.group(1)))
            continue
        underline = _SETEXT_UNDERLINE.match(line)
        if underline and kind == BlockKind.PARAGRAPH and lines:
            title, lines = "\n".join(lines), []
            blocks.heading(title, 1 if underline.group(1).startswith("=") else 2)
            continue
        if _THEMATIC_BREAK.match(line):
            flush()
            continue
        if _LIST_ITEM.match(line):
            flush()
            kind, lines = BlockKind.LIST_ITEM, [line]
            continue
        if _TABLE_ROW.match(line):
            if kind != BlockKind.TABLE:
                flush()
                kind = BlockKind.TABLE
            lines.append(line)
            continue
        if kind == BlockKind.TABLE:
            flush()
        if not lines:
            kind = BlockKind.PARAGRAPH
        lines.append(line)  # a paragraph's next line, or a list item's continuation
    flush()
    return blocks.blocks


def _atx_title(rest: str) -> str:
    """A heading's text without its optional closing #s (which follow a space, or stand alone);
    by hand, since a regular expression for it backtracks quadratically over long runs."""
    rest = rest.strip(" \t")
    unclosed = rest.rstrip("#")
    if unclosed == "" or unclosed.endswith((" ", "\t")):
        return unclosed.rstrip(" \t")
    return rest


def _front_matter_end(lines: list[str]) -> int | None:
    return next((i for i in range(1, min(len(lines), 200)) if lines[i] in ("---", "...")), None)


# --- HTML ---------------------------------------------------------------------------------------

# Never text a reader sees as the document: code, styles, the head's title, navigation, widgets.
_DROPPED = frozenset(
    {"script", "style", "head", "title", "nav", "noscript", "template", "svg", "math", "iframe"}
    | {"object", "embed", "canvas", "select", "button"}
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BREAKING = frozenset(
    {"p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote"}
    | {"figure", "figcaption", "address", "dl", "dt", "dd", "ul", "ol", "form", "fieldset"}
    | {"details", "summary", "hr", "caption", "body", "html", "center", "hgroup", "legend"}
)
# Content of the body: a document whose <head> is never closed (it may be left open) has
# started its body at the first of these.
_BODY_CONTENT = _BREAKING | set(_HEADINGS) | {"li", "pre", "table", "a", "span", "img"}
_SPACES = re.compile(r"\s+")


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _BlockList()
        self._dropping: list[str] = []
        self._text: list[str] = []
        self._kind = BlockKind.PARAGRAPH
        self._heading_level = 0
        self._pre = 0
        self._table_depth = 0
        self._rows: list[list[str]] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropping == ["head"] and tag in _BODY_CONTENT:
            self._dropping = []
        if self._dropping or tag in _DROPPED:
            if tag in _DROPPED:
                self._dropping.append(tag)
            return
        if tag in _HEADINGS:
            self._flush()
            self._kind, self._heading_level = BlockKind.HEADING, _HEADINGS[tag]
        elif tag == "li":
            self._flush()
            self._kind = BlockKind.LIST_ITEM
        elif tag == "pre":
            self._flush()
            self._kind, self._pre = BlockKind.CODE, self._pre + 1
        elif tag == "br":
            self._append("\n")
        elif tag == "table":
            self._flush()
            self._table_depth += 1
        elif tag == "tr" and self._table_depth:
            self._rows.append([])
            self._in_cell = False
        elif tag in ("td", "th") and self._table_depth:
            if not self._rows:
                self._rows.append([])
            self._rows[-1].append("")
            self._in_cell = True
        elif tag in _BREAKING:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if self._dropping:
            if tag in self._dropping:
                while self._dropping.pop() != tag:
                    pass
            return
        if tag in _HEADINGS or tag == "li":
            self._flush()
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self._flush()
        elif tag == "table" and self._table_depth:
            self._table_depth -= 1
            if not self._table_depth:
                self._flush_table()
        elif tag in ("td", "th"):
            self._in_cell = False
        elif tag in _BREAKING:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self._append(data if self._pre else _SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        self._flush()
        self._flush_table()

    def _append(self, text: str) -> None:
        if self._table_depth and self._in_cell and self._rows:
            self._rows[-1][-1] += text
        else:
            self._text.append(text)

    def _flush(self) -> None:
        text = "".join(self._text)
        self._text = []
        if self._kind == BlockKind.HEADING:
            self.out.heading(text, self._heading_level)
        elif self._kind == BlockKind.CODE:
            self.out.add(text, BlockKind.CODE)
        else:
            lines = (" ".join(line.split()) for line in text.split("\n"))
            self.out.add("\n".join(line for line in lines if line), self._kind)
        if not self._pre:
            self._kind = BlockKind.PARAGRAPH

    def _flush_table(self) -> None:
        self._flush()
        rows = ([" ".join(cell.split()) for cell in row] for row in self._rows)
        self.out.add("\n".join(" | ".join(row) for row in rows if any(row)), BlockKind.TABLE)
        self._rows = []


def _html_blocks(text: str) -> list[Block]:
    reader = _HtmlReader()
    reader.feed(_defused(text))
    reader.close()
    return reader.out.blocks


def _defused(text: str) -> str:
    """The HTML with the constructs that can never be closed made harmless, which html.parser
    (before CPython 3.11.13, CVE-2025-6069) rescans to the end of the input once per "<":
    quadratic time, minutes for a crafted 100 kB page. An unclosed comment runs to the end, as in
    a browser; every "<" after the last ">" is text; "<![" (CDATA, which HTML has only inside SVG
    and MathML, both dropped) is text."""
    last_close = text.rfind("-->")
    unclosed = text.find("<!--", last_close + 1 if last_close >= 0 else 0)
    if unclosed >= 0:
        text = text[:unclosed]
    last = text.rfind(">") + 1
    return (text[:last] + text[last:].replace("<", "&lt;")).replace("<![", "&lt;![")


# --- PDF ----------------------------------------------------------------------------------------


def _pdf_blocks(data: bytes, limits: ExtractionLimits) -> tuple[list[Block], int]:
    """One block per paragraph where pypdf's text shows blank lines between them, otherwise one
    per page; every block knows its page."""
    try:
        reader = PdfReader(io.BytesIO(data))
        # A PDF encrypted only to restrict printing or copying opens with the empty password.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise UnreadableDocument(
                "the PDF is password-protected: upload a copy saved without a password"
            )
        page_count = len(reader.pages)
        if page_count > limits.max_pdf_pages:
            raise DocumentTooLarge(
                f"the PDF has {page_count:,} pages, more than the {limits.max_pdf_pages:,} "
                "allowed: split it into smaller documents"
            )
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, start=1):
            for paragraph in _BLANK_LINES.split(_clean(page.extract_text() or "")):
                if paragraph := paragraph.strip():
                    blocks.append(Block(paragraph, BlockKind.PARAGRAPH, Location(page=number)))
    except InvalidInput:
        raise
    except LimitReachedError as error:
        raise DocumentTooLarge(
            "a part of the PDF decompresses to more than Parley reads: split it or print it to "
            "PDF again"
        ) from error
    except Exception as error:
        # pypdf raises whatever a malformed file happens to trigger (its own errors, but also
        # KeyError, ValueError, RecursionError, ...); to the uploader they all mean one thing.
        raise UnreadableDocument(
            "the PDF is damaged and cannot be read: open it and save or print it to PDF again"
        ) from error
    return blocks, page_count


# --- Word (.docx) -------------------------------------------------------------------------------

_WORD_HEADING = re.compile(r"heading ([1-9])$", re.IGNORECASE)


def _docx_blocks(data: bytes, limits: ExtractionLimits) -> list[Block]:
    """Paragraphs, headings (the "Title" and "Heading N" styles) and tables, in document order;
    headers, footers, comments and text boxes are left out."""
    _check_docx_size(data, limits)
    try:
        document = docx.Document(io.BytesIO(data))
        out = _BlockList()
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                out.add("\n".join(_docx_rows(item)), BlockKind.TABLE)
                continue
            style = (item.style.name or "") if item.style is not None else ""
            if style.lower() == "title":
                out.heading(item.text, 1)
            elif heading := _WORD_HEADING.match(style):
                out.heading(item.text, int(heading.group(1)))
            elif style.lower().startswith("list"):
                out.add(item.text, BlockKind.LIST_ITEM)
            else:
                out.add(item.text, BlockKind.PARAGRAPH)
    except InvalidInput:
        raise
    except Exception as error:
        # As with PDFs: python-docx and lxml fail in many ways on a damaged file.
        raise UnreadableDocument(
            "the Word document is damaged and cannot be read: open it and save it again"
        ) from error
    return out.blocks


def _check_docx_size(data: bytes, limits: ExtractionLimits) -> None:
    """Refuses a ZIP bomb before python-docx decompresses it. The sizes a ZIP declares suffice:
    Python's zipfile never decompresses more than a part's declared size (a part that lies
    fails its CRC check instead)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(part.file_size for part in archive.infolist())
    except _ZIP_ERRORS as error:
        raise UnreadableDocument(
            "the Word document is damaged and cannot be read: open it and save it again"
        ) from error
    if expanded > limits.max_docx_expanded_bytes:
        raise DocumentTooLarge(
            f"the Word document expands to {_megabytes(expanded)} once decompressed, more than "
            f"the {_megabytes(limits.max_docx_expanded_bytes)} allowed"
        )


def _docx_rows(table: Table) -> Iterator[str]:
    """A table's rows as lines, cells joined by " | "; a merged cell is written once."""
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # python-docx repeats a cell spanning several grid columns; its XML element is the same
            if cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            yield " | ".join(cells)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"
