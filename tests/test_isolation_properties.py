"""Tenant isolation as a property: whatever tenants, users, chats and messages exist, nothing asked
with one tenant's credentials returns, reveals or changes another tenant's data.

Hypothesis draws a world (2-3 tenants, users with random roles, chats and messages of random
unicode and tricky text, some quoting other tenants' ids, some tenants bringing their own provider
key); it is built through the API of one real `parley serve` (PostgreSQL, Redis) and then every
user of every tenant probes every root field of the schema: the reading ones must return only
their tenant's data (checked for any foreign id, marker word, slug, e-mail or key fingerprint),
and every field or subscription that takes an id must answer NOT_FOUND or FORBIDDEN for foreign
ids and change nothing. `test_every_root_field_is_probed` keeps the probes in step with the
schema: a new root field that takes an id or returns data fails until it is probed here.
"""

import base64
import itertools
import json
import string
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    build_client_schema,
    get_introspection_query,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from testbed.client import GraphQLFailed
from testbed.processes import Server
from tests.security_server import BYOK_MODEL, BYOK_PROVIDER, SessionClient, security_server

DENIED = {"NOT_FOUND", "FORBIDDEN"}
ROLES = ("MEMBER", "TENANT_ADMIN", "AUDITOR")
CHATTING = {"MEMBER", "TENANT_ADMIN"}
PASSWORD = "isolation-password-123"

# -- what each root field is probed with -----------------------------------------------------------
# Reading fields: the caller's own data comes back, and nothing foreign is in it.
READ_PROBES = {
    "me",
    "tenant",
    "usage",
    "modelGateway",
    "chats",
    "chat",
    "searchMessages",
    "chatAt",
    "auditLog",
    "providerKeys",
    "apiKeys",
    "oidcConfig",
    "users",
    "tenants",
    "documents",
    "document",
    "searchKnowledge",
    "chatKnowledge",
}
# Fields that take an id: every foreign id must be refused (`foreign_id_probes` below).
FOREIGN_ID_FIELDS = {
    "Query.chat",
    "Query.searchMessages",
    "Query.chatAt",
    "Query.auditLog",
    "Mutation.registerUser",
    "Mutation.changeUserRole",
    "Mutation.deactivateUser",
    "Mutation.deactivateTenant",
    "Mutation.renameTenant",
    "Mutation.sendMessage",
    "Mutation.renameChat",
    "Mutation.archiveChat",
    "Mutation.stopGeneration",
    "Mutation.deleteChat",
    "Mutation.eraseUser",
    "Mutation.revokeApiKey",
    "Subscription.chatEvents",
    "Query.document",
    "Query.searchKnowledge",
    "Query.chatKnowledge",
    "Mutation.reprocessDocument",
    "Mutation.deleteDocument",
    "Mutation.attachKnowledge",
}
# Root fields that take no id and act only on the caller's own tenant (or on nobody's data).
NO_FOREIGN_TARGET = {
    "Mutation.login": "probed: a tenant's user cannot sign in to another tenant by its slug",
    "Mutation.refreshToken": "takes a token; forged tenant claims: test_api_tenant_isolation",
    "Mutation.createTenant": "probed: only platform admins may create tenants",
    "Mutation.updateTenantSettings": "acts on the caller's tenant; no id to aim elsewhere",
    "Mutation.startChat": "creates in the caller's tenant; no id to aim elsewhere",
    "Mutation.setProviderKey": "acts on the caller's tenant; providerKeys is probed",
    "Mutation.removeProviderKey": "acts on the caller's tenant; providerKeys is probed",
    "Mutation.createApiKey": "acts on the caller's tenant; apiKeys is probed",
    "Mutation.logout": "takes the caller's own refresh token",
    "Mutation.logoutEverywhere": "acts on the caller's own sign-ins",
    "Mutation.changePassword": "acts on the caller's own account",
    "Mutation.configureOidc": "acts on the caller's tenant; oidcConfig is probed",
    "Mutation.removeOidc": "acts on the caller's tenant; oidcConfig is probed",
    "Mutation.uploadDocument": "creates in the caller's tenant; documents is probed",
}


