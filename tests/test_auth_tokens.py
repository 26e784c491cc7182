"""Negative authentication: every way a token can be wrong is refused, refresh tokens rotate and
betray their reuse, sign-outs and password changes end sign-ins, deactivated users lose every
door, signing keys rotate and retire, and password guessing is throttled.

One `parley serve` on its own PostgreSQL database and the services' Redis serves the module;
tokens are forged with keys made here, or with the server's own key (read from its database
with its master key, as another process of the deployment would)."""

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg_pool import ConnectionPool

from infra.eventstore.event_store import open_event_store
from infra.identity.master_key import MasterKey, new_master_key
from infra.identity.passwords import needs_rehash, verify_password
from infra.identity.signing_keys import SigningKeys, reseal_private_keys
from infra.identity.tokens import InvalidToken, TokenService
from infra.postgres import PostgresTarget, open_pool
from testbed.client import GraphQLFailed
from testbed.processes import Server, target_url
from tests.conftest import MASTER_KEY, data_keys, fresh_database

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 6
KEY_CACHE_SECONDS = 0.3

ME = "{ me { id } }"
RECHECK_SECONDS = 0.5
START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
REGISTER = "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"
DEACTIVATE = "mutation($i: DeactivateUserInput!) { deactivateUser(input: $i) { position } }"
LOGIN = """mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }"""
REFRESH = """mutation($t: String!) { refreshToken(input: {refreshToken: $t})
    { accessToken refreshToken } }"""
LOGOUT = "mutation($t: String!) { logout(input: {refreshToken: $t}) { sessionsRevoked } }"
LOGOUT_EVERYWHERE = "mutation { logoutEverywhere { sessionsRevoked } }"
CHANGE_PASSWORD = """mutation($i: ChangePasswordInput!) { changePassword(input: $i)
    { accessToken refreshToken } }"""
PASSWORD = "a-long-password-1"
REUSE_GRACE_SECONDS = 2


@pytest.fixture(scope="module")
def database(postgres_url: str) -> PostgresTarget:
    return fresh_database(postgres_url)


@pytest.fixture(scope="module")
def master_key() -> str:
    return MASTER_KEY  # what stores opened here (data_keys) wrap their keys under


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    database: PostgresTarget,
    redis_url: str,
    master_key: str,
) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("auth"),
        {
            "PARLEY_DATABASE_URL": target_url(database),
            "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
            "PARLEY_REDIS_URL": redis_url,
            "PARLEY_MASTER_KEY": master_key,
            "PARLEY_SIGNING_KEY_CACHE_SECONDS": str(KEY_CACHE_SECONDS),
            "PARLEY_LOGIN_FAILURES_PER_ACCOUNT": str(ACCOUNT_LIMIT),
            "PARLEY_LOGIN_FAILURES_PER_ADDRESS": str(ADDRESS_LIMIT),
            "PARLEY_PASSWORD_HASH_CONCURRENCY": "4",
            "PARLEY_FOLLOWER_POLL_SECONDS": "0.2",
            "PARLEY_SUBSCRIPTION_RECHECK_SECONDS": str(RECHECK_SECONDS),
            "PARLEY_REFRESH_REUSE_GRACE_SECONDS": str(REUSE_GRACE_SECONDS),
        },
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ring(database: PostgresTarget, master_key: str) -> Iterator[SigningKeys]:
    """The server's key ring, read from its database (re-read on every use)."""
    with open_pool(database.conninfo(), size=2, name="test-auth") as pool:
        keys = SigningKeys(
            pool, MasterKey.from_setting(master_key, Path()), max_token_seconds=0, cache_seconds=0
        )
        keys.reload()
        yield keys


@pytest.fixture(scope="module")
def tenant(server: Server) -> dict:
    return server.create_tenant()


