"""`parley bench knowledge`: documents to answers. Ingestion (PDF pages/s, documents/s, chunking,
passages embedded/s by the local model on one thread, index writes), retrieval quality on a
labelled question set over real documents (recall@5 and MRR@10 of hybrid, BM25 alone and vector
alone, each engine, in the same run), and retrieval latency with one tenant at 100,000 passages.

The corpus and its labels are in bench/knowledge_corpus/ (its README says where they come
from); the passages, their owners and the synthetic filler in bench/knowledge_passages.py; the
searching in bench/knowledge_search.py; the engines in bench/knowledge_engines.py. See
bench/README.md.
"""

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from uuid import UUID

from bench import options
from bench.knowledge_corpus import (
    QUESTIONS_FILE,
    LabelError,
    Question,
    collapse,
    load_documents,
    load_pdfs,
    load_questions,
)
from bench.knowledge_engines import OPENERS, EngineUnavailable, adapter_missing
from bench.knowledge_passages import (
    FILLER_COSINE,
    CorpusPassage,
    Extraction,
    Filler,
    IndexedDocument,
    People,
    Positions,
    Timed,
    Vector,
    chunk_all,
    corpus_documents,
    embed_passages,
    embed_questions,
    extract_all,
    run_uuid,
    shadow_documents,
)
from bench.knowledge_search import MRR_AT, RECALL_AT, Asked, Asking, Latency, ask, write
from bench.options import at_least_one, option
from bench.report import Run, RunOutcome, machine_info, package_versions, print_problems
from infra.knowledge.chunking import ChunkSizes
from infra.knowledge.embeddings import LOCAL_MODEL, LocalMiniLM
from infra.knowledge.extraction import Extracted
from infra.knowledge.index import MODES, Scope
from infra.knowledge.local_model import ensure_model
from infra.settings import Settings

log = logging.getLogger("bench.knowledge")

DESCRIPTION = (
    "Knowledge: ingestion rates (PDF pages/s, chunking, passages embedded/s on one thread, index "
    "writes), retrieval quality on labelled questions over real documents (recall@5 and MRR@10 "
    "of hybrid, BM25 alone and vector alone) and latency at 100,000 passages, per engine."
)
ENGINES = ("postgres", "elasticsearch")
DEFAULT_CHUNKS = 100_000
DEFAULT_ROUNDS = 3
# What `--quick` changes (unless the option is given too): three small documents and their
# questions (about 30 passages to embed), 2,000 passages, one round.
QUICK_CHUNKS = 2_000
QUICK_ROUNDS = 1
QUICK_DOCUMENTS = ("gdpr.md", "security.md", "services.md")


def engines(text: str) -> tuple[str, ...]:
    if text == "both":
        return ENGINES
    if text not in ENGINES:
        raise argparse.ArgumentTypeError(f"not an engine: {text!r} (postgres, elasticsearch, both)")
    return (text,)


def document_names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class Options:
    engine: tuple[str, ...] = option(ENGINES, "postgres, elasticsearch or both (default)", engines)
    chunks: int = option(
        DEFAULT_CHUNKS,
        "passages in the asking tenant for the scale step: the corpus, another user's copy of "
        "it and synthetic filler",
        at_least_one,
    )
    rounds: int = option(
        DEFAULT_ROUNDS, "times every question is asked per mode at scale", at_least_one
    )
    documents: tuple[str, ...] = option(
        (),
        "only these corpus documents and their questions (names, comma-separated)",
        document_names,
    )
    quick: bool = option(
        False,
        f"a smoke run: {QUICK_CHUNKS:,} passages, {QUICK_ROUNDS} round, "
        f"{', '.join(QUICK_DOCUMENTS)} only",
    )
    keep: bool = options.keep("the scratch database and Elasticsearch index")
    seed: int = options.seed()

    def resolved(self) -> "Options":
        """With `--quick`'s values for the options not given."""
        if not self.quick:
            return self
        return replace(
            self,
            chunks=QUICK_CHUNKS if self.chunks == DEFAULT_CHUNKS else self.chunks,
            rounds=QUICK_ROUNDS if self.rounds == DEFAULT_ROUNDS else self.rounds,
            documents=self.documents or QUICK_DOCUMENTS,
        )


# -- the corpus ------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """The documents read, cut and embedded, with the questions about them."""

    markdown: Extraction
    pdf: Extraction
    chunking: Timed
    embedding: Timed
    passages: list[CorpusPassage]
    vectors: Vector
    document_ids: dict[str, UUID]
    questions: list[Question]
    question_vectors: Vector
    question_seconds: list[float]
    extracted: dict[str, Extracted]
    model: str
    dimensions: int


