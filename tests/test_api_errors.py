"""Bad input gets a typed error (stable extensions.code) and changes nothing."""

import time
import uuid

import jwt
import pytest

from infra.identity.master_key import MasterKey
from infra.identity.signing_keys import SigningKeys
from infra.postgres import EmbeddedPostgres, open_pool
from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server

START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
REGISTER = "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"


def expect_code(code: str, call, server: Server) -> GraphQLFailed:
    """Run `call`, expect one GraphQL error with `code`, and prove the log did not move."""
    before = server.settled_head()
    with pytest.raises(GraphQLFailed) as failure:
        call()
    assert failure.value.codes == [code], failure.value.errors
    message = failure.value.errors[0]["message"]
    assert "Traceback" not in message and "SELECT" not in message and "psycopg" not in message
    assert server.settled_head() == before
    return failure.value


@pytest.fixture
def admin(api: ApiClient, tenant: dict) -> ApiClient:
    return api.login(tenant["slug"], tenant["email"], tenant["password"])


@pytest.fixture
def chat(admin: ApiClient) -> dict:
    return admin.run(START_CHAT, {"i": {"title": "Errors"}})["startChat"]


@pytest.mark.parametrize("content", ["", "   \n ", "x" * 32_001])
def test_empty_or_oversized_content_is_bad_user_input(
    server: Server, admin: ApiClient, chat: dict, content: str
) -> None:
    expect_code(
        "BAD_USER_INPUT",
        lambda: admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": content}}),
        server,
    )


def test_content_of_exactly_32000_characters_is_accepted(admin: ApiClient, chat: dict) -> None:
    sent = admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": "y" * 32_000}})
    assert sent["sendMessage"]["position"] > chat["position"]


@pytest.mark.parametrize("title", ["", "t" * 201])
def test_bad_titles_are_rejected(server: Server, admin: ApiClient, title: str) -> None:
    expect_code("BAD_USER_INPUT", lambda: admin.run(START_CHAT, {"i": {"title": title}}), server)


def test_unknown_chat_id_is_not_found(server: Server, admin: ApiClient) -> None:
    missing = str(uuid.uuid4())
    expect_code(
        "NOT_FOUND",
        lambda: admin.run(SEND, {"i": {"chatId": missing, "content": "hello"}}),
        server,
    )
    expect_code(
        "NOT_FOUND",
        lambda: admin.run("query($id: ID!) { chat(id: $id) { id } }", {"id": missing}),
        server,
    )


def test_malformed_chat_id_is_bad_user_input(server: Server, admin: ApiClient) -> None:
    expect_code(
        "BAD_USER_INPUT",
        lambda: admin.run(SEND, {"i": {"chatId": "not-a-uuid", "content": "hello"}}),
        server,
    )


def test_model_not_allowed_in_tenant_is_bad_user_input(server: Server, admin: ApiClient) -> None:
    expect_code(
        "BAD_USER_INPUT",
        lambda: admin.run(START_CHAT, {"i": {"title": "x", "model": "gpt-nonexistent"}}),
        server,
    )


def test_writes_to_a_deleted_chat_are_not_found(
    server: Server, admin: ApiClient, chat: dict
) -> None:
    admin.run(
        "mutation($i: ChatIdInput!) { deleteChat(input: $i) { position } }",
        {"i": {"chatId": chat["chatId"]}},
    )
    expect_code(
        "NOT_FOUND",
        lambda: admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": "too late"}}),
        server,
    )


def test_missing_token_is_unauthenticated(server: Server, api: ApiClient, chat: dict) -> None:
    expect_code("UNAUTHENTICATED", lambda: api.run("{ me { id } }"), server)
    expect_code(
        "UNAUTHENTICATED",
        lambda: api.run(SEND, {"i": {"chatId": chat["chatId"], "content": "anonymous"}}),
        server,
    )


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer not.a.jwt", "Token abc", "Bearer " + "x" * 40]
)
def test_malformed_token_is_unauthenticated(
    server: Server, api: ApiClient, chat: dict, header: str
) -> None:
    expect_code(
        "UNAUTHENTICATED",
        lambda: api.run(
            SEND, {"i": {"chatId": chat["chatId"], "content": "hi"}}, Authorization=header
        ),
        server,
    )


def forged(server: Server, admin: ApiClient, **overrides) -> str:
    """A token for the admin, signed with the server's own key (read from its database with its
    master key, as another process of the deployment would), with claims overridden."""
    embedded = EmbeddedPostgres(server.data_dir)  # shares the server's running instance
    try:
        with open_pool(embedded.start().conninfo(), size=1, name="test-forge") as pool:
            master_key = MasterKey.from_setting(None, server.data_dir)
            keys = SigningKeys(pool, master_key, max_token_seconds=0, cache_seconds=0)
            keys.reload()
            signer = keys.signer()
    finally:
        embedded.stop()
    claims = jwt.decode(admin.token, options={"verify_signature": False})
    claims.update(overrides)
    return jwt.encode(claims, signer.private_key, algorithm="EdDSA", headers={"kid": signer.kid})


