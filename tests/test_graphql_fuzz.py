"""Fuzzing `/graphql` of a real `parley serve` with schemathesis (GraphQL, through
hypothesis-graphql): every query and mutation of the introspected schema, with valid and invalid
arguments, sent as a signed-in tenant admin whose tenant has chats, messages and users, whose ids
schemathesis substitutes into the arguments (so resolvers run past "not found").

Whatever arrives, the server answers in one shape: no HTTP 5xx, every error with a stable
`extensions.code` (INTERNAL counts as a failure: it is a bug the client could trigger), and no
error message or extension that shows internals (tracebacks, SQL, driver or class names, paths).
Afterwards, the followers have kept up: no fuzzed input wedged a projection.
"""

import json
import re
from collections.abc import Iterator
from typing import Any
from unittest import SkipTest

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from testbed.processes import Server
from tests.security_server import SessionClient, security_server

PASSWORD = "fuzz-password-123"
EXAMPLES = 10
"""Per operation and mode: about 33 operations x 2 x 10 requests, well under a minute."""
STABLE_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "QUOTA_EXCEEDED",
    "UNAVAILABLE",
    "QUERY_TOO_COMPLEX",
    "HISTORY_TAMPERED",
}
INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|line \d+, in|psycopg|asyncpg|sqlalchemy|"
    r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s|\bFROM rm_|\brm_[a-z_]+\b|"
    r"\b[a-z_]+(\.[a-z_]+)+\.[A-Z][A-Za-z]+(Error|Exception)?\b|"  # python class paths
    r"(?<![\w.])/(work|tmp|usr|home|root|opt|var)/|<object at 0x|0x[0-9a-f]{8,}|"
    r"strawberry\.|graphql\.error|eventsourcing"
)


def internals_in(error: dict[str, Any], sent: str = "") -> list[str]:
    """Pieces of an error that look like the server's internals, except what the client sent
    (errors quote invalid input, and Hypothesis draws strings from our own source's literals)."""
    text = json.dumps({"message": error.get("message"), "ext": error.get("extensions")})
    return [m.group(0) for m in INTERNALS.finditer(text) if m.group(0) not in sent]


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[tuple[Server, SessionClient, dict[str, list[str]]]]:
    """A server, a tenant admin of a tenant with some data, and that data's ids by kind."""
    # Fuzzed afterPosition values lie far ahead of the log: each would wait the full read
    # timeout, so it is short here.
    env = {"PARLEY_READ_WAIT_TIMEOUT_SECONDS": "0.1"}
    data_dir = tmp_path_factory.mktemp("fuzz")
    with security_server(data_dir, postgres_url, redis_url, env) as (s, root):
        made = root.run(
            """mutation($i: CreateTenantInput!) {
                 createTenant(input: $i) { tenantId adminUserId } }""",
            {
                "i": {
                    "name": "Fuzzed",
                    "slug": "fuzzed",
                    "adminEmail": "admin@fuzzed.example",
                    "adminPassword": PASSWORD,
                }
            },
        )["createTenant"]
        admin = root.as_user("").login("fuzzed", "admin@fuzzed.example", PASSWORD)
        assert isinstance(admin, SessionClient)
        member = admin.run(
            """mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }""",
            {
                "i": {
                    "email": "member@fuzzed.example",
                    "password": PASSWORD,
                    "displayName": "Member",
                }
            },
        )["registerUser"]["userId"]
        chats, messages = [], []
        for title in ("first chat", "second chat"):
            chat = admin.run(
                "mutation($i: StartChatInput!) { startChat(input: $i) { chatId } }",
                {"i": {"title": title}},
            )["startChat"]["chatId"]
            chats.append(chat)
            sent = admin.run(
                "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId } }",
                {"i": {"chatId": chat, "content": f"hello from the {title}"}},
            )["sendMessage"]
            messages.append(sent["messageId"])
        s.settled_head()
        ids = {
            "chat": chats,
            "user": [made["adminUserId"], member],
            "tenant": [made["tenantId"]],
            "any": [*chats, *messages, member, made["tenantId"]],
        }
        yield s, admin, ids


