"""Embedders: text in, one L2-normalised float32 vector per text out.

An `Embedder` names its vector space in `model` (`local/all-minilm-l6-v2-q`,
`openai/text-embedding-3-small`, `openai/text-embedding-3-small@512` for shortened vectors,
`google/gemini-embedding-001@768`):
vectors from two different names are never compared, and a passage records the name that
embedded it. Calls block (CPU work or an HTTP request): run them off an event loop.

- `LocalMiniLM`: the quantized all-MiniLM-L6-v2 (`infra.knowledge.local_model`) on onnxruntime,
  computed as sentence-transformers does: word pieces cut at `max_tokens`, the last hidden
  state averaged over them, L2-normalised. One text per run: see the class.
- `OpenAIEmbeddings`: the `openai` SDK's `embeddings.create`, so OpenAI, Azure OpenAI and
  OpenAI-compatible servers (vLLM, llama.cpp, Ollama, TEI) all work. The SDK never retries;
  failures are the typed `ProviderError`s of `infra.llm` (429 → `ProviderRateLimited` with the
  server's Retry-After, 5xx → `ProviderUnavailable`, …), for the caller to wait or give up on.
- `GoogleEmbeddings`: the `google-genai` SDK's `models.embed_content` against the Gemini API
  (`POST /v1beta/models/<model>:batchEmbedContents`), typed and unretried the same way (429
  RESOURCE_EXHAUSTED → `ProviderRateLimited` with the body's RetryInfo delay).
"""

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

import httpx2
import numpy as np
import numpy.typing as npt
import openai

from infra.knowledge.local_model import ModelFiles
from infra.llm import openai_provider
from infra.llm.base import ProviderError
from infra.settings import Settings

if TYPE_CHECKING:
    from google import genai

Vectors = npt.NDArray[np.float32]
"""Shape (number of texts, dimensions), each row of length 1."""

LOCAL_MODEL = "local/all-minilm-l6-v2-q"

Client = TypeVar("Client")

# The widths of OpenAI's own models; other servers' models need PARLEY_EMBEDDING_DIMENSIONS.
OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}

# The widths of Google's own models (gemini-embedding-001 shortens on request: 768 and 1536 are
# the recommended widths); other models need PARLEY_EMBEDDING_DIMENSIONS.
GOOGLE_DIMENSIONS = {
    "gemini-embedding-001": 3072,
    "text-embedding-004": 768,
}


class Embedder(Protocol):
    model: str
    """The vector space: provider/model (and @dimensions when shortened)."""
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One normalised vector per text, in order."""
        ...


def normalised(vectors: npt.NDArray[np.floating]) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class LocalMiniLM:
    """all-MiniLM-L6-v2 (quantized, 384 dimensions) on this machine's CPU, one text per run.

    The quantized model scales its activations by the largest value in the whole input, so in
    a batch a text's vector would depend on its neighbours (and their padding): measured, a
    cosine as low as 0.975 between the same text alone and in a batch of 16. One text at a time
    gives every text the same vector however it is embedded, and costs nothing for passages (on
    two cores: 48/s alone, 49/s in batches of 8, 36/s in batches of 32, 100-200 words each).
    """

    model = LOCAL_MODEL
    dimensions = 384

    def __init__(self, files: ModelFiles, *, threads: int = 1, max_tokens: int = 256) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(files.tokenizer))
        # The file pads and cuts every text to 128 word pieces.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            str(files.onnx), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            # `encode`, not `encode_batch`: that one spreads over every core (and warns in
            # processes forked after it ran).
            ids = self._tokenizer.encode(text).ids
            out[i] = self._run(np.array([ids], dtype=np.int64))
        return normalised(out)

    def _run(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The mean of the last hidden state over the text's word pieces (no padding here, so
        the attention mask is all ones)."""
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        return np.asarray(hidden[0].mean(axis=0), dtype=np.float32)