class Api:
    """GraphQL over one keep-alive connection, optionally from a given client address."""

    def __init__(self, server: Server, http: httpx.Client) -> None:
        self.server, self.http = server, http

    def raw(
        self, query: str, variables: dict | None = None, token: str | None = None, **headers: str
    ) -> dict:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.post(
            f"{self.server.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
        )
        return r.json()  # type: ignore[no-any-return]

    def run(self, query: str, variables: dict | None = None, token: str | None = None, **h: str):
        body = self.raw(query, variables, token, **h)
        if body.get("errors"):
            raise GraphQLFailed(body["errors"])
        return body["data"]

    def login(self, tenant: dict, email: str, password: str, **headers: str) -> dict:
        i = {"tenant": tenant["slug"], "email": email, "password": password}
        return self.run(LOGIN, {"i": i}, **headers)["login"]  # type: ignore[no-any-return]

    def refresh(self, refresh_token: str) -> dict:
        return self.run(REFRESH, {"t": refresh_token})["refreshToken"]  # type: ignore[no-any-return]

    def fails(
        self, code: str, query: str, variables: dict | None = None, token: str | None = None, **h
    ) -> dict:
        """Expect one error with `code`; returns it."""
        body = self.raw(query, variables, token, **h)
        errors = body.get("errors") or []
        assert [e.get("extensions", {}).get("code") for e in errors] == [code], body
        return errors[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(server: Server, http: httpx.Client) -> Api:
    return Api(server, http)


@pytest.fixture(scope="module")
def admin_login(api: Api, tenant: dict) -> dict:
    return api.login(tenant, tenant["email"], tenant["password"])


def address() -> dict[str, str]:
    """A client address of its own (via the loopback proxy's header): Redis keeps the buckets
    of earlier runs."""
    return {"X-Forwarded-For": f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"}


def new_user(api: Api, tenant: dict) -> tuple[str, str]:
    """A member of the tenant: (user id, e-mail)."""
    admin = api.login(tenant, tenant["email"], tenant["password"])
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    user = api.run(
        REGISTER,
        {"i": {"email": email, "password": PASSWORD, "displayName": "M"}},
        admin["accessToken"],
    )["registerUser"]
    return user["userId"], email


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_with_server_key(ring: SigningKeys, claims: dict[str, Any]) -> str:
    signer = ring.signer()
    return jwt.encode(claims, signer.private_key, algorithm="EdDSA", headers={"kid": signer.kid})


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HMAC token made by hand (PyJWT refuses key material that looks asymmetric)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


# -- token format -------------------------------------------------------------------------------


def test_tokens_are_eddsa_signed_by_a_key_of_the_published_jwks(
    server: Server, api: Api, admin_login: dict, http: httpx.Client
) -> None:
    response = http.get(f"{server.url}/.well-known/jwks.json")
    assert response.status_code == 200 and "max-age" in response.headers["cache-control"]
    jwks = response.json()
    assert jwks["keys"] and all(
        k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" and "d" not in k
        for k in jwks["keys"]
    )
    for token in (admin_login["accessToken"], admin_login["refreshToken"]):
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "EdDSA"
        (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
        key = jwt.PyJWK(jwk).key
        claims = jwt.decode(token, key, algorithms=["EdDSA"], audience="parley-api")
        assert claims["iss"] == "parley" and claims["sid"]


# -- forged and malformed access tokens -------------------------------------------------------


def test_an_unsigned_token_is_refused(api: Api, admin_login: dict) -> None:
    claims = claims_of(admin_login["accessToken"])
    for alg in ("none", "None", "NONE"):
        header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        unsigned = f"{header}.{b64url(json.dumps(claims).encode())}."
        api.fails("UNAUTHENTICATED", ME, token=unsigned)


def test_hs256_signed_with_the_public_key_is_refused(
    api: Api, admin_login: dict, ring: SigningKeys
) -> None:
    """Algorithm confusion: a verifier that let the token choose HMAC would use the public key
    (which anyone can fetch) as the secret."""
    header = jwt.get_unverified_header(admin_login["accessToken"])
    claims = claims_of(admin_login["accessToken"])
    public = ring.public_key(header["kid"])
    assert public is not None
    pem = public.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public.raw, pem, b64url(public.raw).encode(), json.dumps(public.jwk()).encode()):
        forged = hs256({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}, claims, secret)
        api.fails("UNAUTHENTICATED", ME, token=forged)


def test_a_key_that_is_not_ours_is_refused(api: Api, admin_login: dict) -> None:
    claims = claims_of(admin_login["accessToken"])
    stranger = Ed25519PrivateKey.generate()
    kid = jwt.get_unverified_header(admin_login["accessToken"])["kid"]
    for headers in ({"kid": "no-such-key"}, {}, {"kid": kid}):  # unknown, none, ours (forged)
        forged = jwt.encode(claims, stranger, algorithm="EdDSA", headers=headers)
        error = api.fails("UNAUTHENTICATED", ME, token=forged)
        assert "Traceback" not in error["message"]


def test_a_tampered_payload_is_refused(api: Api, admin_login: dict) -> None:
    header, _, signature = admin_login["accessToken"].split(".")
    claims = {**claims_of(admin_login["accessToken"]), "role": "platform_admin"}
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    api.fails("UNAUTHENTICATED", ME, token=tampered)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"aud": "someone-else"}, "token invalid"),
        ({"iss": "evil-issuer"}, "token invalid"),
        ({"exp": int(time.time()) - 120}, "token expired"),
        ({"nbf": int(time.time()) + 3600}, "token not yet valid"),
        ({"aud": None}, "token invalid"),
        ({"typ": "refresh"}, "not an access token"),
    ],
    ids=["wrong-aud", "wrong-iss", "expired", "not-yet-valid", "no-aud", "refresh-typ"],
)
def test_a_token_signed_by_our_key_with_wrong_claims_is_refused(
    api: Api, admin_login: dict, ring: SigningKeys, override: dict, message: str
) -> None:
    claims = {**claims_of(admin_login["accessToken"]), **override}
    claims = {k: v for k, v in claims.items() if v is not None}
    assert api.run(ME, token=signed_with_server_key(ring, claims_of(admin_login["accessToken"])))
    error = api.fails("UNAUTHENTICATED", ME, token=signed_with_server_key(ring, claims))
    assert error["message"] == message