# -- the world Hypothesis draws --------------------------------------------------------------------

TRICKY = [
    "' OR '1'='1' --",
    "%' OR tenant_id IS NOT NULL --",
    "\\x00 \\u0000 %s %(tenant)s {tenant_id}",
    "<script>alert(1)</script> <em>x</em>",
    '"quoted phrase" -excluded OR other',
    "Robert'); DROP TABLE rm_messages;--",
    "💬 émoji ñandú 漢字 עברית مرحبا",
    "\u202e\u200b\ufeff zero-width",
    "*",
    "_ % \\",
]
texts = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=0, max_size=30),
    st.sampled_from(TRICKY),
)


@dataclass(frozen=True)
class ChatSpec:
    owner: int
    title: str
    messages: tuple[tuple[str, bool], ...]
    """Each message's text, and whether it quotes ids of tenants built before."""


@dataclass(frozen=True)
class TenantSpec:
    name: str
    roles: tuple[str, ...]
    """Users besides the first admin."""
    chats: tuple[ChatSpec, ...]
    own_key: bool


chat_specs = st.builds(
    ChatSpec,
    owner=st.integers(0, 3),
    title=texts,
    messages=st.lists(st.tuples(texts, st.booleans()), min_size=0, max_size=2).map(tuple),
)
tenant_specs = st.builds(
    TenantSpec,
    name=texts,
    roles=st.lists(st.sampled_from(ROLES), max_size=2).map(tuple),
    chats=st.lists(chat_specs, min_size=0, max_size=2).map(tuple),
    own_key=st.booleans(),
)
worlds = st.lists(tenant_specs, min_size=2, max_size=3)


# -- the world as built ----------------------------------------------------------------------------


@dataclass
class User:
    client: SessionClient
    id: str
    email: str
    role: str


@dataclass
class Chat:
    id: str
    owner: str
    message_ids: list[str] = field(default_factory=list)
    user_messages: int = 0


@dataclass
class Tenant:
    id: str
    slug: str
    marker: str
    """A word in every text of the tenant, searchable and unique to it."""
    users: list[User]
    chats: list[Chat]
    key_fingerprint: str | None = None
    api_keys: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    quoted: set[str] = field(default_factory=set)
    """Other tenants' ids that this tenant's messages quote (as text)."""

    def secrets(self) -> set[str]:
        """Strings that must never reach another tenant."""
        found = {self.id, self.slug, self.marker, *(u.id for u in self.users)}
        found |= {u.email for u in self.users}
        found |= {c.id for c in self.chats} | {m for c in self.chats for m in c.message_ids}
        found |= set(self.api_keys) | set(self.documents)
        return found | ({self.key_fingerprint} if self.key_fingerprint else set())

    def ids(self) -> list[str]:
        """Every id of the tenant, each of which a foreign caller might try anywhere."""
        # API key ids are not UUIDs (refused as malformed anywhere else): revokeApiKey gets them.
        ids = [self.id, *(u.id for u in self.users), *(c.id for c in self.chats)]
        return ids + [m for c in self.chats for m in c.message_ids] + self.documents


_markers = itertools.count()


def next_marker() -> str:
    """`qz` and six letters: the same length for all, so no marker contains another."""
    n, letters = next(_markers), ""
    for _ in range(6):
        n, digit = divmod(n, 26)
        letters += string.ascii_lowercase[digit]
    return "qz" + letters


def run(client: SessionClient, query: str, **variables: Any) -> Any:
    return client.run(query, variables)


