"""Compiled list execution (api/compiled_execution.py) answers exactly what graphql-core does.

Differential: every document runs twice, through the served schema (list fields completed by
compiled plans) and through the same schema with graphql-core's own execution, and the data and
errors must be equal. First against Parley's schema and real read models (PostgreSQL), then
against a small schema whose values break the rules (nulls in non-null fields, values a scalar
refuses, exceptions as values), where the plan must step aside and graphql-core report.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, Executor

from api.compiled_execution import CompiledListExecution
from api.runtime import Runtime
from api.schema import build_schema
from commands.messages import CreateTenant, SendMessage, StartChat
from domain.actor import Actor
from domain.user import Role
from queries.read_models import ReadModels

SERVED = build_schema()
REFERENCE = build_schema(compiled_lists=False)


@dataclass
class Context:
    """What the query resolvers use of a request's context."""

    caller: Actor
    read_models: ReadModels

    def actor(self) -> Actor:
        return self.caller


@dataclass(frozen=True)
class Seeded:
    context: Context
    chat_id: str


def outcome(result: ExecutionResult) -> tuple[Any, list[dict[str, Any]]]:
    return result.data, [e.formatted for e in result.errors or ()]


def unlocated(result: ExecutionResult) -> tuple[Any, list[dict[str, Any]]]:
    data, errors = outcome(result)
    return data, [{**e, "locations": None} for e in errors]


@pytest.fixture(scope="module")
async def seeded(runtime: Runtime, read_models: ReadModels) -> Seeded:
    """A tenant admin's chat with three messages and their (echo) replies, in the read models;
    a second chat so that chat lists have more than one item."""
    slug = f"compiled-{uuid.uuid4().hex[:10]}"
    created = await asyncio.to_thread(
        runtime.bus.handle,
        CreateTenant(
            name=slug, slug=slug, admin_email=f"admin@{slug}.example", admin_password="p" * 16
        ),
    )
    admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
    chat = await asyncio.to_thread(runtime.bus.handle, StartChat(title="first"), admin)
    await asyncio.to_thread(runtime.bus.handle, StartChat(title="second"), admin)
    for n in range(3):
        await asyncio.to_thread(
            runtime.bus.handle, SendMessage(chat_id=chat.id, content=f"hello {n}"), admin
        )
    deadline = time.monotonic() + 20
    while len(await read_models.messages(admin.tenant_id, chat.id, first=10, after_seq=None)) < 6:
        assert time.monotonic() < deadline, "the replies were not projected in time"
        await asyncio.sleep(0.05)
    return Seeded(Context(admin, read_models), str(chat.id))


MESSAGE_FIELDS = """id chatId role content model createdAt position replyTo inputTokens
    outputTokens finishReason latencyMs provider attempts fallbacks timeToFirstTokenMs costUsd
    cached"""

DOCUMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "the page of bench api": (
        """query($id: ID!) { chat(id: $id) { messages(first: 50) { nodes { id role content }
        pageInfo { hasNextPage } } } }""",
        {},
    ),
    "every message field, nodes and edges": (
        f"""query($id: ID!) {{ chat(id: $id) {{ messages(first: 4) {{
            nodes {{ {MESSAGE_FIELDS} }}
            edges {{ cursor node {{ {MESSAGE_FIELDS} }} }}
            pageInfo {{ hasNextPage endCursor }} }} }} }}""",
        {},
    ),
    "aliases and __typename": (
        """query($id: ID!) { chat(id: $id) { messages { nodes { kind: __typename key: id
        __typename who: role text: content id } edges { __typename node { __typename } } } } }""",
        {},
    ),
    "fragments, inline fragments and merged fields": (
        """query($id: ID!) { chat(id: $id) { messages { ...Page } } }
        fragment Page on MessageConnection { nodes { ...Msg content ... on Message { id
        createdAt } } edges { node { ...Msg } } }
        fragment Msg on Message { id role content model id }""",
        {},
    ),
    "skip and include by variables: shown": (
        """query($id: ID!, $yes: Boolean!, $no: Boolean!) { chat(id: $id) { messages {
        nodes { id content @include(if: $yes) role @skip(if: $no) ...More @include(if: $yes)
        ... on Message @skip(if: $no) { model } } } } }
        fragment More on Message { createdAt finishReason @skip(if: $yes) }""",
        {"yes": True, "no": False},
    ),
    "skip and include by variables: hidden": (
        """query($id: ID!, $yes: Boolean!, $no: Boolean!) { chat(id: $id) { messages {
        nodes { id content @include(if: $yes) role @skip(if: $no) ...More @include(if: $yes)
        ... on Message @skip(if: $no) { model } } } } }
        fragment More on Message { createdAt finishReason @skip(if: $yes) }""",
        {"yes": False, "no": True},
    ),
    "skip and include by literals": (
        """query($id: ID!) { chat(id: $id) { messages { nodes { id @skip(if: true)
        content @include(if: false) role @include(if: true) } } } }""",
        {},
    ),
    "a chat that is not there: NOT_FOUND": (
        """query($missing: ID!) { chat(id: $missing) { messages { nodes { id } } } }""",
        {"missing": str(uuid.uuid4())},
    ),
    "chats with enums, dates and nulls": (
        """{ chats(first: 20) { nodes { id title model status ownerId messageCount createdAt
        updatedAt lastMessageAt position __typename } edges { cursor node { id status } }
        pageInfo { hasNextPage endCursor } } }""",
        {},
    ),
    "lists of scalars and a nested object": (
        """{ me { id email role } tenant { id slug allowedModels retentionDays modelSettings {
        fallbackModels enabledProviders modelMaxTokens { model maxTokens } } } }""",
        {},
    ),
    "usage rows (dates, floats, nulls)": (
        """{ usage(from: "2020-01-01", to: "2029-12-31", groupBy: [DAY, MODEL]) { day userId
        model userMessages assistantMessages inputTokens outputTokens averageLatencyMs
        costUsd } }""",
        {},
    ),
}


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_compiled_lists_answer_what_graphql_core_answers(seeded: Seeded, name: str) -> None:
    query, variables = DOCUMENTS[name]
    variables = {"id": seeded.chat_id, **variables}
    used = {k: v for k, v in variables.items() if f"${k}" in query}
    served = await SERVED.execute(query, used, seeded.context)
    reference = await REFERENCE.execute(query, used, seeded.context)
    assert outcome(served) == outcome(reference)
    if name != "a chat that is not there: NOT_FOUND":
        assert served.errors is None and served.data


async def test_one_document_with_other_variables_is_planned_again(seeded: Seeded) -> None:
    """Plans are cached per document: the same document with other `@skip` values must not be
    answered by the plan of the first."""
    query = """query($id: ID!, $s: Boolean!) { chat(id: $id) { messages { nodes { id
        content @skip(if: $s) } } } }"""
    for skip in (False, True, False):
        variables = {"id": seeded.chat_id, "s": skip}
        served = await SERVED.execute(query, variables, seeded.context)
        reference = await REFERENCE.execute(query, variables, seeded.context)
        assert outcome(served) == outcome(reference)
        assert served.data is not None
        nodes = served.data["chat"]["messages"]["nodes"]
        assert all(("content" in node) is not skip for node in nodes)