def test_a_refresh_token_is_not_an_access_token(api: Api, tenant: dict, server: Server) -> None:
    _, email = new_user(api, tenant)
    pair = api.login(tenant, email, PASSWORD)
    api.fails("UNAUTHENTICATED", ME, token=pair["refreshToken"])
    api.fails("UNAUTHENTICATED", START_CHAT, {"i": {"title": "x"}}, token=pair["refreshToken"])


def test_an_access_token_is_not_a_refresh_token(api: Api, tenant: dict) -> None:
    _, email = new_user(api, tenant)
    pair = api.login(tenant, email, PASSWORD)
    error = api.fails("UNAUTHENTICATED", REFRESH, {"t": pair["accessToken"]})
    assert error["message"] == "not a refresh token"
    api.fails("UNAUTHENTICATED", LOGOUT, {"t": pair["accessToken"]})


# -- refresh token rotation ---------------------------------------------------------------------


def test_refreshing_rotates_the_refresh_token(api: Api, tenant: dict) -> None:
    _, email = new_user(api, tenant)
    first = api.login(tenant, email, PASSWORD)
    second = api.refresh(first["refreshToken"])
    third = api.refresh(second["refreshToken"])
    assert len({first["refreshToken"], second["refreshToken"], third["refreshToken"]}) == 3
    assert claims_of(third["refreshToken"])["sid"] == claims_of(first["refreshToken"])["sid"]
    assert api.run(ME, token=third["accessToken"])["me"]


def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(api: Api, tenant: dict) -> None:
    _, email = new_user(api, tenant)
    stolen = api.login(tenant, email, PASSWORD)
    elsewhere = api.login(tenant, email, PASSWORD)  # another sign-in of the same user
    legitimate = api.refresh(stolen["refreshToken"])
    newer = api.refresh(legitimate["refreshToken"])  # its successor is in use: no lost answer

    api.fails("UNAUTHENTICATED", REFRESH, {"t": stolen["refreshToken"]})  # the replay
    # ...and the legitimate holder's newer token died with the family.
    api.fails("UNAUTHENTICATED", REFRESH, {"t": newer["refreshToken"]})
    assert api.refresh(elsewhere["refreshToken"])["accessToken"]


