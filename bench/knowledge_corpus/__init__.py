"""The `knowledge` benchmark's corpus: real documents (a frozen copy of Parley's own docs, as
Markdown and printed to PDF) and questions about them, each labelled with the document and a
short verbatim snippet of the passage that answers it (README.md in this folder says where they
come from and how they were written).

A retrieved passage answers a question when it comes from the labelled document and its text
contains the snippet, whitespace collapsed on both sides: the label does not depend on where the
chunker cuts. `load_questions` refuses a label whose snippet is not in its document.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CORPUS_DIR = Path(__file__).resolve().parent
DOCUMENTS_DIR = CORPUS_DIR / "documents"
PDF_DIR = CORPUS_DIR / "pdf"
QUESTIONS_FILE = CORPUS_DIR / "questions.jsonl"

SNIPPET_CHARS = (10, 60)
"""The shortest and longest snippet a label may have."""

Style = Literal["keyword", "paraphrase"]


class LabelError(ValueError):
    """The question set does not match the documents: the message lists every bad label."""


@dataclass(frozen=True)
class Document:
    name: str
    """The file name, e.g. `audit.md` (its PDF print is `audit.pdf`)."""
    data: bytes


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    document: str
    """The file name of the Markdown document that answers it."""
    snippet: str
    """Verbatim text (whitespace aside) of the passage that answers it."""
    style: Style
    """`keyword`: shares its key terms with the answer; `paraphrase`: in other words."""


def collapse(text: str) -> str:
    """`text` with every run of whitespace turned into one space."""
    return re.sub(r"\s+", " ", text)


def answers(question: Question, document: str, text: str) -> bool:
    """Whether a passage of `document` with this `text` answers the question."""
    return document == question.document and question.snippet in collapse(text)


def load_documents(names: frozenset[str] | None = None) -> list[Document]:
    """The Markdown documents (all, or those named), by name."""
    return _read(sorted(DOCUMENTS_DIR.glob("*.md")), names)


def load_pdfs(names: frozenset[str] | None = None) -> list[Document]:
    """The PDF prints of the documents (all, or those of the Markdown files named)."""
    wanted = None if names is None else frozenset(n.removesuffix(".md") + ".pdf" for n in names)
    return _read(sorted(PDF_DIR.glob("*.pdf")), wanted)


def _read(paths: list[Path], names: frozenset[str] | None) -> list[Document]:
    return [Document(p.name, p.read_bytes()) for p in paths if names is None or p.name in names]


def load_questions(texts: dict[str, str]) -> list[Question]:
    """Every question of `questions.jsonl`, checked against `texts` (a document's name to its
    extracted text): raises `LabelError` naming each label that is malformed, points at a
    document that is not there or whose snippet is not in it."""
    questions: list[Question] = []
    problems: list[str] = []
    seen: set[str] = set()
    lines = QUESTIONS_FILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{QUESTIONS_FILE.name}:{number}"
        try:
            raw = json.loads(line)
            question = Question(
                id=str(raw["id"]),
                question=str(raw["question"]),
                document=str(raw["document"]),
                snippet=str(raw["snippet"]),
                style=raw["style"],
            )
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{where}: not a label ({e})")
            continue
        problems += [f"{where} ({question.id}): {p}" for p in _check(question, texts, seen)]
        seen.add(question.id)
        questions.append(question)
    if problems:
        raise LabelError("bad labels in the question set:\n  " + "\n  ".join(problems))
    return questions


def _check(question: Question, texts: dict[str, str], seen: set[str]) -> list[str]:
    problems = []
    if question.id in seen:
        problems.append("the id is used twice")
    if question.style not in ("keyword", "paraphrase"):
        problems.append(f"style {question.style!r} is neither keyword nor paraphrase")
    low, high = SNIPPET_CHARS
    if not low <= len(question.snippet) <= high:
        problems.append(f"the snippet has {len(question.snippet)} characters, not {low} to {high}")
    if question.snippet != collapse(question.snippet).strip():
        problems.append("the snippet has line breaks or runs of spaces")
    if question.document not in texts:
        problems.append(f"{question.document} is not a document of the corpus")
    elif question.snippet not in collapse(texts[question.document]):
        problems.append(f"{question.snippet!r} is not in {question.document}")
    return problems