async def test_the_page_is_completed_by_its_plan_not_item_by_item(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    items: list[object] = []
    complete_item = Executor.complete_list_item_value

    def counted(self: Executor, item: object, *args: Any) -> bool:
        items.append(item)
        return complete_item(self, item, *args)

    monkeypatch.setattr(Executor, "complete_list_item_value", counted)
    query, _ = DOCUMENTS["the page of bench api"]
    served = await SERVED.execute(query, {"id": seeded.chat_id}, seeded.context)
    assert served.errors is None and items == []
    await REFERENCE.execute(query, {"id": seeded.chat_id}, seeded.context)
    assert len(items) == 6


# `chat { messages }` reads the chat and the page in one transaction (queries/schema.py):
# the same page as the one `Chat.messages` reads alone (behind a fragment it is not read ahead).

PAGE_AHEAD = """query($id: ID!, $first: Int!, $after: String) { chat(id: $id) {
    messages(first: $first, after: $after) { nodes { id content } pageInfo { hasNextPage
    endCursor } } } }"""
PAGE_ALONE = """query($id: ID!, $first: Int!, $after: String) { chat(id: $id) { ...Page } }
    fragment Page on Chat { messages(first: $first, after: $after) { nodes { id content }
    pageInfo { hasNextPage endCursor } } }"""


async def test_a_page_read_with_its_chat_is_the_page_read_alone(seeded: Seeded) -> None:
    after = None
    for _ in range(3):
        variables = {"id": seeded.chat_id, "first": 2, "after": after}
        ahead = await SERVED.execute(PAGE_AHEAD, variables, seeded.context)
        alone = await SERVED.execute(PAGE_ALONE, variables, seeded.context)
        assert ahead.errors is None and outcome(ahead) == outcome(alone)
        assert ahead.data is not None
        after = ahead.data["chat"]["messages"]["pageInfo"]["endCursor"]
    assert after is not None


@pytest.mark.parametrize(
    ("first", "after", "code"),
    [(0, None, "BAD_USER_INPUT"), (2, "not a cursor", "BAD_USER_INPUT"), (2, None, "NOT_FOUND")],
)
async def test_a_page_read_with_its_chat_refuses_what_the_page_alone_refuses(
    seeded: Seeded, first: int, after: str | None, code: str
) -> None:
    chat_id = str(uuid.uuid4()) if code == "NOT_FOUND" else seeded.chat_id
    variables = {"id": chat_id, "first": first, "after": after}
    ahead = await SERVED.execute(PAGE_AHEAD, variables, seeded.context)
    alone = await SERVED.execute(PAGE_ALONE, variables, seeded.context)
    assert unlocated(ahead) == unlocated(alone)  # the documents differ, so do locations
    assert [e.extensions["code"] for e in ahead.errors or ()] == [code]


# A small schema whose values break the rules: the compiled path must give way to graphql-core.


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Leaf:
    name: str
    tag: str | None
    count: int
    colour: Colour
    at: datetime
    tags: list[str]


@strawberry.type
class Holder:
    leaf: Leaf
    maybe: Leaf | None
    leaves: list[Leaf]


def leaf(**changes: Any) -> Leaf:
    values: dict[str, Any] = {
        "name": "a",
        "tag": None,
        "count": 1,
        "colour": Colour.RED,
        "at": datetime(2026, 1, 1, tzinfo=UTC),
        "tags": ["x", "y"],
    }
    values.update(changes)
    return Leaf(**values)


BROKEN: dict[str, list[Any]] = {
    "all well": [leaf(), leaf(tag="t", colour=Colour.BLUE, tags=[])],
    "null in a non-null field": [leaf(), leaf(name=None)],
    "a string for an Int": [leaf(count="seven")],
    "an Int out of range": [leaf(count=2**40)],
    "an unknown enum value": [leaf(colour="green")],
    "a raw enum value": [leaf(colour="blue")],
    "an exception as a value": [leaf(tag=ValueError("boom"))],
    "a null item in a non-null list": [leaf(), None],
    "a null in a list of non-null strings": [leaf(tags=["x", None])],
    "a string where a list belongs": [leaf(tags="xy")],
    "an object without the attribute": [object()],
    "an int where a string belongs": [leaf(name=5)],
    "a float where a string belongs": [leaf(name=1.5)],
}


VALID = {
    "all well",
    "a raw enum value",  # the enum's value serialises to its name as well as its member does
    "an int where a string belongs",  # String serialises numbers
    "a float where a string belongs",
}


@strawberry.type
class BrokenQuery:
    case: strawberry.Private[str]

    @strawberry.field
    def leaves(self) -> list[Leaf]:
        return BROKEN[self.case]

    @strawberry.field
    def maybe_leaves(self) -> list[Leaf | None] | None:
        return BROKEN[self.case]

    @strawberry.field
    def holders(self) -> list[Holder]:
        items = BROKEN[self.case]
        return [Holder(leaf=items[0], maybe=items[-1], leaves=items)]


SMALL_SERVED = strawberry.Schema(BrokenQuery, execution_context_class=CompiledListExecution)
SMALL_REFERENCE = strawberry.Schema(BrokenQuery)
LEAF = "name tag count colour at tags __typename"
SMALL_DOCUMENT = f"""{{ leaves {{ {LEAF} }} maybeLeaves {{ {LEAF} }}
    holders {{ leaf {{ {LEAF} }} maybe {{ name tags }} leaves {{ {LEAF} }} }} }}"""


@pytest.mark.parametrize("case", BROKEN)
async def test_values_that_break_the_rules_get_graphql_cores_errors(case: str) -> None:
    served = await SMALL_SERVED.execute(SMALL_DOCUMENT, root_value=BrokenQuery(case=case))
    reference = await SMALL_REFERENCE.execute(SMALL_DOCUMENT, root_value=BrokenQuery(case=case))
    assert outcome(served) == outcome(reference)
    assert (served.errors is None) is (case in VALID)
