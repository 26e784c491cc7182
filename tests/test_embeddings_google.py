"""Embeddings from Google's Gemini API, through the real `google-genai` SDK, against a local server
answering `batchEmbedContents` as the API does (its vectors, its limit of 100 texts, its error
bodies)."""

from collections.abc import Iterator

import numpy as np
import pytest

from infra.knowledge.embeddings import GoogleEmbeddings, build_embedder, gemini_client
from infra.llm.base import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from infra.settings import Settings
from testbed.llm_fakes import google as wire
from testbed.llm_fakes.server import FakeProviderServer, Json

KEY = "AIza-test-0123456789"
MODEL = "gemini-embedding-001"
TEXTS = ["How do I reset my password?", "I forgot my login credentials", "Lisbon is sunny"]


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(default=wire.embeddings_answer) as server:
        yield server


def embedder_of(server: FakeProviderServer, model: str = MODEL, **options: int) -> GoogleEmbeddings:
    return GoogleEmbeddings(gemini_client(KEY, base_url=server.url, timeout=5.0), model, **options)


def expected(texts: list[str], dimensions: int = wire.EMBEDDING_DIMENSIONS) -> np.ndarray:
    rows = np.array([wire.embedding_values(t, dimensions) for t in texts], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def texts_of(body: dict) -> list[str]:
    return [r["content"]["parts"][0]["text"] for r in body["requests"]]


def test_each_text_gets_the_apis_vector_in_order(server: FakeProviderServer) -> None:
    embedder = embedder_of(server)

    vectors = embedder.embed(TEXTS)

    assert vectors.dtype == np.float32 and vectors.shape == (3, 3072)
    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-6)
    assert embedder.model == "google/gemini-embedding-001" and embedder.dimensions == 3072
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", wire.embed_path(MODEL))
    assert request.headers["x-goog-api-key"] == KEY
    assert texts_of(request.body) == TEXTS
    assert "outputDimensionality" not in request.body["requests"][0]


def test_many_texts_go_in_requests_of_at_most_the_apis_limit(server: FakeProviderServer) -> None:
    texts = [f"passage {n}" for n in range(205)]

    vectors = embedder_of(server, dimensions=8, batch_inputs=1000).embed(texts)

    assert [len(r.body["requests"]) for r in server.requests] == [100, 100, 5]
    np.testing.assert_allclose(vectors, expected(texts, 8), atol=1e-6)


def test_shortened_vectors_are_asked_for_named_and_normalised(server: FakeProviderServer) -> None:
    embedder = embedder_of(server, dimensions=768)

    vectors = embedder.embed(TEXTS)

    assert [r["outputDimensionality"] for r in server.requests[0].body["requests"]] == [768] * 3
    assert embedder.model == "google/gemini-embedding-001@768" and vectors.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors, expected(TEXTS, 768), atol=1e-6)


def test_a_rate_limit_is_typed_with_the_apis_retry_delay_and_not_retried(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.quota_exceeded(retry_delay="37s"))

    with pytest.raises(ProviderRateLimited) as caught:
        embedder_of(server).embed(TEXTS)

    assert caught.value.retry_after == 37.0 and "RESOURCE_EXHAUSTED" in str(caught.value)
    assert len(server.requests) == 1


def test_a_wrong_key_is_an_auth_error(server: FakeProviderServer) -> None:
    server.queue(wire.api_key_invalid())

    with pytest.raises(ProviderAuthError, match="API key not valid"):
        embedder_of(server).embed(TEXTS)


def test_a_server_error_is_unavailable_and_not_retried(server: FakeProviderServer) -> None:
    server.queue(wire.error(500, "INTERNAL", "An internal error has occurred."))

    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        embedder_of(server).embed(TEXTS)

    assert len(server.requests) == 1


def test_a_server_that_cannot_be_reached_is_unavailable() -> None:
    with FakeProviderServer() as gone:
        embedder = embedder_of(gone)
    with pytest.raises(ProviderUnavailable, match="connection failed"):
        embedder.embed(TEXTS)


def test_vectors_of_the_wrong_width_are_refused(server: FakeProviderServer) -> None:
    server.queue(Json(wire.embeddings_body([[1.0, 0.0]] * 3)))

    with pytest.raises(ProviderError, match="got 3 of \\[2\\]"):
        embedder_of(server).embed(TEXTS)


def test_a_model_of_unknown_width_needs_it_declared(server: FakeProviderServer) -> None:
    with pytest.raises(ValueError, match="PARLEY_EMBEDDING_DIMENSIONS"):
        embedder_of(server, "gemini-embedding-2")


def test_settings_pick_google_with_the_chat_providers_key_and_base_url(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-from-env")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
    settings = Settings(embedding_model=f"google/{MODEL}", embedding_dimensions=1536)

    embedder = build_embedder(settings)
    vectors = embedder.embed(TEXTS)

    assert embedder.model == "google/gemini-embedding-001@1536" and vectors.shape == (3, 1536)
    (request,) = server.requests
    assert request.path == wire.embed_path(MODEL)
    assert request.headers["x-goog-api-key"] == "AIza-from-env"
    assert request.body["requests"][0]["outputDimensionality"] == 1536


def test_settings_for_google_without_a_key_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)

    with pytest.raises(ValueError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        build_embedder(Settings(embedding_model=f"google/{MODEL}"))