def test_a_refresh_retried_after_a_lost_answer_gets_a_new_token_once(
    api: Api, tenant: dict
) -> None:
    """A reload mid-refresh: the client never stored the successor and presents the same token
    again within the grace. It gets a new successor; the one it never received stops working,
    and presenting that one (a thief holding it) signs the whole sign-in out."""
    _, email = new_user(api, tenant)
    first = api.login(tenant, email, PASSWORD)
    lost = api.refresh(first["refreshToken"])  # the answer the browser never stored
    retried = api.refresh(first["refreshToken"])
    assert retried["refreshToken"] != lost["refreshToken"]
    assert claims_of(retried["refreshToken"])["sid"] == claims_of(first["refreshToken"])["sid"]
    later = api.refresh(retried["refreshToken"])  # the client goes on with the new one
    api.fails("UNAUTHENTICATED", REFRESH, {"t": lost["refreshToken"]})
    api.fails("UNAUTHENTICATED", REFRESH, {"t": later["refreshToken"]})  # the sign-in ended


def test_a_refresh_token_presented_again_after_the_grace_revokes_its_family(
    api: Api, tenant: dict
) -> None:
    _, email = new_user(api, tenant)
    first = api.login(tenant, email, PASSWORD)
    successor = api.refresh(first["refreshToken"])
    time.sleep(REUSE_GRACE_SECONDS + 0.5)
    api.fails("UNAUTHENTICATED", REFRESH, {"t": first["refreshToken"]})
    api.fails("UNAUTHENTICATED", REFRESH, {"t": successor["refreshToken"]})


# -- sign-outs ----------------------------------------------------------------------------------


def test_logout_revokes_that_sign_in_only(api: Api, tenant: dict) -> None:
    _, email = new_user(api, tenant)
    phone = api.login(tenant, email, PASSWORD)
    laptop = api.login(tenant, email, PASSWORD)
    rotated = api.refresh(phone["refreshToken"])
    assert api.run(LOGOUT, {"t": phone["refreshToken"]})["logout"]["sessionsRevoked"] == 1
    api.fails("UNAUTHENTICATED", REFRESH, {"t": rotated["refreshToken"]})
    assert api.refresh(laptop["refreshToken"])["accessToken"]


def test_logout_everywhere_revokes_every_sign_in(api: Api, tenant: dict) -> None:
    _, email = new_user(api, tenant)
    sign_ins = [api.login(tenant, email, PASSWORD) for _ in range(3)]
    done = api.run(LOGOUT_EVERYWHERE, token=sign_ins[0]["accessToken"])
    assert done["logoutEverywhere"]["sessionsRevoked"] == 3
    for pair in sign_ins:
        api.fails("UNAUTHENTICATED", REFRESH, {"t": pair["refreshToken"]})
    api.fails("UNAUTHENTICATED", LOGOUT_EVERYWHERE)


def test_changing_the_password_signs_out_every_sign_in(api: Api, tenant: dict) -> None:
    _, email = new_user(api, tenant)
    phone = api.login(tenant, email, PASSWORD)
    laptop = api.login(tenant, email, PASSWORD)
    wrong = {"currentPassword": "not-my-password-1", "newPassword": "a-brand-new-password"}
    api.fails("BAD_USER_INPUT", CHANGE_PASSWORD, {"i": wrong}, phone["accessToken"])
    assert api.refresh(laptop["refreshToken"])["accessToken"]  # a wrong guess changes nothing

    right = {"currentPassword": PASSWORD, "newPassword": "a-brand-new-password"}
    fresh = api.run(CHANGE_PASSWORD, {"i": right}, phone["accessToken"])["changePassword"]
    for pair in (phone, laptop):
        api.fails("UNAUTHENTICATED", REFRESH, {"t": pair["refreshToken"]})
    assert api.refresh(fresh["refreshToken"])["accessToken"]
    api.fails(
        "UNAUTHENTICATED",
        LOGIN,
        {"i": {"tenant": tenant["slug"], "email": email, "password": PASSWORD}},
    )
    assert api.login(tenant, email, "a-brand-new-password")["accessToken"]


# -- deactivated users --------------------------------------------------------------------------