def build_tenant(
    root: SessionClient, spec: TenantSpec, earlier: list[Tenant], schema: set[str]
) -> Tenant:
    marker = next_marker()
    slug = f"iso-{marker}"
    created = run(
        root,
        """mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenantId adminUserId } }""",
        i={
            "name": f"{spec.name} {marker}",
            "slug": slug,
            "adminEmail": f"admin@{slug}.example",
            "adminPassword": PASSWORD,
            "adminDisplayName": f"{spec.name} {marker}",
        },
    )["createTenant"]
    admin = root.as_user("").login(slug, f"admin@{slug}.example", PASSWORD)
    assert isinstance(admin, SessionClient)
    users = [User(admin, created["adminUserId"], f"admin@{slug}.example", "TENANT_ADMIN")]

    def register(n: int, role: str) -> User:
        email = f"user{n}@{slug}.example"
        registered = run(
            admin,
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }",
            i={"email": email, "password": PASSWORD, "displayName": marker, "role": role},
        )["registerUser"]
        client = root.as_user("").login(slug, email, PASSWORD)
        assert isinstance(client, SessionClient)
        return User(client, registered["userId"], email, role)

    # Password hashing dominates: the users are registered side by side.
    with ThreadPoolExecutor(4) as pool:
        users += pool.map(register, range(len(spec.roles)), spec.roles)
    tenant = Tenant(created["tenantId"], slug, marker, users, [])
    if "Mutation.createApiKey" in schema:
        made = run(
            admin,
            """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key { keyId } } }""",
            i={"name": f"integration {marker}", "role": "MEMBER"},
        )
        tenant.api_keys.append(made["createApiKey"]["key"]["keyId"])

    if "Mutation.uploadDocument" in schema:
        # The tenant's collection holds a document with the marker, and its first chat is
        # grounded in it: replies carry citations of the tenant's own passages.
        text = f"# Handbook {marker}\n\nThe {marker} office opens at nine."
        uploaded = run(
            admin,
            """mutation($i: UploadDocumentInput!) { uploadDocument(input: $i) { documentId } }""",
            i={
                "filename": f"handbook-{marker}.md",
                "contentBase64": base64.b64encode(text.encode()).decode(),
                "collection": "TENANT",
            },
        )["uploadDocument"]
        tenant.documents.append(uploaded["documentId"])

    owners = [u for u in users if u.role in CHATTING]
    quoted = " ".join(i for t in earlier for i in t.ids())
    for chat_spec in spec.chats:
        owner = owners[chat_spec.owner % len(owners)]
        chat_id = run(
            owner.client,
            "mutation($i: StartChatInput!) { startChat(input: $i) { chatId } }",
            i={"title": f"{chat_spec.title} {marker}"[-200:]},
        )["startChat"]["chatId"]
        chat = Chat(chat_id, owner.id)
        if tenant.documents and not tenant.chats:
            run(
                owner.client,
                "mutation($i: AttachKnowledgeInput!) { attachKnowledge(input: $i) { position } }",
                i={"chatId": chat_id, "documentIds": tenant.documents},
            )
        for text, quotes in chat_spec.messages:
            sent = run(
                owner.client,
                "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId } }",
                i={"chatId": chat_id, "content": f"{text} {marker} {quoted if quotes else ''}"},
            )["sendMessage"]
            chat.message_ids.append(sent["messageId"])
            if quotes:
                tenant.quoted |= {i for t in earlier for i in t.ids()}
            chat.user_messages += 1
        tenant.chats.append(chat)

    if spec.own_key:
        # The tenant's own key for a provider that fails at once: its reply leaves a circuit
        # breaker of the tenant's own behind in the model gateway.
        key = run(
            admin,
            """mutation($i: SetProviderKeyInput!) { setProviderKey(input: $i) {
                 key { fingerprint } } }""",
            i={"provider": BYOK_PROVIDER, "apiKey": f"sk-{marker}-tenant-own-key"},
        )["setProviderKey"]["key"]
        tenant.key_fingerprint = key["fingerprint"]
        run(
            admin,
            """mutation($i: UpdateTenantSettingsInput!) {
                 updateTenantSettings(input: $i) { position } }""",
            i={"defaultModel": "echo", "allowedModels": ["echo", BYOK_MODEL]},
        )
        chat_id = run(
            admin,
            "mutation($i: StartChatInput!) { startChat(input: $i) { chatId } }",
            i={"title": f"own key {marker}", "model": BYOK_MODEL},
        )["startChat"]["chatId"]
        sent = run(
            admin,
            "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId } }",
            i={"chatId": chat_id, "content": f"through our own key {marker}"},
        )["sendMessage"]
        tenant.chats.append(Chat(chat_id, users[0].id, [sent["messageId"]], 1))
    return tenant