def read_corpus(opts: Options, settings: Settings, sizes: ChunkSizes) -> Corpus:
    """Every label checked against every document, then the chosen documents read, cut and
    embedded as the knowledge projection does it, each step timed."""
    every = load_documents()
    texts, _ = extract_all(every)
    questions = load_questions({name: e.text for name, e in texts.items()})
    chosen = frozenset(opts.documents) if opts.documents else None
    if chosen is not None and (unknown := chosen - set(texts)):
        raise LabelError(f"not documents of the corpus: {', '.join(sorted(unknown))}")
    extracted, markdown = extract_all(load_documents(chosen))
    _, pdf = extract_all(load_pdfs(chosen))
    questions = [q for q in questions if q.document in extracted]
    document_ids = {name: run_uuid(opts.seed, name) for name in extracted}
    passages, chunking = chunk_all(extracted, document_ids, sizes)
    unanswerable = [
        q.id
        for q in questions
        if not any(
            p.document == q.document and q.snippet in collapse(p.chunk.text) for p in passages
        )
    ]
    if unanswerable:
        raise LabelError(
            "no passage holds the whole snippet of "
            + ", ".join(unanswerable)
            + f" (a chunk boundary cuts it): shorten it in {QUESTIONS_FILE.name}"
        )
    files = ensure_model(
        settings.services_dir.resolve() / "models", settings.embedding_model_repository
    )
    embedder = LocalMiniLM(files, threads=1, max_tokens=settings.embedding_max_tokens)
    vectors, embedding = embed_passages(embedder, passages)
    question_vectors, question_seconds = embed_questions(embedder, [q.question for q in questions])
    return Corpus(
        markdown,
        pdf,
        chunking,
        embedding,
        passages,
        vectors,
        document_ids,
        questions,
        question_vectors,
        question_seconds,
        extracted,
        embedder.model,
        embedder.dimensions,
    )


# -- one engine ------------------------------------------------------------------------------------


@dataclass
class EngineRun:
    status: str = "measured"
    server: dict[str, Any] = field(default_factory=dict)
    corpus_writes: Timed | None = None
    filler_writes: Timed | None = None
    corpus_chunks: int = 0
    """Passages in the asking tenant when the corpus alone is in (the corpus and the other
    user's copy)."""
    scale_chunks: int = 0
    visible_chunks: int = 0
    """Passages the asker's scope sees at scale."""
    small: Asked | None = None
    scale: Asked | None = None


@dataclass
class Outcome(RunOutcome):
    corpus: Corpus | None = None
    engines: dict[str, EngineRun] = field(default_factory=dict)


def measure_engine(engine: str, opts: Options, settings: Settings, corpus: Corpus) -> EngineRun:
    """The corpus written and asked, then the filler written and everything asked again."""
    result = EngineRun()
    people = People.of_seed(opts.seed)
    positions = Positions()
    documents = corpus_documents(
        corpus.passages, corpus.vectors, corpus.document_ids, people, positions
    )
    shadows = shadow_documents(corpus.passages, corpus.vectors, people, positions, opts.seed)
    corpus_chunks = sum(len(d.chunks) for d in documents)
    in_tenant = corpus_chunks + sum(len(d.chunks) for d in shadows if d.tenant_id == people.tenant)
    filler = Filler(corpus.passages, corpus.vectors, corpus.extracted, people, opts.seed)
    plan = filler.plan(opts.chunks - in_tenant)
    hidden = {d.document_id for d in shadows}
    asking = Asking(
        Scope(people.tenant, people.asker),
        corpus.questions,
        corpus.question_vectors,
        {document_id: name for name, document_id in corpus.document_ids.items()},
        frozenset(hidden),
    )
    with OPENERS[engine](settings, corpus.model, corpus.dimensions, opts.keep) as opened:
        result.server = opened.server
        index = opened.index
        everything = documents + shadows
        total = sum(len(d.chunks) for d in everything)
        result.corpus_writes = write(opened, everything, f"{engine}: writing the corpus", total)
        result.corpus_chunks = in_tenant
        result.small = ask(index, asking, 1, f"{engine}: asking at {in_tenant:,} passages")
        result.filler_writes = write(
            opened,
            _noting_hidden(filler.documents(plan.chunks, positions), people.other_user, hidden),
            f"{engine}: writing the filler",
            plan.chunks,
        )
        result.scale_chunks = in_tenant + plan.chunks
        result.visible_chunks = corpus_chunks + plan.visible_chunks
        asking = replace(asking, hidden=frozenset(hidden))
        result.scale = ask(
            index, asking, opts.rounds, f"{engine}: asking at {result.scale_chunks:,} passages"
        )
    return result