def fuzz_config(ids: dict[str, list[str]]) -> SchemathesisConfig:
    """Deterministic generation, valid and invalid, with the tenant's real ids in id arguments."""

    def values(kind: str) -> dict[str, list[str]]:
        return {"values": ids[kind]}

    return SchemathesisConfig.from_dict(
        {
            "seed": 20240611,
            "generation": {"mode": "all", "deterministic": True},
            "dictionaries": {
                "*.*.id": values("chat"),
                "*.*.chatId": values("chat"),
                "*.*.aggregateId": values("any"),
                "*.*.input.chatId": values("chat"),
                "*.*.input.userId": values("user"),
                "*.*.input.tenantId": values("tenant"),
            },
        }
    )


@pytest.fixture(scope="module")
def fuzzed_schema(fuzz_target: tuple[Server, SessionClient, dict[str, list[str]]]) -> Any:
    server, admin, ids = fuzz_target
    return schemathesis.graphql.from_url(
        f"{server.url}/graphql",
        config=fuzz_config(ids),
        headers={"Authorization": f"Bearer {admin.token}"},
    )


def check_answer(case: Any, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code < 500, (case.body, response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict), (case.body, response.text)
    sent = f"{case.body}{json.dumps(case.body, ensure_ascii=False)}"
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in STABLE_CODES, (case.body, error)
        leaked = internals_in(error, sent)
        assert not leaked, (case.body, error, leaked)


def test_graphql_answers_every_input_in_one_safe_shape(
    fuzzed_schema: Any, fuzz_target: tuple[Server, SessionClient, dict[str, list[str]]]
) -> None:
    # schemathesis' own pytest runner (`@schema.parametrize()` on a lazy schema) fails under
    # pytest 9 ("'Function' object has no attribute '_nodeid'"), so its strategies are driven
    # here, one bounded, derandomized Hypothesis run per operation and generation mode.
    _, admin, _ = fuzz_target
    failures: list[str] = []
    operations = [result.ok() for result in fuzzed_schema.get_all_operations()]
    assert len(operations) > 20, [o.label for o in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                check_answer(case, admin.token)

            try:
                fuzz()
            except AssertionError as e:
                failures.append(f"{operation.label} ({mode.value}): {e}")
            except SkipTest:
                pass  # no invalid input expressible for this operation
    assert not failures, "\n\n".join(failures)


def test_fuzzing_left_every_follower_healthy(
    fuzz_target: tuple[Server, SessionClient, dict[str, list[str]]],
) -> None:
    """Nothing a client sent stalls a projection (runs after the fuzzing above, on its server)."""
    server, _, _ = fuzz_target
    ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
    errors = {name: f.get("error") for name, f in ready["followers"].items() if f.get("error")}
    assert not errors, ready
    server.settled_head(timeout=15)


def test_a_nul_byte_in_a_search_is_bad_user_input(
    fuzz_target: tuple[Server, SessionClient, dict[str, list[str]]],
) -> None:
    _, admin, _ = fuzz_target
    body = admin.raw('{ searchMessages(query: "a\\u0000b") { nodes { content } } }')
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body


# Last in the module: were it to regress, it would stall this server's read models.
def test_a_nul_byte_in_text_is_refused_and_never_stalls_the_read_models(
    fuzz_target: tuple[Server, SessionClient, dict[str, list[str]]],
) -> None:
    server, admin, ids = fuzz_target
    body = admin.raw(
        "mutation($i: SendMessageInput!) { sendMessage(input: $i) { position } }",
        {"i": {"chatId": ids["chat"][0], "content": "before\x00after"}},
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    title = admin.raw(
        "mutation($i: StartChatInput!) { startChat(input: $i) { chatId } }",
        {"i": {"title": "nul\x00title"}},
    )
    assert [e["extensions"]["code"] for e in title["errors"]] == ["BAD_USER_INPUT"], title
    server.settled_head(timeout=10)