async def test_a_deactivated_users_tokens_are_refused_everywhere(
    api: Api, tenant: dict, server: Server
) -> None:
    user_id, email = new_user(api, tenant)
    pair = api.login(tenant, email, PASSWORD)
    chat = api.run(START_CHAT, {"i": {"title": "Mine"}}, pair["accessToken"])["startChat"]
    admin = api.login(tenant, tenant["email"], tenant["password"])
    # One message a minute for the whole tenant: the deactivated user must not take it.
    api.run(
        """mutation { updateTenantSettings(input: {defaultModel: "echo", allowedModels: ["echo"],
           tenantRequestsPerMinute: 1}) { position } }""",
        token=admin["accessToken"],
    )
    gone = api.run(DEACTIVATE, {"i": {"userId": user_id}}, admin["accessToken"])
    position = gone["deactivateUser"]["position"]

    token = pair["accessToken"]
    api.fails(
        "FORBIDDEN", "query($p: Int) { me(afterPosition: $p) { id } }", {"p": position}, token
    )
    api.fails("FORBIDDEN", START_CHAT, {"i": {"title": "More"}}, token)
    api.fails("FORBIDDEN", SEND, {"i": {"chatId": chat["chatId"], "content": "hi"}}, token)
    api.fails("FORBIDDEN", LOGOUT_EVERYWHERE, token=token)
    api.fails("UNAUTHENTICATED", REFRESH, {"t": pair["refreshToken"]})
    admin_chat = api.run(START_CHAT, {"i": {"title": "Admin"}}, admin["accessToken"])["startChat"]
    sent = api.run(
        SEND, {"i": {"chatId": admin_chat["chatId"], "content": "still mine"}}, admin["accessToken"]
    )
    assert sent["sendMessage"]["messageId"]

    subscribe = {
        "query": "subscription($c: ID!, $p: Int) { chatEvents(chatId: $c, afterPosition: $p) "
        "{ __typename } }",
        "variables": {"c": chat["chatId"], "p": position},
    }
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        refused = json.loads(await ws.recv())
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused


async def test_a_live_subscription_ends_when_its_user_is_deactivated_and_others_go_on(
    api: Api, server: Server
) -> None:
    """Subscriptions are re-checked together every PARLEY_SUBSCRIPTION_RECHECK_SECONDS
    (queries/subscription_checks.py): the deactivated user's ends with FORBIDDEN, the admin's
    on the same process keeps delivering."""
    tenant = server.create_tenant()  # its own: another test rate-limits the shared one
    user_id, email = new_user(api, tenant)
    token = api.login(tenant, email, PASSWORD)["accessToken"]
    admin = api.login(tenant, tenant["email"], tenant["password"])["accessToken"]
    mine = api.run(START_CHAT, {"i": {"title": "Mine"}}, token)["startChat"]
    theirs = api.run(START_CHAT, {"i": {"title": "Admin's"}}, admin)["startChat"]
    ws_url = server.url.replace("http://", "ws://") + "/graphql"

    async def subscribe(bearer: str, chat: dict) -> Any:
        ws = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"])
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {bearer}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        # afterPosition: else a subscription reaching the server before the read models hold
        # the chat is refused NOT_FOUND.
        query = """subscription($c: ID!, $p: Int) {
          chatEvents(chatId: $c, afterPosition: $p) { __typename } }"""
        payload = {"query": query, "variables": {"c": chat["chatId"], "p": chat["position"]}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return ws

    user_ws, admin_ws = await subscribe(token, mine), await subscribe(admin, theirs)
    try:
        await asyncio.sleep(3 * RECHECK_SECONDS)  # re-checked, still allowed: nothing arrives
        api.run(DEACTIVATE, {"i": {"userId": user_id}}, admin)
        ended = json.loads(await asyncio.wait_for(user_ws.recv(), 10))
        assert ended["type"] == "next", ended
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN", ended
        assert json.loads(await asyncio.wait_for(user_ws.recv(), 5))["type"] == "complete"

        api.run(SEND, {"i": {"chatId": theirs["chatId"], "content": "still here"}}, admin)
        delivered = json.loads(await asyncio.wait_for(admin_ws.recv(), 10))
        assert delivered["payload"]["data"]["chatEvents"]["__typename"] == "MessageAdded"
    finally:
        await user_ws.close()
        await admin_ws.close()


async def test_a_websocket_with_a_forged_token_is_rejected(
    server: Server, admin_login: dict
) -> None:
    claims = claims_of(admin_login["accessToken"])
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "x"}
    )
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {forged}"}}
        await ws.send(json.dumps(init))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


# -- login throttling ---------------------------------------------------------------------------