def test_expired_token_is_unauthenticated(server: Server, admin: ApiClient, chat: dict) -> None:
    now = int(time.time())
    expired = forged(server, admin, iat=now - 3600, nbf=now - 3600, exp=now - 60)
    failure = expect_code(
        "UNAUTHENTICATED",
        lambda: admin.as_user(expired).run(
            SEND, {"i": {"chatId": chat["chatId"], "content": "late"}}
        ),
        server,
    )
    assert "expired" in failure.errors[0]["message"]


def test_tokens_for_another_audience_or_unsigned_are_rejected(
    server: Server, admin: ApiClient, chat: dict
) -> None:
    claims = jwt.decode(admin.token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    wrong_key = jwt.encode(claims, "another-secret-that-is-long-enough-123", algorithm="HS256")
    for token in (forged(server, admin, aud="someone-else"), unsigned, wrong_key):
        expect_code(
            "UNAUTHENTICATED",
            lambda token=token: admin.as_user(token).run(
                SEND, {"i": {"chatId": chat["chatId"], "content": "forged"}}
            ),
            server,
        )


def test_wrong_password_is_unauthenticated(server: Server, api: ApiClient, tenant: dict) -> None:
    for slug, email, password in (
        (tenant["slug"], tenant["email"], "wrong-password-123"),
        (tenant["slug"], "nobody@example.com", tenant["password"]),
        ("no-such-tenant", tenant["email"], tenant["password"]),
    ):
        failure = expect_code(
            "UNAUTHENTICATED", lambda s=slug, e=email, p=password: api.login(s, e, p), server
        )
        assert failure.errors[0]["message"] == "invalid tenant, email or password"


def test_member_cannot_register_users(
    server: Server, api: ApiClient, admin: ApiClient, tenant: dict
) -> None:
    email = f"member-{uuid.uuid4().hex[:6]}@example.com"
    admin.run(
        REGISTER,
        {
            "i": {
                "email": email,
                "password": "member-password-1",
                "displayName": "Member",
                "role": "MEMBER",
            }
        },
    )
    member = api.login(tenant["slug"], email, "member-password-1")
    expect_code(
        "FORBIDDEN",
        lambda: member.run(
            REGISTER,
            {
                "i": {
                    "email": "x@example.com",
                    "password": "p" * 12,
                    "displayName": "X",
                    "role": "MEMBER",
                }
            },
        ),
        server,
    )


def test_registering_an_existing_email_is_a_conflict(server: Server, admin: ApiClient) -> None:
    email = f"dup-{uuid.uuid4().hex[:6]}@example.com"
    user = {"email": email, "password": "member-password-1", "displayName": "Dup"}
    admin.run(REGISTER, {"i": user})
    expect_code(
        "CONFLICT", lambda: admin.run(REGISTER, {"i": {**user, "email": email.upper()}}), server
    )


def test_short_password_is_bad_user_input(server: Server, admin: ApiClient) -> None:
    expect_code(
        "BAD_USER_INPUT",
        lambda: admin.run(
            REGISTER, {"i": {"email": "short@example.com", "password": "short", "displayName": "S"}}
        ),
        server,
    )


def test_invalid_documents_are_bad_user_input(server: Server, admin: ApiClient) -> None:
    expect_code("BAD_USER_INPUT", lambda: admin.run("{ me { nope } }"), server)
    expect_code("BAD_USER_INPUT", lambda: admin.run("{ me { "), server)


def test_deactivated_user_can_no_longer_act(
    server: Server, api: ApiClient, admin: ApiClient, tenant: dict
) -> None:
    email = f"leaver-{uuid.uuid4().hex[:6]}@example.com"
    created = admin.run(
        REGISTER, {"i": {"email": email, "password": "leaver-password-1", "displayName": "Leaver"}}
    )["registerUser"]
    leaver = api.login(tenant["slug"], email, "leaver-password-1")
    chat = leaver.run(START_CHAT, {"i": {"title": "Mine"}})["startChat"]
    admin.run(
        "mutation($i: DeactivateUserInput!) { deactivateUser(input: $i) { position } }",
        {"i": {"userId": created["userId"]}},
    )
    expect_code(
        "FORBIDDEN",
        lambda: leaver.run(SEND, {"i": {"chatId": chat["chatId"], "content": "still here?"}}),
        server,
    )
    expect_code(
        "UNAUTHENTICATED", lambda: api.login(tenant["slug"], email, "leaver-password-1"), server
    )
