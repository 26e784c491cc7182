"""Embeddings from OpenAI-protocol servers, through the real `openai` SDK, against a local server
answering `/v1/embeddings` as OpenAI does (base64 or float vectors, its error bodies and
headers), and Azure OpenAI's deployment paths."""

from collections.abc import Iterator

import numpy as np
import openai
import pytest

from infra.knowledge.embeddings import OpenAIEmbeddings, build_embedder
from infra.llm.base import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from infra.settings import Settings
from testbed.llm_fakes import openai as wire
from testbed.llm_fakes.server import FakeProviderServer, Json, Recorded

TEXTS = ["How do I reset my password?", "I forgot my login credentials", "Lisbon is sunny"]


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(default=wire.embeddings_answer) as server:
        yield server


def client_of(server: FakeProviderServer) -> openai.OpenAI:
    """The SDK as OPENAI_BASE_URL pointing at the server would configure it, without retries."""
    return openai.OpenAI(
        api_key="sk-test-key", base_url=f"{server.url}/v1", timeout=5.0, max_retries=0
    )


def expected(texts: list[str], dimensions: int = wire.EMBEDDING_DIMENSIONS) -> np.ndarray:
    return np.array([wire.embedding_vector(t, dimensions) for t in texts], dtype=np.float32)


def test_each_text_gets_the_servers_vector_in_order(server: FakeProviderServer) -> None:
    embedder = OpenAIEmbeddings(client_of(server), "text-embedding-3-small")

    vectors = embedder.embed(TEXTS)

    assert vectors.dtype == np.float32 and vectors.shape == (3, 1536)
    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-6)
    assert embedder.model == "openai/text-embedding-3-small" and embedder.dimensions == 1536
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", wire.EMBEDDINGS_PATH)
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.body["model"] == "text-embedding-3-small" and request.body["input"] == TEXTS
    assert "dimensions" not in request.body


def test_float_vectors_and_unnormalised_ones_are_accepted_and_normalised(
    server: FakeProviderServer,
) -> None:
    """Compatible servers may ignore base64 and may not normalise."""
    raw = [[3.0, 4.0], [0.0, 2.0]]
    server.queue(Json(wire.embeddings_body(raw, prompt_tokens=2, encoding_format="float")))
    embedder = OpenAIEmbeddings(client_of(server), "bge-tiny", provider="vllm", width=2)

    vectors = embedder.embed(["a", "b"])

    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)
    assert embedder.model == "vllm/bge-tiny"


def test_vectors_are_placed_by_their_index_not_their_position(
    server: FakeProviderServer,
) -> None:
    body = wire.embeddings_body(expected(TEXTS).tolist(), prompt_tokens=9)
    body["data"].reverse()
    server.queue(Json(body))

    vectors = OpenAIEmbeddings(client_of(server), "text-embedding-3-small").embed(TEXTS)

    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-6)


def test_many_texts_go_in_requests_of_at_most_batch_inputs(server: FakeProviderServer) -> None:
    texts = [f"passage {n}" for n in range(7)]
    embedder = OpenAIEmbeddings(client_of(server), "text-embedding-3-small", batch_inputs=3)

    vectors = embedder.embed(texts)

    assert [len(r.body["input"]) for r in server.requests] == [3, 3, 1]
    np.testing.assert_allclose(vectors, expected(texts), atol=1e-6)


def test_long_texts_go_in_requests_of_about_batch_chars(server: FakeProviderServer) -> None:
    texts = ["x" * 400, "y" * 400, "z" * 400, "w" * 10]
    embedder = OpenAIEmbeddings(client_of(server), "text-embedding-3-small", batch_chars=1000)

    embedder.embed(texts)

    assert [r.body["input"] for r in server.requests] == [texts[:2], texts[2:]]


def test_no_texts_make_no_request(server: FakeProviderServer) -> None:
    vectors = OpenAIEmbeddings(client_of(server), "text-embedding-3-small").embed([])

    assert vectors.shape == (0, 1536) and server.requests == []