def _noting_hidden(
    documents: Iterator[IndexedDocument], other_user: UUID, hidden: set[UUID]
) -> Iterator[IndexedDocument]:
    """The documents, adding those of `other_user` to `hidden` as they go by."""
    for document in documents:
        if document.chunks and document.chunks[0].owner_id == other_user:
            hidden.add(document.document_id)
        yield document


def measure(opts: Options, settings: Settings) -> Outcome:
    outcome = Outcome()
    # The sizes the knowledge projection cuts with (api/runtime.py).
    sizes = ChunkSizes(settings.knowledge_chunk_chars, settings.knowledge_overlap_chars)
    corpus = outcome.corpus = read_corpus(opts, settings, sizes)
    for engine in opts.engine:
        if (missing := adapter_missing(engine)) is not None:
            outcome.engines[engine] = EngineRun(
                status=outcome.problem(f"{engine}: skipped: {missing}")
            )
            continue
        try:
            run = measure_engine(engine, opts, settings, corpus)
        except EngineUnavailable as e:
            outcome.engines[engine] = EngineRun(status=outcome.problem(f"{engine}: skipped: {e}"))
            continue
        except Exception as e:
            log.exception("the %s part failed", engine)
            outcome.engines[engine] = EngineRun(
                status=outcome.problem(f"{engine}: failed: {type(e).__name__}: {e}")
            )
            continue
        for asked in (run.small, run.scale):
            if asked is not None and asked.leaks:
                outcome.problems += asked.leaks[:10]
                if len(asked.leaks) > 10:
                    outcome.problem(f"{engine}: and {len(asked.leaks) - 10} more such passages")
        outcome.engines[engine] = run
    return outcome


# -- the report ------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "knowledge", DESCRIPTION).resolved()
    run = Run("knowledge")
    settings = Settings()
    try:
        outcome = measure(opts, settings)
    except LabelError as e:
        print(f"the question set does not match the corpus: {e}", file=sys.stderr)
        return 1
    print_report(outcome, opts)
    print()
    print(run.load_line())
    run.record(
        asdict(opts),
        machine=machine_info(),
        packages=package_versions(
            "onnxruntime", "tokenizers", "numpy", "pypdf", "psycopg", "elasticsearch"
        ),
        **figures(outcome, opts),
        problems=outcome.problems,
    )
    return outcome.exit_code


def print_report(outcome: Outcome, opts: Options) -> None:
    corpus = outcome.corpus
    assert corpus is not None
    print()
    print(
        f"corpus: {corpus.markdown.documents} documents of Parley's own documentation (frozen "
        f"in bench/knowledge_corpus/), {len(corpus.passages):,} passages; "
        f"{len(corpus.questions)} labelled questions "
        f"({sum(q.style == 'paraphrase' for q in corpus.questions)} of them paraphrased)"
    )
    print_ingestion(outcome, corpus)
    measured = {e: r for e, r in outcome.engines.items() if r.small is not None}
    for engine, run in outcome.engines.items():
        if run.small is None:
            print(f"\n{engine}: {run.status}")
    if measured:
        print_quality(measured, len(corpus.questions))
        print_latency(measured, opts.rounds)
        print()
        print(
            f"At scale: {opts.chunks:,} passages in one tenant, the labelled corpus among "
            "another user's copy of it (hidden by the scope) and synthetic filler. Filler is "
            "not embedded (100,000 real passages would take about an hour): its words are "
            "drawn from the corpus's word frequencies, its vectors are random at a cosine of "
            f"{FILLER_COSINE[0]} to {FILLER_COSINE[1]} from a real passage's. The scope: the "
            "asker's own documents and the tenant's collection; another tenant holds a copy of "
            "the corpus too."
        )
    if not print_problems(outcome.problems):
        print("checked: no search returned a passage its scope hides.")


def print_ingestion(outcome: Outcome, corpus: Corpus) -> None:
    print()
    print(f"## Ingestion (the local model, {LOCAL_MODEL}, on one thread)")
    print()
    pdf, markdown = corpus.pdf, corpus.markdown
    questions = Timed(len(corpus.question_seconds), sum(corpus.question_seconds))
    rows = [
        (
            "PDF extraction (Chromium prints)",
            f"{pdf.documents} documents, {pdf.pages} pages",
            pdf.seconds,
            f"{_per(pdf.pages, pdf.seconds)} pages/s, {_per(pdf.documents, pdf.seconds)} "
            "documents/s",
        ),
        _rate_row("Markdown extraction", Timed(markdown.documents, markdown.seconds), "documents"),
        _rate_row("chunking", corpus.chunking, "passages"),
        _rate_row("embedding passages (title, location, text)", corpus.embedding, "passages"),
        _rate_row("embedding questions", questions, "questions"),
    ]
    for engine, run in outcome.engines.items():
        for label, timed in (("corpus", run.corpus_writes), ("filler", run.filler_writes)):
            if timed is not None:
                rows.append(_rate_row(f"index writes, {engine}, {label}", timed, "passages"))
    _markdown(("step", "items", "seconds", "rate"), [(a, b, f"{c:,.2f}", d) for a, b, c, d in rows])
    embed = Latency.of(corpus.question_seconds)
    print()
    print(
        f"question embedding: p50 {embed.p50:.1f} ms, p90 {embed.p90:.1f} ms, "
        f"p99 {embed.p99:.1f} ms (each question once; hybrid and vector searches add it)"
    )


