"""The `knowledge` benchmark against one index: writing passages (timed), then asking every
labelled question in each mode, for its quality (recall@5, MRR@10) and its latency.

The modes are interleaved question by question (hybrid, bm25, vector for the first question,
then the second, ...), so a moment of load on the shared machine slows all three alike. The
first search of each mode after a write is timed on its own (an engine may load or warm
something then) and left out of the percentiles.
"""

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from api.progress import ProgressBar
from bench.knowledge_corpus import Question, answers
from bench.knowledge_engines import Opened
from bench.knowledge_passages import IndexedDocument, Timed, Vector
from bench.report import nearest_rank
from infra.knowledge.index import MODES, KnowledgeIndex, Mode, Scope

RECALL_AT = 5
MRR_AT = 10
"""A question's reciprocal rank counts the first answering passage within this many, else 0."""


def write(opened: Opened, documents: Iterable[IndexedDocument], label: str, chunks: int) -> Timed:
    """`replace_document` for each document, then whatever makes the writes searchable; the
    time spent in those calls only (not in making up the documents)."""
    progress = ProgressBar(label, unit="passages")
    written, seconds = 0, 0.0
    for document in documents:
        started = time.perf_counter()
        opened.index.replace_document(document.tenant_id, document.document_id, 1, document.chunks)
        seconds += time.perf_counter() - started
        written += len(document.chunks)
        progress.update(written, max(chunks, written))
    if opened.settle is not None:
        started = time.perf_counter()
        opened.settle()
        seconds += time.perf_counter() - started
    return Timed(written, seconds)


@dataclass(frozen=True)
class Latency:
    """Durations in milliseconds: nearest-rank percentiles, the mean and the largest."""

    samples: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Latency":
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)

        def ms(percent: float) -> float:
            return nearest_rank(ordered, percent) * 1000

        return cls(
            len(ordered),
            ms(50),
            ms(90),
            ms(99),
            sum(ordered) / len(ordered) * 1000,
            ordered[-1] * 1000,
        )

    def figures(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            **{k: round(v, 2) for k, v in vars(self).items() if k != "samples"},
        }


@dataclass(frozen=True)
class Quality:
    """How well one mode found the labelled answers."""

    ranks: dict[str, int | None]
    """Each question's rank of its first answering passage within the top `MRR_AT`."""
    styles: Mapping[str, str]

    def recall(self, ids: Iterable[str] | None = None) -> float:
        chosen = list(self.ranks if ids is None else ids)
        found = [self.ranks[i] for i in chosen]
        return (
            sum(1 for r in found if r is not None and r <= RECALL_AT) / len(chosen)
            if chosen
            else 0.0
        )

    def mrr(self) -> float:
        return (
            sum(1 / r for r in self.ranks.values() if r is not None) / len(self.ranks)
            if self.ranks
            else 0.0
        )

    def found(self) -> float:
        """The share of questions with an answering passage anywhere in the top `MRR_AT`."""
        return (
            sum(1 for r in self.ranks.values() if r is not None) / len(self.ranks)
            if self.ranks
            else 0.0
        )

    def recall_of(self, style: str) -> float:
        return self.recall(i for i, s in self.styles.items() if s == style)

    def figures(self) -> dict[str, Any]:
        return {
            "questions": len(self.ranks),
            f"recall_at_{RECALL_AT}": round(self.recall(), 4),
            f"mrr_at_{MRR_AT}": round(self.mrr(), 4),
            f"found_in_top_{MRR_AT}": round(self.found(), 4),
            f"recall_at_{RECALL_AT}_by_style": {
                style: round(self.recall_of(style), 4)
                for style in sorted(set(self.styles.values()))
            },
            "ranks": self.ranks,
        }


@dataclass
class Asked:
    """What asking every question in every mode gave."""

    quality: dict[Mode, Quality]
    latency: dict[Mode, Latency]
    first_search_ms: dict[Mode, float]
    leaks: list[str] = field(default_factory=list)
    """Passages the scope should have hidden (another owner's or tenant's): each is wrong."""


@dataclass(frozen=True)
class Asking:
    """Who asks, and what the answers may be: the corpus documents' ids by name and the
    documents the asker must never be shown."""

    scope: Scope
    questions: Sequence[Question]
    vectors: Vector
    """Each question's embedding, in order."""
    corpus: dict[UUID, str]
    hidden: frozenset[UUID]


def ask(index: KnowledgeIndex, asking: Asking, rounds: int, label: str) -> Asked:
    """Every question `rounds` times in each mode; quality from the first round (searches are
    deterministic), latency from all of them."""
    samples: dict[Mode, list[float]] = {mode: [] for mode in MODES}
    ranks: dict[Mode, dict[str, int | None]] = {mode: {} for mode in MODES}
    first: dict[Mode, float] = {}
    leaks: list[str] = []
    progress = ProgressBar(label, unit="searches")
    total = rounds * len(asking.questions) * len(MODES)
    done = 0
    for round_ in range(rounds):
        for question, vector in zip(asking.questions, asking.vectors, strict=True):
            for mode in MODES:
                started = time.perf_counter()
                passages = index.search(
                    asking.scope,
                    question.question.strip(),
                    None if mode == "bm25" else vector,
                    first=MRR_AT,
                    mode=mode,
                )
                seconds = time.perf_counter() - started
                if mode in first:
                    samples[mode].append(seconds)
                else:
                    first[mode] = seconds * 1000
                if round_ == 0:
                    ranks[mode][question.id] = _rank(question, passages, asking.corpus)
                    leaks += [
                        f"{label}: {mode} search for {question.id} returned a passage of "
                        f"document {p.document_id}, which the scope hides"
                        for p in passages
                        if p.document_id in asking.hidden
                    ]
                done += 1
                progress.update(done, total)
    styles = {q.id: q.style for q in asking.questions}
    return Asked(
        quality={mode: Quality(ranks[mode], styles) for mode in MODES},
        latency={mode: Latency.of(samples[mode]) for mode in MODES},
        first_search_ms=first,
        leaks=leaks,
    )


def _rank(question: Question, passages: Sequence[Any], corpus: dict[UUID, str]) -> int | None:
    for rank, passage in enumerate(passages, start=1):
        name = corpus.get(passage.document_id)
        if name is not None and answers(question, name, passage.text):
            return rank
    return None