def with_replies(tenant: Tenant, head: int) -> None:
    """Add the assistant replies' ids (made by the responder) to the tenant's secrets."""
    by_owner = {u.id: u for u in tenant.users}
    for chat in tenant.chats:
        nodes = run(
            by_owner[chat.owner].client,
            """query($id: ID!, $p: Int) { chat(id: $id, afterPosition: $p) {
                 messages(first: 200) { nodes { id } } } }""",
            id=chat.id,
            p=head,
        )["chat"]["messages"]["nodes"]
        chat.message_ids = sorted({*chat.message_ids, *(n["id"] for n in nodes)})


# -- checks ----------------------------------------------------------------------------------------


def leaked(payload: Any, forbidden: set[str], echoed: str = "") -> list[str]:
    """The forbidden strings in a response, except those the request itself carried."""
    text = json.dumps(payload, ensure_ascii=False)
    return sorted(s for s in forbidden if s in text and s not in echoed)


def batched(client: SessionClient, operation: str, fields: list[str]) -> Iterator[tuple[str, dict]]:
    """Aliased root fields in one request; yields each field with its part of the response."""
    aliased = [f"a{n}: {f}" for n, f in enumerate(fields)]
    body = client.raw(f"{operation} {{ {' '.join(aliased)} }}")
    for n, f in enumerate(fields):
        errors = [e for e in body.get("errors") or [] if e.get("path", [None])[0] == f"a{n}"]
        value = (body.get("data") or {}).get(f"a{n}")
        yield f, {"errors": errors, "value": value, "body": body}


# A failing non-null root field nulls `data` and may cancel its siblings, so only these nullable
# fields share a request.
NULLABLE = ("chatAt(", "auditLog(")


def assert_refused(client: SessionClient, operation: str, fields: list[str], who: str) -> None:
    shared = [f for f in fields if f.startswith(NULLABLE)]
    requests = [shared[n : n + 12] for n in range(0, len(shared), 12)]
    requests += [[f] for f in fields if f not in shared]
    # Refusals change nothing, so their order does not matter: send them side by side.
    with ThreadPoolExecutor(8) as pool:
        answered = pool.map(lambda part: list(batched(client, operation, part)), requests)
    for f, answer in itertools.chain.from_iterable(answered):
        codes = {e.get("extensions", {}).get("code") for e in answer["errors"]}
        assert answer["value"] is None and codes and codes <= DENIED, (
            f"{who}: `{f}` on a foreign id was not refused: {answer['body']}"
        )