class ProviderEmbeddings(Generic[Client]):
    """What embedding through a provider's SDK shares: the vector space's name and width, texts
    cut into batches of at most `batch_inputs` texts (and never more than the API's
    `input_limit`) and about `batch_chars` characters, and the answer checked and normalised. A
    subclass makes one request per batch with its `client` (`_request`).

    `provider` names it in `model` (the class's `provider` unless given); `name` is the
    provider's own model name. `dimensions` asks for shortened vectors; without it the width
    must be known (`known`, by model name) or given as `width`.
    """

    provider: ClassVar[str]
    known: ClassVar[Mapping[str, int]]
    input_limit: ClassVar[int | None] = None

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        provider: str | None = None,
        dimensions: int | None = None,
        width: int | None = None,
        batch_inputs: int = 256,
        batch_chars: int = 600_000,
    ) -> None:
        self._client = client
        self._name = name
        self._provider = provider or self.provider
        self._requested = dimensions
        found = dimensions or width or self.known.get(name)
        if found is None:
            raise ValueError(
                f"the width of {self._provider}/{name}'s vectors is not known: set "
                "PARLEY_EMBEDDING_DIMENSIONS"
            )
        self.dimensions = found
        self.model = f"{self._provider}/{name}" + (f"@{dimensions}" if dimensions else "")
        self._batch_inputs = min(batch_inputs, self.input_limit or batch_inputs)
        self._batch_chars = batch_chars

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start, end in self._batches(texts):
            out[start:end] = self._request(list(texts[start:end]))
        return out

    def _request(self, texts: list[str]) -> Vectors:
        raise NotImplementedError

    def _batches(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        batches: list[tuple[int, int]] = []
        start, chars = 0, 0
        for i, text in enumerate(texts):
            full = i - start >= self._batch_inputs or chars + len(text) > self._batch_chars
            if i > start and full:
                batches.append((start, i))
                start, chars = i, 0
            chars += len(text)
        if start < len(texts):
            batches.append((start, len(texts)))
        return batches

    def _checked(self, texts: list[str], rows: Sequence[Sequence[float]]) -> Vectors:
        """The answer's vectors, one per text and each as wide as promised, normalised."""
        if len(rows) != len(texts) or any(len(r) != self.dimensions for r in rows):
            widths = sorted({len(r) for r in rows})
            raise ProviderError(
                f"{self.model}: asked for {len(texts)} vectors of {self.dimensions} dimensions, "
                f"got {len(rows)} of {widths}"
            )
        return normalised(np.array(rows, dtype=np.float32))


class OpenAIEmbeddings(ProviderEmbeddings[openai.OpenAI]):
    """Embeddings from an OpenAI-protocol server through the official SDK.

    `provider` names the server (`openai`, `azure`, `vllm`, …); `name` is its own model name
    (Azure: the deployment). Shortened vectors: OpenAI's text-embedding-3 models. OpenAI takes
    2,048 inputs and 300,000 tokens in one request.
    """

    provider = "openai"
    known = OPENAI_DIMENSIONS

    def _request(self, texts: list[str]) -> Vectors:
        try:
            response = self._client.embeddings.create(
                model=self._name,
                input=texts,
                dimensions=self._requested if self._requested else openai.omit,
            )
        except (openai.APIError, httpx2.TransportError) as e:
            raise openai_provider.typed_error(self._provider, e) from e
        rows = sorted(response.data, key=lambda d: d.index)  # the protocol numbers them
        return self._checked(texts, [r.embedding for r in rows])


class GoogleEmbeddings(ProviderEmbeddings["genai.Client"]):
    """Embeddings from Google's Gemini API through the official `google-genai` SDK.

    `name` is the Gemini model (`gemini-embedding-001`); shortened vectors
    (`output_dimensionality`) are not normalised by the API. Each text goes as its own
    `Content`: the SDK would join a list of strings into one for the multimodal models, which
    then answer one vector for all of them.
    """

    provider = "google"
    known = GOOGLE_DIMENSIONS
    input_limit = 100  # batchEmbedContents: "at most 100 requests can be in one batch"

    def _request(self, texts: list[str]) -> Vectors:
        from google.genai import types

        from infra.llm import google_provider

        try:
            response = self._client.models.embed_content(
                model=self._name,
                contents=[types.Content(parts=[types.Part(text=t)]) for t in texts],
                config=types.EmbedContentConfig(output_dimensionality=self._requested),
            )
        except google_provider.SDK_ERRORS as e:
            raise google_provider.typed_error(self._provider, e) from e
        return self._checked(texts, [e.values or [] for e in response.embeddings or []])


def gemini_client(
    api_key: str, *, base_url: str | None = None, timeout: float = 60.0
) -> "genai.Client":
    """A synchronous client of the Gemini API as the chat provider configures its own: never
    Vertex AI, the API version pinned, one attempt (the caller decides about retrying). The SDK
    is imported on first use, as the chat providers are (`infra.llm.catalog`)."""
    from google import genai
    from google.genai import types

    return genai.Client(
        api_key=api_key,
        vertexai=False,
        http_options=types.HttpOptions(
            base_url=base_url,
            api_version="v1beta",
            timeout=round(timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )


def build_embedder(settings: Settings, files: ModelFiles | None = None) -> Embedder:
    """The embedder PARLEY_EMBEDDING_MODEL names, on the endpoints and keys the chat providers
    use (OPENAI_API_KEY and OPENAI_BASE_URL, AZURE_OPENAI_*, GEMINI_API_KEY or GOOGLE_API_KEY
    and GOOGLE_GEMINI_BASE_URL, llm_compatible). The local model needs its `files`
    (`infra.knowledge.local_model.ensure_model`)."""
    provider, _, name = settings.embedding_model.partition("/")
    if settings.embedding_model == LOCAL_MODEL:
        if files is None:
            raise ValueError("the local model's files are needed (ensure_model)")
        return LocalMiniLM(
            files,
            threads=settings.embedding_threads,
            max_tokens=settings.embedding_max_tokens,
        )
    timeout = settings.embedding_timeout_seconds
    if provider == "google" and provider not in settings.llm_compatible:
        api_key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not api_key:
            raise ValueError(f"{settings.embedding_model}: set GEMINI_API_KEY or GOOGLE_API_KEY")
        dimensions, width = _widths(settings.embedding_dimensions, GOOGLE_DIMENSIONS.get(name))
        return GoogleEmbeddings(
            gemini_client(
                api_key, base_url=os.environ.get("GOOGLE_GEMINI_BASE_URL") or None, timeout=timeout
            ),
            name,
            dimensions=dimensions,
            width=width,
            batch_inputs=settings.embedding_request_inputs,
        )
    client: openai.OpenAI
    if provider in settings.llm_compatible:
        server = settings.llm_compatible[provider]
        client = openai.OpenAI(
            api_key=server.get("api_key") or openai_provider.NO_KEY,
            base_url=server["base_url"],
            timeout=timeout,
            max_retries=0,
        )
    elif provider == "openai":
        client = openai.OpenAI(timeout=timeout, max_retries=0)  # OPENAI_API_KEY, OPENAI_BASE_URL
    elif provider == "azure":
        client = openai.AzureOpenAI(
            api_version=os.environ.get("OPENAI_API_VERSION") or "2024-10-21",
            timeout=timeout,
            max_retries=0,
        )  # AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY
    else:
        raise ValueError(
            f"unknown embedding model {settings.embedding_model!r}: {LOCAL_MODEL}, "
            "openai/<model>, azure/<deployment>, google/<model> or <llm_compatible server>/<model>"
        )
    dimensions, width = _widths(settings.embedding_dimensions, OPENAI_DIMENSIONS.get(name))
    return OpenAIEmbeddings(
        client,
        name,
        provider=provider,
        dimensions=dimensions,
        width=width,
        batch_inputs=settings.embedding_request_inputs,
    )


def _widths(wanted: int | None, native: int | None) -> tuple[int | None, int | None]:
    """(dimensions to ask for, width to declare) from PARLEY_EMBEDDING_DIMENSIONS: a known
    model's vectors are shortened on request; another model's width is declared."""
    if native:
        return (wanted if wanted and wanted != native else None), None
    return None, wanted
