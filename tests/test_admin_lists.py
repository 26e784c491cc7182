"""The admin console's lists through a real `parley serve`: `users` (a tenant's users, for its
admins and auditors, never another tenant's) and `tenants` (every tenant, for platform admins
only), cursor-paged; everyone else is FORBIDDEN."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.postgres import PostgresTarget
from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server, target_url
from tests.conftest import own_database

PASSWORD = "a-long-password-1"
PLATFORM_EMAIL = "root@platform.example"
USERS = """query($n: Int!, $a: String, $p: Int) { users(first: $n, after: $a, afterPosition: $p) {
    edges { cursor node { email } } pageInfo { hasNextPage endCursor }
    nodes { id tenantId email displayName role active } } }"""
TENANTS = """query($n: Int!, $a: String) { tenants(first: $n, after: $a) {
    edges { cursor node { slug } } pageInfo { hasNextPage endCursor }
    nodes { id name slug active modelSettings { systemPrompt } } } }"""
REGISTER = """mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"""
DEACTIVATE = """mutation($i: DeactivateUserInput!) { deactivateUser(input: $i) { position } }"""


@dataclass
class Org:
    slug: str
    admin: ApiClient
    auditor: ApiClient
    member: ApiClient
    emails: list[str]
    position: int


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[PostgresTarget]:
    with own_database(postgres_url) as target:
        yield target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: PostgresTarget) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("admin-lists"),
        {"PARLEY_DATABASE_URL": target_url(database)},
        args=("--workers", "1"),
    ).start()
    done = srv.cli("platform-admins", "create", "--email", PLATFORM_EMAIL, "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def root(server: Server) -> ApiClient:
    return ApiClient(server.url).login("platform", PLATFORM_EMAIL, PASSWORD)


def organisation(server: Server, prefix: str) -> Org:
    """A tenant with its admin, an auditor, two members (one deactivated)."""
    tenant = server.create_tenant(f"{prefix}-{uuid.uuid4().hex[:8]}", password=PASSWORD)
    slug = tenant["slug"]
    admin = ApiClient(server.url).login(slug, tenant["email"], PASSWORD)
    emails = [tenant["email"]]
    clients = {}
    for name, role in (("zoe", "AUDITOR"), ("bob", "MEMBER"), ("carl", "MEMBER")):
        email = f"{name}@{slug}.example"
        written = admin.run(
            REGISTER,
            {"i": {"email": email, "password": PASSWORD, "displayName": name, "role": role}},
        )["registerUser"]
        emails.append(email)
        clients[name] = written
    position = admin.run(DEACTIVATE, {"i": {"userId": clients["carl"]["userId"]}})[
        "deactivateUser"
    ]["position"]
    return Org(
        slug=slug,
        admin=admin,
        auditor=ApiClient(server.url).login(slug, f"zoe@{slug}.example", PASSWORD),
        member=ApiClient(server.url).login(slug, f"bob@{slug}.example", PASSWORD),
        emails=sorted(emails),
        position=position,
    )


@pytest.fixture(scope="module")
def acme(server: Server) -> Org:
    return organisation(server, "acme")


@pytest.fixture(scope="module")
def globex(server: Server) -> Org:
    return organisation(server, "globex")


def codes(call: object) -> list[str | None]:
    with pytest.raises(GraphQLFailed) as failure:
        call()  # type: ignore[operator]
    return failure.value.codes


def all_pages(client: ApiClient, query: str, field: str, first: int, **variables: object) -> list:
    """Every node, following endCursor; the cursors of the edges agree with it."""
    nodes, after = [], None
    while True:
        page = client.run(query, {"n": first, "a": after, **variables})[field]
        assert len(page["nodes"]) <= first
        assert [e["cursor"] for e in page["edges"]][-1:] == (
            [page["pageInfo"]["endCursor"]] if page["nodes"] else []
        )
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_a_tenant_admin_lists_the_tenants_users_by_email_inactive_ones_included(
    acme: Org,
) -> None:
    users = acme.admin.run(USERS, {"n": 50, "p": acme.position})["users"]["nodes"]
    assert [u["email"] for u in users] == acme.emails
    by_email = {u["email"]: u for u in users}
    assert by_email[f"carl@{acme.slug}.example"]["active"] is False
    assert by_email[f"bob@{acme.slug}.example"] | {"id": None} == {
        "id": None,
        "tenantId": users[0]["tenantId"],
        "email": f"bob@{acme.slug}.example",
        "displayName": "bob",
        "role": "MEMBER",
        "active": True,
    }
    assert {u["role"] for u in users} == {"TENANT_ADMIN", "AUDITOR", "MEMBER"}


def test_users_are_cursor_paged_each_once(acme: Org) -> None:
    acme.admin.run(USERS, {"n": 1, "p": acme.position})  # the read models have every user
    for first in (1, 2, 3):
        paged = all_pages(acme.admin, USERS, "users", first)
        assert [u["email"] for u in paged] == acme.emails, first


def test_auditors_list_users_too(acme: Org) -> None:
    users = acme.auditor.run(USERS, {"n": 50, "p": acme.position})["users"]["nodes"]
    assert [u["email"] for u in users] == acme.emails


def test_members_may_not_list_users(acme: Org) -> None:
    assert codes(lambda: acme.member.run(USERS, {"n": 50})) == ["FORBIDDEN"]


def test_a_tenant_admin_never_sees_another_tenants_users(acme: Org, globex: Org) -> None:
    for org, other in ((acme, globex), (globex, acme)):
        users = all_pages(org.admin, USERS, "users", 2, p=max(acme.position, globex.position))
        emails = [u["email"] for u in users]
        assert emails == org.emails
        assert not set(emails) & set(other.emails)
        assert len({u["tenantId"] for u in users}) == 1


def test_a_cursor_from_another_tenant_pages_only_your_own_tenant(acme: Org, globex: Org) -> None:
    foreign = globex.admin.run(USERS, {"n": 1, "p": globex.position})["users"]["pageInfo"]
    users = acme.admin.run(USERS, {"n": 50, "a": foreign["endCursor"], "p": acme.position})
    assert {u["email"].split("@")[1] for u in users["users"]["nodes"]} <= {f"{acme.slug}.example"}


def test_bad_cursors_and_page_sizes_are_bad_user_input(acme: Org) -> None:
    for variables in ({"n": 50, "a": "not-a-cursor"}, {"n": 0}, {"n": 101}):
        assert codes(lambda v=variables: acme.admin.run(USERS, v)) == ["BAD_USER_INPUT"]
    chat_cursor = "Y2hhdDox"  # a `chats` cursor is not a `users` one
    assert codes(lambda: acme.admin.run(USERS, {"n": 5, "a": chat_cursor})) == ["BAD_USER_INPUT"]


def test_platform_admins_list_every_tenant_by_slug(root: ApiClient, acme: Org, globex: Org) -> None:
    tenants = root.run(TENANTS, {"n": 100})["tenants"]["nodes"]
    slugs = [t["slug"] for t in tenants]
    assert slugs == sorted(slugs)
    assert {acme.slug, globex.slug, "platform"} <= set(slugs)
    assert all(t["modelSettings"] is None and t["active"] for t in tenants)
    assert [t["slug"] for t in all_pages(root, TENANTS, "tenants", 1)] == slugs


def test_only_platform_admins_list_tenants(acme: Org) -> None:
    for client in (acme.admin, acme.auditor, acme.member):
        assert codes(lambda c=client: c.run(TENANTS, {"n": 10})) == ["FORBIDDEN"]


def test_listing_needs_a_signed_in_caller(server: Server) -> None:
    anonymous = ApiClient(server.url)
    for query in (USERS, TENANTS):
        assert codes(lambda q=query: anonymous.run(q, {"n": 5})) == ["UNAUTHENTICATED"]


RENAME = """mutation($i: RenameTenantInput!) { renameTenant(input: $i) { tenantId position } }"""


def test_platform_admins_rename_any_tenant_and_tenant_admins_only_their_own(
    root: ApiClient, acme: Org, globex: Org
) -> None:
    directory = {t["slug"]: t for t in root.run(TENANTS, {"n": 100})["tenants"]["nodes"]}
    globex_id = directory[globex.slug]["id"]
    renamed = root.run(RENAME, {"i": {"tenantId": globex_id, "name": "Globex Renamed"}})
    assert renamed["renameTenant"]["tenantId"] == globex_id
    seen = globex.admin.run(
        "query($p: Int) { tenant(afterPosition: $p) { name } }",
        {"p": renamed["renameTenant"]["position"]},
    )
    assert seen["tenant"]["name"] == "Globex Renamed"
    # A tenant admin renames their own tenant, with or without naming it, and no other.
    acme_id = directory[acme.slug]["id"]
    acme.admin.run(RENAME, {"i": {"tenantId": acme_id, "name": "Acme Own"}})
    assert codes(
        lambda: acme.admin.run(RENAME, {"i": {"tenantId": globex_id, "name": "Hijacked"}})
    ) == ["FORBIDDEN"]
    assert codes(lambda: acme.member.run(RENAME, {"i": {"name": "Members cannot"}})) == [
        "FORBIDDEN"
    ]
    names = {t["slug"]: t["name"] for t in root.run(TENANTS, {"n": 100})["tenants"]["nodes"]}
    assert names[globex.slug] == "Globex Renamed"