def foreign_id_probes(
    foreign: list[Tenant], now: str, schema: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """Queries and mutations aimed at foreign ids, one root field each (those in `schema`)."""
    ids = [i for t in foreign for i in t.ids()]
    chats = [c.id for t in foreign for c in t.chats]
    users = [u.id for t in foreign for u in t.users]
    tenants = [t.id for t in foreign]
    api_keys = [k for t in foreign for k in t.api_keys]
    queries = [f'chat(id: "{i}") {{ id title }}' for i in ids]
    queries += [f'chatAt(id: "{i}", asOf: "{now}") {{ id title }}' for i in ids]
    queries += [f'auditLog(aggregateId: "{i}") {{ nodes {{ eventType }} }}' for i in ids]
    queries += [f'chat(id: "{i}") {{ messages {{ nodes {{ content }} }} }}' for i in chats]
    queries += [f'document(id: "{i}") {{ id title }}' for i in ids]
    queries += [f'chatKnowledge(chatId: "{i}") {{ tenantCollection }}' for i in ids]
    queries += [f'searchKnowledge(query: "handbook", documentIds: ["{i}"]) {{ text }}' for i in ids]
    mutations = []
    for i in ids:
        mutations += [
            f'reprocessDocument(input: {{documentId: "{i}"}}) {{ position }}',
            f'deleteDocument(input: {{documentId: "{i}"}}) {{ position }}',
            f'attachKnowledge(input: {{chatId: "{i}", documentIds: []}}) {{ position }}',
        ]
    for c in chats:
        mutations += [
            f'sendMessage(input: {{chatId: "{c}", content: "intrusion"}}) {{ messageId }}',
            f'renameChat(input: {{chatId: "{c}", title: "pwned"}}) {{ position }}',
            f'archiveChat(input: {{chatId: "{c}"}}) {{ position }}',
            f'stopGeneration(input: {{chatId: "{c}"}}) {{ requested }}',
            f'deleteChat(input: {{chatId: "{c}"}}) {{ position }}',
        ]
    for u in users:
        mutations += [
            f'changeUserRole(input: {{userId: "{u}", role: TENANT_ADMIN}}) {{ position }}',
            f'deactivateUser(input: {{userId: "{u}"}}) {{ position }}',
            f'eraseUser(input: {{userId: "{u}"}}) {{ position }}',
        ]
    mutations += [f'revokeApiKey(input: {{keyId: "{k}"}}) {{ position }}' for k in api_keys]
    for t in tenants:
        mutations += [
            f"""registerUser(input: {{email: "spy@spy.example", password: "{PASSWORD}",
                displayName: "spy", role: TENANT_ADMIN, tenantId: "{t}"}}) {{ userId }}""",
            f'deactivateTenant(input: {{tenantId: "{t}"}}) {{ position }}',
            f'renameTenant(input: {{tenantId: "{t}", name: "spied"}}) {{ position }}',
        ]
    mutations.append(
        f"""createTenant(input: {{name: "x", slug: "x-{now[:10]}", adminEmail: "a@x.example",
            adminPassword: "{PASSWORD}"}}) {{ tenantId }}"""
    )
    if schema is not None:
        queries = [q for q in queries if f"Query.{q.split('(')[0]}" in schema]
        mutations = [m for m in mutations if f"Mutation.{m.split('(')[0]}" in schema]
    return queries, mutations


def check_reads(
    tenant: Tenant, user: User, foreign: list[Tenant], head: int, schema: set[str]
) -> None:
    """Everything the user can read is their tenant's, and what they may see is there."""
    # Foreign ids that the tenant's own messages quote are the tenant's own text.
    forbidden = set().union(*(t.secrets() for t in foreign)) - tenant.quoted
    mine = [c for c in tenant.chats if user.role == "AUDITOR" or c.owner == user.id]
    visible = {c.id for c in mine}
    who = f"{user.role} of {tenant.slug}"
    today = datetime.now(UTC).date()
    answers = user.client.run(
        """query($p: Int, $from: Date!, $to: Date!, $mine: String!) {
             me(afterPosition: $p) { id tenantId email }
             tenant { id name slug modelSettings { systemPrompt } }
             chats(first: 20) { nodes { id title ownerId
               messages(first: 50) { nodes { id chatId content } } } }
             usage(from: $from, to: $to, groupBy: [DAY, USER, MODEL]) { userId userMessages }
             searchMessages(query: $mine, first: 50) { nodes { chatId messageId content
               chatTitle highlights chat { id ownerId } message { id content } } }
             documents(first: 50) { nodes { id title collection } }
             searchKnowledge(query: $mine, first: 20) { documentId title text }
             grounded: chats(first: 20) { nodes { messages(first: 50) { nodes {
               citations { documentId chunkId title text } } } } } }""",
        {
            "p": head,
            "from": str(today - timedelta(days=1)),
            "to": str(today + timedelta(days=1)),
            "mine": tenant.marker,
        },
    )
    assert not leaked(answers, forbidden), (who, leaked(answers, forbidden))
    assert answers["me"]["tenantId"] == answers["tenant"]["id"] == tenant.id, who
    assert {c["id"] for c in answers["chats"]["nodes"]} == visible, who
    for c in answers["chats"]["nodes"]:
        assert {m["chatId"] for m in c["messages"]["nodes"]} <= {c["id"]}, who
    users = {u.id for u in tenant.users}
    assert {r["userId"] for r in answers["usage"]} <= users, (who, answers["usage"])
    expected = sum(c.user_messages for c in (tenant.chats if user.role != "MEMBER" else mine))
    assert sum(r["userMessages"] for r in answers["usage"]) == expected, (who, answers["usage"])
    if "Query.documents" in schema:
        assert {d["id"] for d in answers["documents"]["nodes"]} == set(tenant.documents), who
        passages = answers["searchKnowledge"]
        assert {p["documentId"] for p in passages} <= set(tenant.documents), (who, passages)
        if tenant.documents:
            assert passages, f"{who}: the knowledge search finds nothing of their own"
    hits = answers["searchMessages"]["nodes"]
    assert {h["chatId"] for h in hits} <= visible, (who, hits)
    if any(c.message_ids for c in mine):
        assert hits, f"{who}: search finds nothing of their own, so it proves nothing"

    for other in foreign:
        # Another tenant's words and ids find nothing, whatever the filter.
        for words in (other.marker, other.id, *(c.id for c in other.chats)):
            found = user.client.run(
                """query($q: String!) { searchMessages(query: $q, first: 100) {
                     nodes { chatId content } } }""",
                {"q": words},
            )["searchMessages"]["nodes"]
            assert {h["chatId"] for h in found} <= visible, (who, words, found)
            assert not leaked(found, {other.marker}), (who, words, found)
            if "Query.searchKnowledge" in schema:
                passages = user.client.run(
                    """query($q: String!) { searchKnowledge(query: $q, first: 50) {
                         documentId text } }""",
                    {"q": words},
                )["searchKnowledge"]
                assert {p["documentId"] for p in passages} <= set(tenant.documents), (who, words)
                assert not leaked(passages, {other.marker}), (who, words, passages)
        for c in other.chats:
            try:
                found = user.client.run(
                    """query($c: ID!, $q: String!) { searchMessages(query: $q, chatId: $c) {
                         nodes { chatId content } } }""",
                    {"c": c.id, "q": other.marker},
                )["searchMessages"]["nodes"]
            except GraphQLFailed as e:
                assert set(e.codes) <= DENIED, (who, e.errors)
            else:
                assert found == [], (who, found)

    # Admin-only reads answer with the caller's tenant only, or refuse.
    admin_reads = [
        "{ modelGateway { deployments { deployment lastError } } }",
        "{ providerKeys { provider fingerprint last4 } }",
    ]
    if "Query.apiKeys" in schema:
        admin_reads.append("{ apiKeys { keyId name prefix last4 serviceAccountId } }")
    if "Query.oidcConfig" in schema:
        admin_reads.append("{ oidcConfig { issuer clientId allowedDomains } }")
    for query in admin_reads:
        body = user.client.raw(query)
        if user.role == "TENANT_ADMIN":
            assert not body.get("errors"), (who, body)
            assert not leaked(body, forbidden), (who, query, leaked(body, forbidden), body)
        else:
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (who, body)
    # The list of users: exactly the tenant's own for its admins and auditors, refused to
    # members; the list of every tenant is the platform admins' alone (none in this world).
    if "Query.users" in schema:
        body = user.client.raw(
            "query($p: Int) { users(first: 100, afterPosition: $p) { nodes { id tenantId } } }",
            {"p": head},
        )
        if user.role in ("TENANT_ADMIN", "AUDITOR"):
            assert not body.get("errors"), (who, body)
            assert not leaked(body, forbidden), (who, leaked(body, forbidden))
            listed = body["data"]["users"]["nodes"]
            assert {u["tenantId"] for u in listed} == {tenant.id}, (who, listed)
            assert {u["id"] for u in listed} >= {u.id for u in tenant.users}, (who, listed)
        else:
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (who, body)
    if "Query.tenants" in schema:
        body = user.client.raw("{ tenants(first: 100) { nodes { id slug } } }")
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (who, body)
    if user.role == "TENANT_ADMIN" and tenant.key_fingerprint:
        keys = user.client.run("{ providerKeys { fingerprint } }")["providerKeys"]
        assert keys == [{"fingerprint": tenant.key_fingerprint}], who

    # Auditors replay and audit their own tenant's chats (so the refusals below mean something).
    if user.role == "AUDITOR" and tenant.chats:
        now = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        own = user.client.run(
            """query($id: ID!, $t: DateTime!) { chatAt(id: $id, asOf: $t) { tenantId }
                 auditLog(aggregateId: $id) { nodes { eventType } } }""",
            {"id": tenant.chats[0].id, "t": now},
        )
        assert own["chatAt"]["tenantId"] == tenant.id and own["auditLog"]["nodes"], who


def check_sign_in_elsewhere(user: User, foreign: list[Tenant]) -> None:
    """A user's e-mail and password do not open another tenant, named by its slug."""
    for other in foreign:
        body = user.client.as_user("").raw(
            """mutation($i: LoginInput!) { login(input: $i) { accessToken } }""",
            {"i": {"tenant": other.slug, "email": user.email, "password": PASSWORD}},
        )
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body


def check_user(
    server: Server,
    tenant: Tenant,
    user: User,
    tenants: list[Tenant],
    head: int,
    now: str,
    schema: set[str],
) -> None:
    foreign = [t for t in tenants if t is not tenant]
    queries, mutations = foreign_id_probes(foreign, now, schema)
    who = f"{user.role} of {tenant.slug}"
    check_reads(tenant, user, foreign, head, schema)
    assert_refused(user.client, "query", queries, who)
    assert_refused(user.client, "mutation", mutations, who)
    check_sign_in_elsewhere(user, foreign)
    check_subscriptions(server, user, foreign, head)


def check_subscriptions(server: Server, user: User, foreign: list[Tenant], head: int) -> None:
    """chatEvents on foreign ids: NOT_FOUND, then complete, on one graphql-transport-ws socket."""
    ids = [i for t in foreign for i in t.ids()]
    if not ids:
        return
    url = server.url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        init = {"Authorization": f"Bearer {user.client.token}"}
        ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(ws.recv(10))["type"] == "connection_ack"
        query = """subscription($c: ID!, $p: Int) { chatEvents(chatId: $c, afterPosition: $p) {
                     __typename ... on MessageAdded { message { content } } } }"""
        for n, chat_id in enumerate(ids):
            payload = {"query": query, "variables": {"c": chat_id, "p": head}}
            ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
        pending = {str(n) for n in range(len(ids))}
        while pending:
            message = json.loads(ws.recv(10))
            assert message["type"] in ("next", "complete", "error"), message
            if message["type"] == "next":
                payload = message["payload"]
                codes = [e["extensions"]["code"] for e in payload.get("errors") or []]
                assert payload.get("data") is None and codes and set(codes) <= DENIED, message
            else:
                pending.discard(message["id"])


def observed(tenants: list[Tenant], head: int) -> dict[str, Any]:
    """Each tenant as its own users see it: what a refused mutation must leave unchanged."""
    state = {}
    for t in tenants:
        admin = t.users[0].client
        state[t.id] = run(
            admin,
            "query($p: Int) { tenant(afterPosition: $p) { name slug active "
            "defaultModel allowedModels modelSettings { systemPrompt } } "
            "providerKeys { fingerprint } "
            "documents(first: 50) { nodes { id status revision } } }",
            p=head,
        )
        for u in t.users:
            state[u.id] = run(u.client, "{ me { role active email } }")
        for c in t.chats:
            owner = next(u for u in t.users if u.id == c.owner)
            state[c.id] = run(
                owner.client,
                """query($id: ID!) { chat(id: $id) { title status
                messageCount messages(first: 200) { nodes { id content } } } }""",
                id=c.id,
            )
    return state


# -- the suite -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[tuple[Server, SessionClient]]:
    # Failed sign-ins to other tenants are part of the probes: no throttling of them here.
    env = {"PARLEY_LOGIN_FAILURES_PER_ADDRESS": "0", "PARLEY_LOGIN_FAILURES_PER_ACCOUNT": "0"}
    data_dir = tmp_path_factory.mktemp("isolation")
    with security_server(data_dir, postgres_url, redis_url, env) as s:
        yield s


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    # Each example builds a world through a real server: shrinking would take minutes. The
    # failing world is printed as drawn.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds)
def test_no_tenant_reads_changes_or_subscribes_to_another_tenants_data(
    world_server: tuple[Server, SessionClient], world: list[TenantSpec]
) -> None:
    server, root = world_server
    schema = set(root_fields(server))
    tenants: list[Tenant] = []
    for spec in world:
        tenants.append(build_tenant(root, spec, tenants, schema))
    head = server.settled_head()
    for t in tenants:
        with_replies(t, head)
    before = observed(tenants, head)
    now = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()

    # Every user of every tenant probes at once: refusals change nothing, so order is moot.
    with ThreadPoolExecutor(4) as pool:
        checks = [
            pool.submit(check_user, server, tenant, user, tenants, head, now, schema)
            for tenant in tenants
            for user in tenant.users
        ]
        for check in checks:
            check.result()

    assert server.settled_head() == head, "a refused mutation recorded something"
    assert observed(tenants, head) == before


def root_fields(server: Server) -> dict[str, GraphQLField]:
    body = SessionClient(server.url).raw(get_introspection_query())
    schema = build_client_schema(body["data"])
    roots = {
        "Query": schema.query_type,
        "Mutation": schema.mutation_type,
        "Subscription": schema.subscription_type,
    }
    return {
        f"{kind}.{name}": f
        for kind, root in roots.items()
        if root is not None
        for name, f in root.fields.items()
    }


def takes_an_id(type_: GraphQLInputType, seen: frozenset[str] = frozenset()) -> bool:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if isinstance(type_, GraphQLScalarType):
        return type_.name == "ID"
    if isinstance(type_, GraphQLInputObjectType) and type_.name not in seen:
        return any(takes_an_id(f.type, seen | {type_.name}) for f in type_.fields.values())
    return False


def test_every_root_field_is_probed(world_server: tuple[Server, SessionClient]) -> None:
    """New root fields fail here until the property above probes them."""
    server, _ = world_server
    fields = root_fields(server)
    with_ids = {n for n, f in fields.items() if any(takes_an_id(a.type) for a in f.args.values())}
    assert with_ids <= FOREIGN_ID_FIELDS, (
        f"root fields that take an id but are not probed with foreign ids: "
        f"{sorted(with_ids - FOREIGN_ID_FIELDS)}"
    )
    queries = {n.split(".", 1)[1] for n in fields if n.startswith("Query.")}
    assert queries <= READ_PROBES, f"queries whose answers are not checked: {queries - READ_PROBES}"
    others = {n for n in fields if not n.startswith("Query.")}
    unprobed = others - FOREIGN_ID_FIELDS - set(NO_FOREIGN_TARGET)
    assert not unprobed, f"mutations or subscriptions not probed: {sorted(unprobed)}"


def test_probes_name_the_fields_they_claim() -> None:
    """Each field listed as probed with foreign ids is really in the probes."""
    other = Tenant("t", "s", "m", [User(SessionClient(""), "u", "e", "MEMBER")], [Chat("c", "u")])
    other.api_keys.append("k")
    queries, mutations = foreign_id_probes([other], "2030-01-01T00:00:00+00:00")
    used = {f"Query.{q.split('(')[0]}" for q in queries}
    used |= {f"Mutation.{m.split('(')[0]}" for m in mutations}
    used |= {"Query.searchMessages", "Subscription.chatEvents"}  # check_reads, check_subscriptions
    assert used >= FOREIGN_ID_FIELDS, FOREIGN_ID_FIELDS - used