def test_failed_sign_ins_on_an_account_are_throttled_before_any_password_check(
    api: Api, tenant: dict
) -> None:
    _, email = new_user(api, tenant)
    wrong = {"i": {"tenant": tenant["slug"], "email": email, "password": "wrong-password-1"}}
    for _ in range(ACCOUNT_LIMIT):
        api.fails("UNAUTHENTICATED", LOGIN, wrong, **address())
    # Now even the right password, from yet another address, is not checked.
    right = {"i": {"tenant": tenant["slug"], "email": email, "password": PASSWORD}}
    error = api.fails("RATE_LIMITED", LOGIN, right, **address())
    assert error["extensions"]["retryAfterSeconds"] >= 1
    assert "retry in" in error["message"]
    # The same account however its e-mail is spelled.
    shouted = {"i": {**right["i"], "email": email.upper()}}
    api.fails("RATE_LIMITED", LOGIN, shouted, **address())


def test_failed_sign_ins_from_an_address_are_throttled_and_others_are_not_freed(
    api: Api, tenant: dict
) -> None:
    attacker, other = address(), address()
    _, email = new_user(api, tenant)
    for n in range(ADDRESS_LIMIT):  # a different account each time: only the address counts up
        guess = {
            "tenant": tenant["slug"],
            "email": f"x{n}@example.com",
            "password": "guess-1234567",
        }
        api.fails("UNAUTHENTICATED", LOGIN, {"i": guess}, **attacker)
    right = {"i": {"tenant": tenant["slug"], "email": email, "password": PASSWORD}}
    api.fails("RATE_LIMITED", LOGIN, right, **attacker)
    assert api.run(LOGIN, right, **other)["login"]["accessToken"]  # another address signs in
    api.fails("RATE_LIMITED", LOGIN, right, **attacker)  # ...which freed nothing here


# -- key rotation -------------------------------------------------------------------------------


def jwks_kids(server: Server, http: httpx.Client) -> set[str]:
    return {k["kid"] for k in http.get(f"{server.url}/.well-known/jwks.json").json()["keys"]}


def test_after_a_rotation_old_tokens_still_work_and_the_jwks_lists_both_keys(
    api: Api, tenant: dict, server: Server, http: httpx.Client
) -> None:
    _, email = new_user(api, tenant)
    before = api.login(tenant, email, PASSWORD)
    old_kid = jwt.get_unverified_header(before["accessToken"])["kid"]

    done = server.cli("auth", "rotate-keys")
    assert done.returncode == 0, done.stderr
    time.sleep(KEY_CACHE_SECONDS + 0.2)

    after = api.login(tenant, email, PASSWORD)
    new_kid = jwt.get_unverified_header(after["accessToken"])["kid"]
    assert new_kid != old_kid and new_kid in done.stdout
    assert {old_kid, new_kid} <= jwks_kids(server, http)
    assert api.run(ME, token=before["accessToken"])["me"]
    refreshed = api.refresh(before["refreshToken"])  # an old sign-in goes on, on the new key
    assert jwt.get_unverified_header(refreshed["accessToken"])["kid"] == new_kid

    listed = server.cli("auth", "keys", "--json")
    states = {k["kid"]: k["state"] for k in json.loads(listed.stdout)}
    assert states[old_kid] == "verifying" and states[new_kid] == "signing"


def test_an_emergency_rotation_retires_the_previous_keys_at_once(
    api: Api, tenant: dict, server: Server, http: httpx.Client
) -> None:
    _, email = new_user(api, tenant)
    before = api.login(tenant, email, PASSWORD)
    old_kid = jwt.get_unverified_header(before["accessToken"])["kid"]
    # Verified once before the rotation: the server's cache of verified tokens must not keep
    # accepting it once its key is retired.
    assert api.run(ME, token=before["accessToken"])["me"]

    done = server.cli("auth", "rotate-keys", "--retire-previous")
    assert done.returncode == 0, done.stderr
    time.sleep(KEY_CACHE_SECONDS + 0.2)

    assert old_kid not in jwks_kids(server, http)
    error = api.fails("UNAUTHENTICATED", ME, token=before["accessToken"])
    assert "retired" in error["message"]
    api.fails("UNAUTHENTICATED", REFRESH, {"t": before["refreshToken"]})
    assert api.run(ME, token=api.login(tenant, email, PASSWORD)["accessToken"])["me"]