def print_quality(measured: dict[str, EngineRun], questions: int) -> None:
    print()
    print(f"## Quality over {questions} questions: recall@{RECALL_AT}, MRR@{MRR_AT}")
    print()
    rows = []
    for engine, run in measured.items():
        for size, asked in ((run.corpus_chunks, run.small), (run.scale_chunks, run.scale)):
            if asked is None:
                continue
            for mode in MODES:
                q = asked.quality[mode]
                rows.append(
                    (engine, f"{size:,}", mode, f"{q.recall():.3f}", f"{q.mrr():.3f}")
                    + (f"{q.found():.3f}", f"{q.recall_of('keyword'):.3f}")
                    + (f"{q.recall_of('paraphrase'):.3f}",)
                )
    at_5, at_10 = f"recall@{RECALL_AT}", f"MRR@{MRR_AT}"
    header = ["engine", "passages in tenant", "mode", at_5, at_10, f"in top {MRR_AT}"]
    _markdown([*header, f"{at_5} keyword", f"{at_5} paraphrased"], rows)


def print_latency(measured: dict[str, EngineRun], rounds: int) -> None:
    print()
    print(f"## Latency at scale, the search alone, ms ({rounds} rounds of the questions per mode)")
    print()
    rows = []
    for engine, run in measured.items():
        if run.scale is None:
            continue
        for mode in MODES:
            lat = run.scale.latency[mode]
            rows.append(
                (engine, f"{run.scale_chunks:,} ({run.visible_chunks:,} visible)", mode)
                + (f"{lat.samples}", f"{lat.p50:.1f}", f"{lat.p90:.1f}", f"{lat.p99:.1f}")
                + (f"{lat.mean:.1f}", f"{lat.max:.1f}", f"{run.scale.first_search_ms[mode]:.0f}")
            )
    header = ["engine", "passages in tenant", "mode", "searches", "p50", "p90", "p99", "mean"]
    _markdown([*header, "max", "first search after the writes"], rows)


def _rate_row(step: str, timed: Timed, unit: str) -> tuple[str, str, float, str]:
    return (
        step,
        f"{timed.items:,} {unit}",
        timed.seconds,
        f"{_per(timed.items, timed.seconds)} {unit}/s",
    )


def _per(items: int, seconds: float) -> str:
    return f"{items / seconds:,.1f}" if seconds > 0 else "-"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def figures(outcome: Outcome, opts: Options) -> dict[str, Any]:
    corpus = outcome.corpus
    assert corpus is not None
    return {
        "corpus": {
            "source": "bench/knowledge_corpus/ (README.md there)",
            "documents": sorted(corpus.extracted),
            "passages": len(corpus.passages),
            "questions": len(corpus.questions),
        },
        "ingestion": {
            "pdf_extraction": corpus.pdf.figures(),
            "markdown_extraction": corpus.markdown.figures(),
            "chunking": corpus.chunking.figures("passages"),
            "embedding_passages": corpus.embedding.figures("passages"),
            "embedding_questions": Latency.of(corpus.question_seconds).figures(),
        },
        "engines": {
            engine: {
                "status": run.status,
                "server": run.server,
                "writes": {
                    label: timed.figures("passages")
                    for label, timed in (
                        ("corpus", run.corpus_writes),
                        ("filler", run.filler_writes),
                    )
                    if timed is not None
                },
                "corpus": _asked(run.small, run.corpus_chunks, None),
                "scale": _asked(run.scale, run.scale_chunks, run.visible_chunks),
            }
            for engine, run in outcome.engines.items()
        },
        "filler": {
            "cosine_to_a_real_passage": list(FILLER_COSINE),
            "text": "words drawn from one corpus document's word frequencies",
        },
    }


def _asked(asked: Asked | None, chunks: int, visible: int | None) -> dict[str, Any] | None:
    if asked is None:
        return None
    return {
        "passages_in_tenant": chunks,
        "passages_visible": visible,
        "quality": {mode: q.figures() for mode, q in asked.quality.items()},
        "latency_ms": {mode: lat.figures() for mode, lat in asked.latency.items()},
        "first_search_ms": {mode: round(ms, 2) for mode, ms in asked.first_search_ms.items()},
        "leaks": asked.leaks,
    }
