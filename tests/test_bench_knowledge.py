"""`parley bench knowledge`: its labelled question set matches its documents, and a quick run on
PostgreSQL measures every figure (a few seconds: three small documents, 2,000 passages)."""

import json
from pathlib import Path

import pytest

from bench import options
from bench.knowledge import Options, figures, measure
from bench.knowledge_corpus import (
    LabelError,
    load_documents,
    load_pdfs,
    load_questions,
)
from infra.knowledge.extraction import extract_document
from infra.knowledge.index import MODES
from infra.knowledge.local_model import ModelFiles
from infra.settings import Settings


def corpus_texts() -> dict[str, str]:
    return {d.name: extract_document(d.data, d.name).text for d in load_documents()}


def test_every_label_holds_a_snippet_of_its_document() -> None:
    texts = corpus_texts()

    questions = load_questions(texts)

    assert len(questions) >= 60
    assert {q.document for q in questions} == set(texts)
    assert len({q.question for q in questions}) == len(questions)
    assert [p.name.removesuffix(".pdf") for p in load_pdfs()] == [
        name.removesuffix(".md") for name in sorted(texts)
    ]


def test_a_label_whose_snippet_is_not_in_its_document_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {
        "id": "gdpr-x",
        "question": "How is data erased?",
        "document": "gdpr.md",
        "snippet": "words that the document never says",
        "style": "paraphrase",
    }
    labels = tmp_path / "questions.jsonl"
    labels.write_text(json.dumps(bad) + "\n")
    monkeypatch.setattr("bench.knowledge_corpus.QUESTIONS_FILE", labels)

    with pytest.raises(LabelError, match="gdpr-x.*is not in gdpr.md"):
        load_questions(corpus_texts())


def test_a_quick_run_on_postgres_measures_ingestion_quality_and_latency(
    postgres_url: str, model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_DATABASE_URL", postgres_url)
    opts = options.parse(Options, ["--quick", "--engine", "postgres"], "knowledge", None)

    outcome = measure(opts.resolved(), Settings())

    assert outcome.problems == []
    corpus = outcome.corpus
    assert corpus is not None
    assert corpus.pdf.pages > 0 and corpus.pdf.seconds > 0
    assert corpus.embedding.items == len(corpus.passages) > 0
    run = outcome.engines["postgres"]
    assert run.small is not None and run.scale is not None
    assert run.scale_chunks == 2_000 and 0 < run.visible_chunks < 2_000
    assert run.small.quality["hybrid"].recall() > 0.5
    assert run.scale.quality["hybrid"].recall() > 0
    for mode in MODES:
        latency = run.scale.latency[mode]
        assert latency.samples == len(corpus.questions) - 1  # the first search is timed apart
        assert 0 < latency.p50 <= latency.p99 <= latency.max
    recorded = figures(outcome, opts.resolved())["engines"]["postgres"]
    assert recorded["scale"]["quality"]["bm25"]["questions"] == len(corpus.questions)