def test_a_superseded_key_retires_once_its_longest_token_expired(postgres_url: str) -> None:
    """In process, on a database of its own: tokens live one second here."""
    target = fresh_database(postgres_url)
    with open_pool(target.conninfo(), size=2, name="test-retire") as pool:
        keys = SigningKeys(
            pool,
            MasterKey.from_setting(new_master_key(), Path()),
            max_token_seconds=1,
            cache_seconds=0,
        )
        keys.ensure()
        tokens = TokenService(
            keys, issuer="parley", audience="parley-api", access_ttl=1, refresh_ttl=1
        )
        old_kid = keys.signer().kid
        ids = {"user_id": uuid.uuid4(), "tenant_id": uuid.uuid4(), "role": "member"}
        old_token = tokens.issue(**ids)
        # What a thief of the old key could sign: valid for an hour.
        long_lived = jwt.encode(
            {**claims_of(old_token), "exp": int(time.time()) + 3600},
            keys.signer().private_key,
            algorithm="EdDSA",
            headers={"kid": old_kid},
        )
        new_kid, retired = keys.rotate()
        assert retired == [] and {k["kid"] for k in keys.jwks()["keys"]} == {old_kid, new_kid}
        assert tokens.verify(old_token).user_id == ids["user_id"]
        assert tokens.verify(long_lived)

        time.sleep(1.2)
        assert {k["kid"] for k in keys.jwks()["keys"]} == {new_kid}
        with pytest.raises(InvalidToken, match="retired"):
            tokens.verify(long_lived)
        states = {s.kid: s.state for s in keys.states()}
        assert states == {old_kid: "retired", new_kid: "signing"}
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT sealed_private_key FROM auth_signing_keys WHERE kid = %s", (old_kid,)
            ).fetchone()
        assert row == (None,)  # its private half is gone


def test_private_keys_are_stored_sealed(database: PostgresTarget, ring: SigningKeys) -> None:
    signer = ring.signer()
    raw = signer.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pool = ConnectionPool(database.conninfo(), min_size=1, max_size=1, open=True)
    try:
        with pool.connection() as conn:
            (sealed,) = conn.execute(
                "SELECT sealed_private_key FROM auth_signing_keys WHERE kid = %s", (signer.kid,)
            ).fetchone()  # type: ignore[misc]
    finally:
        pool.close()
    assert sealed.startswith("v") and base64.b64encode(raw).decode() not in sealed


# -- password hashes ----------------------------------------------------------------------------


def test_a_password_hashed_with_weaker_argon2_parameters_is_rehashed_at_sign_in(
    api: Api, tenant: dict, database: PostgresTarget
) -> None:
    user_id, email = new_user(api, tenant)
    store = open_event_store(database, create_tables=False, pool_size=1, keys=data_keys(database))
    try:
        user = store.get_or_none(uuid.UUID(user_id))
        weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
        user.change_password_hash(weak)
        store.save_all(user, actor=None)
        assert needs_rehash(weak)

        api.login(tenant, email, PASSWORD)
        rehashed = store.get_or_none(uuid.UUID(user_id)).password_hash
    finally:
        store.close()
    assert rehashed != weak and not needs_rehash(rehashed)
    assert verify_password(rehashed, PASSWORD)


def test_a_master_key_rotation_reseals_the_signing_keys(postgres_url: str) -> None:
    target = fresh_database(postgres_url)
    old, new = new_master_key(), new_master_key()
    with open_pool(target.conninfo(), size=2, name="test-reseal") as pool:
        before = SigningKeys(
            pool, MasterKey.from_setting(old, Path()), max_token_seconds=60, cache_seconds=0
        )
        before.ensure()
        kid = before.signer().kid
        rotating = MasterKey.from_setting(new, Path(), previous=old)
        with pool.connection() as conn, conn.transaction():
            assert reseal_private_keys(conn, rotating) == 1
        with pool.connection() as conn, conn.transaction():
            assert reseal_private_keys(conn, rotating) == 0  # nothing left under the old key
        after = SigningKeys(
            pool, MasterKey.from_setting(new, Path()), max_token_seconds=60, cache_seconds=0
        )
        after.reload()
        assert after.signer().kid == kid
