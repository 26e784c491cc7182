"""Grounded replies through a real provider adapter: the OpenAI SDK against a local server that
speaks OpenAI's streaming protocol. What the model is sent (the passages numbered in the system
turn, within the context window) and what the reply records (every passage given, the ones it
cites) are checked on the wire and in the log."""

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from api.runtime import Runtime
from commands.messages import (
    AttachKnowledge,
    ChangeTenantSettings,
    SendMessage,
    StartChat,
    UploadDocument,
)
from domain.chat import ChatSession
from domain.document import Document, DocumentStatus
from infra.knowledge.index import Scope
from infra.knowledge.prompt import PASSAGES_MARK
from infra.settings import Settings
from testbed.llm_fakes import openai as oai
from testbed.llm_fakes.server import FakeProviderServer
from testbed.processes import MODELS, target_url
from tests.conftest import fresh_database
from tests.test_commands import create_tenant, wait_until

MODEL = "fake/gpt-test"
SECTIONS = {
    "Travel": "Employees book trains for journeys under four hours; flights need approval.",
    "Expenses": "Receipts must be submitted within thirty days through the finance portal.",
    "Security": "Laptops are encrypted and lock themselves after five idle minutes.",
    "Holidays": "Everyone has twenty-five days of paid holiday a year, booked in the HR tool.",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def runtime(
    postgres_url: str, upstream: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    settings = Settings(
        database_url=target_url(fresh_database(postgres_url)),
        data_dir=tmp_path_factory.mktemp("grounding"),
        embedding_model_dir=MODELS,
        llm_compatible={"fake": {"base_url": f"{upstream.url}/v1", "api_key": "sk-test"}},
        # A small window: the passages must be cut to fit half of what the reply leaves.
        llm_context_windows={MODEL: 1200},
        llm_max_output_tokens=200,
        follower_poll_seconds=0.2,
    )
    rt = Runtime(settings)
    rt.start(workers=True)
    yield rt
    rt.stop()


def grounded_chat(runtime: Runtime) -> tuple[Any, Any]:
    tenant = create_tenant(runtime)
    admin = tenant.admin
    runtime.bus.handle(ChangeTenantSettings(default_model=MODEL, allowed_models=[MODEL]), admin)
    text = "# Handbook\n\n" + "\n\n".join(f"## {h}\n\n{t} " * 3 for h, t in SECTIONS.items())
    document_id = runtime.bus.handle(
        UploadDocument(filename="handbook.md", data=text.encode()), admin
    ).id

    def processed() -> Document | None:
        document = runtime.store.get_or_none(document_id, readonly=True)
        ready = isinstance(document, Document) and document.status is DocumentStatus.READY
        return document if ready else None

    wait_until(processed, timeout=60, what="the handbook to be processed")
    chat_id = runtime.bus.handle(StartChat(title="HR questions"), admin).id
    runtime.bus.handle(AttachKnowledge(chat_id=chat_id, document_ids=[document_id]), admin)
    return admin, chat_id


def test_the_model_is_given_numbered_passages_that_fit_and_the_reply_records_its_citations(
    runtime: Runtime, upstream: FakeProviderServer
) -> None:
    admin, chat_id = grounded_chat(runtime)
    upstream.queue(oai.chat_stream(["You have thirty days ", "[2]", " (see also [9])."]))
    runtime.bus.handle(
        SendMessage(chat_id=chat_id, content="By when must receipts be handed in?"), admin
    )

    def replied() -> Any:
        chat = runtime.store.get_or_none(chat_id, readonly=True)
        assert isinstance(chat, ChatSession)
        return chat.messages[1] if len(chat.messages) == 2 else None

    reply = wait_until(replied, timeout=60, what="the grounded reply")
    (request,) = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    system = next(m["content"] for m in request.body["messages"] if m["role"] == "system")
    passages = system.split(PASSAGES_MARK, 1)[1]
    assert "Cite every passage you use" in system and "[1] handbook.md — " in passages
    # What the model was shown is what the reply records, numbered alike, best first.
    given = list(reply.citations)
    assert len(given) >= 2 and [c["rank"] for c in given] == list(range(1, len(given) + 1))
    assert all(f"[{c['rank']}] handbook.md" in passages for c in given)
    assert f"[{len(given) + 1}] " not in passages
    # Half the window left after the reply (1200 - 200), in estimated tokens, at most.
    assert len(system) / 3.5 < 1000 / 2 + 100
    assert [c["cited"] for c in given] == [c["rank"] == 2 for c in given]  # [9] was not given
    tenant_id = admin.tenant_id
    resolved = runtime.knowledge.passages(tenant_id, [UUID(c["chunk_id"]) for c in given])
    assert any("thirty days" in p.text for p in resolved.values()), resolved


def test_nothing_of_a_document_whose_key_is_destroyed_is_found_or_cited_even_before_the_index_is(
    runtime: Runtime,
) -> None:
    """The key is the deletion: searches and citations drop a document whose key is gone at
    once, whether or not the knowledge projection has removed its passages yet."""
    admin, chat_id = grounded_chat(runtime)
    chat = runtime.store.get_or_none(chat_id, readonly=True)
    assert isinstance(chat, ChatSession)
    scope = Scope(admin.tenant_id, admin.user_id)
    found = runtime.knowledge.search(scope, "receipts thirty days", first=5, mode="hybrid")
    assert found and {p.document_id for p in found} == set(chat.knowledge_documents)
    chunk_ids = [p.chunk_id for p in found]

    runtime.data_keys.destroy(list(chat.knowledge_documents), "test: the key alone")

    assert runtime.knowledge.search(scope, "receipts thirty days", first=5, mode="hybrid") == []
    assert runtime.knowledge.passages(admin.tenant_id, chunk_ids) == {}
    # The passages themselves are still in the index: only the key went.
    assert runtime.knowledge.index.passages(admin.tenant_id, chunk_ids)
