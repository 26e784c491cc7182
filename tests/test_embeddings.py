"""The local embedding model, really run: all-MiniLM-L6-v2 (quantized) from Maven Central on
onnxruntime. The first run downloads its 16 MB jar into PARLEY_SERVICES_DIR/models (beside the
servers `parley services` fetches); later runs reuse it. Fetching is also checked against a
local stand-in for a Maven repository, for what must be refused."""

import functools
import hashlib
import time
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import numpy as np
import pytest

from infra.knowledge.embeddings import LocalMiniLM, build_embedder
from infra.knowledge.local_model import (
    ONNX_FILE,
    TOKENIZER_FILE,
    ModelFiles,
    ModelUnavailable,
    ensure_model,
    installed,
    jar_url,
)
from infra.settings import Settings


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)  # the vectors are normalised


def test_vectors_are_384_wide_float32_and_of_length_one(minilm: LocalMiniLM) -> None:
    vectors = minilm.embed(["How do I reset my password?", "", "ünïcödé ✓ 密码"])

    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.model == "local/all-minilm-l6-v2-q" and minilm.dimensions == 384


def test_no_texts_give_no_vectors(minilm: LocalMiniLM) -> None:
    assert minilm.embed([]).shape == (0, 384)


def test_a_text_gets_the_same_vector_alone_and_among_others(minilm: LocalMiniLM) -> None:
    texts = [("word " * n) + f"end {n}" for n in range(1, 120, 7)]
    texts += ["How do I reset my password?", "x"]

    together = minilm.embed(texts)
    alone = np.vstack([minilm.embed([t]) for t in texts])
    again = minilm.embed(list(reversed(texts)))[::-1]

    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, again)


def test_close_meanings_score_higher_than_unrelated_ones(minilm: LocalMiniLM) -> None:
    question, paraphrase, unrelated = minilm.embed(
        [
            "How do I reset my password?",
            "I forgot my login credentials",
            "The weather in Lisbon is sunny",
        ]
    )

    assert cosine(question, paraphrase) > 0.5
    assert cosine(question, unrelated) < 0.2
    assert cosine(question, paraphrase) > cosine(question, unrelated) + 0.3


def test_each_question_finds_its_own_passage(minilm: LocalMiniLM) -> None:
    passages = [
        "To change your password, open Settings, choose Security and click Reset password.",
        "Invoices are sent by email on the first day of each month and can be downloaded.",
        "Our office in Lisbon is open Monday to Friday from nine to six.",
        "The API allows 600 requests per minute per key; beyond that it answers 429.",
    ]
    questions = [
        "I can't remember my password",
        "Where can I get last month's bill?",
        "When is the Portugal office open?",
        "What is the rate limit of the API?",
    ]

    scores = minilm.embed(questions) @ minilm.embed(passages).T

    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3]


def test_a_text_is_read_up_to_max_tokens(model_files: ModelFiles) -> None:
    short = LocalMiniLM(model_files, max_tokens=16)
    head = "the quick brown fox jumps over the lazy dog " * 4

    a, b = short.embed([head + "about passwords", head + "about the weather in Lisbon"])

    np.testing.assert_array_equal(a, b)


def test_settings_build_the_local_model(model_files: ModelFiles) -> None:
    embedder = build_embedder(Settings(embedding_threads=2), model_files)

    assert embedder.model == "local/all-minilm-l6-v2-q"
    assert embedder.embed(["hello"]).shape == (1, 384)


def test_throughput_is_reported(minilm: LocalMiniLM, capsys: pytest.CaptureFixture[str]) -> None:
    """Information only, one thread: passages of 150 words (the text of docs/, cut at 256 word
    pieces) and short texts like questions (its headings)."""
    docs = sorted((Path(__file__).parent.parent / "docs").glob("*.md"))
    text = "\n".join(doc.read_text() for doc in docs)
    words = text.split()
    passages = [" ".join(words[i : i + 150]) for i in range(0, len(words) - 150, 150)][:60]
    questions = [line.lstrip("# ") for line in text.splitlines() if line.startswith("#")][:200]
    figures = []
    for label, texts in (("passages", passages), ("questions", questions)):
        minilm.embed(texts[:3])  # warm
        started = time.perf_counter()
        minilm.embed(texts)
        rate = len(texts) / (time.perf_counter() - started)
        figures.append(f"{rate:.0f} {label}/s ({len(texts)})")
    with capsys.disabled():
        print(f"\nlocal embeddings (all-MiniLM-L6-v2-q, 1 thread): {', '.join(figures)}")


# -- fetching: what a Maven repository may serve, and what must be refused --------------------


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP as a Maven repository, and its URL; no local Maven repository
    (a ~/.m2 copy of the real jar would be used instead of the download)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "repository"
    root.mkdir()
    handler = functools.partial(QuietFiles, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def publish(root: Path, url: str, jar: bytes, sha1: str | None = None) -> None:
    path = root / jar_url(url).removeprefix(url + "/")
    path.parent.mkdir(parents=True)
    path.write_bytes(jar)
    Path(f"{path}.sha1").write_text(sha1 or hashlib.sha1(jar).hexdigest())


def a_jar(tmp_path: Path) -> bytes:
    """A jar laid out like the real one, but not the real one."""
    jar = tmp_path / "impostor.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr(ONNX_FILE, b"not a model")
        zf.writestr(TOKENIZER_FILE, b"{}")
    return jar.read_bytes()


def test_a_jar_other_than_the_pinned_one_is_refused(
    repository: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = repository
    publish(root, url, a_jar(tmp_path))

    with pytest.raises(ModelUnavailable, match="SHA-256"):
        ensure_model(tmp_path / "models", url)

    assert installed(tmp_path / "models") is None
    assert list((tmp_path / "models").iterdir()) == []  # no leftovers


def test_a_download_that_does_not_match_the_repositorys_sha1_is_refused(
    repository: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = repository
    publish(root, url, a_jar(tmp_path), sha1="0" * 40)

    with pytest.raises(ModelUnavailable, match="SHA-1"):
        ensure_model(tmp_path / "models", url)


def test_a_repository_without_the_jar_says_how_to_fetch_it_offline(
    repository: tuple[Path, str], tmp_path: Path
) -> None:
    _, url = repository

    with pytest.raises(ModelUnavailable, match="--jar PATH"):
        ensure_model(tmp_path / "models", url)


def test_a_copy_of_the_jar_is_checked_like_a_download(tmp_path: Path) -> None:
    jar = tmp_path / "copy.jar"
    jar.write_bytes(a_jar(tmp_path))

    with pytest.raises(ModelUnavailable, match="SHA-256"):
        ensure_model(tmp_path / "models", "http://127.0.0.1:9", jar=jar)