def test_shortened_vectors_are_asked_for_and_named_by_their_width(
    server: FakeProviderServer,
) -> None:
    embedder = OpenAIEmbeddings(client_of(server), "text-embedding-3-small", dimensions=256)

    vectors = embedder.embed(TEXTS)

    assert server.requests[0].body["dimensions"] == 256
    np.testing.assert_allclose(vectors, expected(TEXTS, 256), atol=1e-6)
    assert embedder.model == "openai/text-embedding-3-small@256"


def test_a_rate_limit_is_typed_with_the_servers_wait_and_not_retried(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.rate_limited(retry_after="7"))

    with pytest.raises(ProviderRateLimited) as caught:
        OpenAIEmbeddings(client_of(server), "text-embedding-3-small").embed(TEXTS)

    assert caught.value.retry_after == 7.0 and caught.value.retryable
    assert "rate_limit_exceeded" in str(caught.value)
    assert len(server.requests) == 1


def test_an_exhausted_quota_is_not_worth_waiting_for(server: FakeProviderServer) -> None:
    server.queue(wire.insufficient_quota())

    with pytest.raises(ProviderAuthError):
        OpenAIEmbeddings(client_of(server), "text-embedding-3-small").embed(TEXTS)


def test_a_server_error_is_unavailable_and_not_retried(server: FakeProviderServer) -> None:
    server.queue(wire.server_error(500))

    with pytest.raises(ProviderUnavailable) as caught:
        OpenAIEmbeddings(client_of(server), "text-embedding-3-small").embed(TEXTS)

    assert "HTTP 500" in str(caught.value) and len(server.requests) == 1


def test_a_server_that_cannot_be_reached_is_unavailable() -> None:
    with FakeProviderServer() as gone:
        client = client_of(gone)
    with pytest.raises(ProviderUnavailable, match="connection failed"):
        OpenAIEmbeddings(client, "text-embedding-3-small").embed(TEXTS)


def test_vectors_of_the_wrong_width_are_refused(server: FakeProviderServer) -> None:
    server.queue(Json(wire.embeddings_body([[1.0, 0.0]] * 3, prompt_tokens=3)))

    with pytest.raises(ProviderError, match="got 3 of \\[2\\]"):
        OpenAIEmbeddings(client_of(server), "text-embedding-3-small").embed(TEXTS)


def test_a_model_of_unknown_width_needs_it_declared(server: FakeProviderServer) -> None:
    with pytest.raises(ValueError, match="PARLEY_EMBEDDING_DIMENSIONS"):
        OpenAIEmbeddings(client_of(server), "nomic-embed-text", provider="ollama")


def test_settings_pick_a_compatible_server_with_its_declared_width(
    server: FakeProviderServer,
) -> None:
    settings = Settings(
        embedding_model="vllm/bge-small-en-v1.5",
        embedding_dimensions=384,
        llm_compatible={"vllm": {"base_url": f"{server.url}/v1"}},
    )
    server.queue(Json(wire.embeddings_body(expected(TEXTS, 384).tolist(), prompt_tokens=9)))

    embedder = build_embedder(settings)
    vectors = embedder.embed(TEXTS)

    assert embedder.model == "vllm/bge-small-en-v1.5" and vectors.shape == (3, 384)
    (request,) = server.requests
    assert request.body["model"] == "bge-small-en-v1.5" and "dimensions" not in request.body
    assert request.headers["authorization"] == "Bearer no-key"  # never our OpenAI key


def test_settings_pick_openai_from_its_own_variables(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    settings = Settings(embedding_model="openai/text-embedding-3-large", embedding_dimensions=512)

    embedder = build_embedder(settings)
    embedder.embed(TEXTS)

    assert embedder.model == "openai/text-embedding-3-large@512"
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert server.requests[0].body["dimensions"] == 512


def test_azure_embeds_through_the_deployments_path(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    settings = Settings(embedding_model="azure/text-embedding-3-small")

    vectors = build_embedder(settings).embed(TEXTS)

    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-6)
    request: Recorded = server.requests[0]
    assert request.path == (
        "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == "azure-key"


def test_an_azure_rate_limit_carries_its_wait(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    server.queue(wire.azure_rate_limited(seconds=6))

    with pytest.raises(ProviderRateLimited) as caught:
        build_embedder(Settings(embedding_model="azure/text-embedding-3-small")).embed(TEXTS)

    assert caught.value.retry_after == 6.0
