"""OpenID Connect sign-in per tenant: a real `parley serve` (PostgreSQL and Redis as deployed)
and a local issuer started here (tests/oidc_issuer.py), the browser played by httpx following
the redirects. Loopback only."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from api.runtime import Runtime
from commands.bus import MessageBus
from commands.messages import ConfigureOidc, CreateTenant, ResealOidcSecret
from domain.actor import Actor
from domain.user import Role
from infra.identity.oidc import InvalidIdToken, Issuers, pkce_pair, s256, validate_id_token
from infra.identity.oidc_sign_ins import MemorySignInStore
from infra.postgres import PostgresTarget
from queries.tenant_settings import oidc_client
from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server, target_url
from tests.conftest import fresh_database
from tests.oidc_issuer import Client, OidcIssuer

APP = "http://127.0.0.1:9/app/signed-in"
"""The client application's landing page (never contacted: the test reads the redirect)."""
PLATFORM_EMAIL = "root@platform.example"
PLATFORM_PASSWORD = "platform-password-123"
CONFIGURE = """mutation($i: ConfigureOidcInput!) { configureOidc(input: $i) { position
    config { issuer clientId hasClientSecret allowedDomains autoProvisionRole redirectUris
             loginPath callbackPath } } }"""
CONFIG = """query { oidcConfig { issuer clientId hasClientSecret allowedDomains autoProvisionRole
    redirectUris loginPath callbackPath } }"""
ME = "query($p: Int) { me(afterPosition: $p) { email role displayName } }"

API_PROCESSES = 2


@dataclass
class Database:
    target: PostgresTarget


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[Database]:
    target = fresh_database(postgres_url)
    yield Database(target)
    with psycopg.connect(replace(target, dbname="postgres").conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database: Database, redis_url: str
) -> Iterator[Server]:
    """Two API processes: a sign-in may start on one and land on the other (sign-ins in
    progress live in Redis)."""
    srv = Server(
        Path(tmp_path_factory.mktemp("oidc")),
        {
            "PARLEY_DATABASE_URL": target_url(database.target),
            "PARLEY_READER_DATABASE_URL": target_url(
                replace(database.target, user="parley_reader", password="")
            ),
            "PARLEY_REDIS_URL": redis_url,
        },
        args=("--workers", str(API_PROCESSES)),
    ).start()
    done = srv.cli(
        "platform-admins", "create", "--email", PLATFORM_EMAIL, "--password", PLATFORM_PASSWORD
    )
    assert done.returncode == 0, done.stderr
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def root(server: Server) -> ApiClient:
    return ApiClient(server.url).login("platform", PLATFORM_EMAIL, PLATFORM_PASSWORD)


@dataclass
class OidcTenant:
    slug: str
    admin: ApiClient
    admin_email: str
    client: Client


def oidc_tenant(
    server: Server,
    root: ApiClient,
    issuer: OidcIssuer,
    *,
    email: str | None = None,
    allowed_domains: list[str] | None = None,
    auto_provision_role: str | None = None,
    alg: str = "RS256",
    secret: str | None = "",
    redirect_uris: list[str] | None = None,
) -> OidcTenant:
    """A new tenant whose admin configured sign-in through `issuer`, where a new client signs in
    `email` (default: the tenant admin's address); finished sign-ins may return to APP (default)
    or to `redirect_uris`."""
    slug = f"o-{uuid.uuid4().hex[:10]}"
    admin_email, password = f"admin@{slug}.example", "admin-password-123"
    root.run(
        """mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenantId } }""",
        {"i": {"name": slug, "slug": slug, "adminEmail": admin_email, "adminPassword": password}},
    )
    admin = ApiClient(server.url).login(slug, admin_email, password)
    client = issuer.register(
        Client(
            client_id=f"parley-{slug}",
            secret=secrets.token_urlsafe(24) if secret == "" else secret,
            redirect_uris=[f"{server.url}/auth/oidc/{slug}/callback"],
            email=email or admin_email,
            alg=alg,
        )
    )
    admin.run(
        CONFIGURE,
        {
            "i": {
                "issuer": issuer.url,
                "clientId": client.client_id,
                "clientSecret": client.secret,
                "allowedDomains": allowed_domains,
                "autoProvisionRole": auto_provision_role,
                "redirectUris": redirect_uris or [APP],
            }
        },
    )
    return OidcTenant(slug, admin, admin_email, client)


@dataclass
class Browser:
    """What a browser went through: the pages it was sent to, and where it ended."""

    http: httpx.Client
    visited: list[str]
    last: httpx.Response
    redirect_uri: str = APP

    @property
    def landed(self) -> dict[str, str]:
        """The query the client application's page received."""
        location = self.last.headers["location"]
        assert location.startswith(f"{self.redirect_uri}?"), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def error(self) -> dict[str, str]:
        return dict(self.last.json()["error"])


def sign_in(
    server: Server,
    slug: str,
    *,
    client_state: str | None = "app-state-1",
    client_challenge: str | None = None,
    edit_authorize: dict[str, str] | None = None,
    redirect_uri: str = APP,
) -> Browser:
    """Start at Parley's login page and follow the redirects (issuer, callback) until the browser
    would leave for the client application (`redirect_uri`), or an answer is not a redirect."""
    params = {"redirect_uri": redirect_uri}
    if client_state is not None:
        params["state"] = client_state
    if client_challenge is not None:
        params |= {"code_challenge": client_challenge, "code_challenge_method": "S256"}
    http = httpx.Client(timeout=10)
    url = f"{server.url}/auth/oidc/{slug}/login?{urlencode(params)}"
    visited: list[str] = []
    while True:
        visited.append(url)
        r = http.get(url)
        if not r.is_redirect or r.headers["location"].startswith(f"{redirect_uri}?"):
            return Browser(http, visited, r, redirect_uri)
        url = r.headers["location"]
        if edit_authorize and url.startswith(f"{server.url}") is False and "/authorize" in url:
            parts = urlsplit(url)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()} | edit_authorize
            url = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def exchange(
    server: Server, slug: str, code: str, verifier: str | None = None, **headers: str
) -> httpx.Response:
    body = {"code": code} | ({"code_verifier": verifier} if verifier else {})
    return httpx.post(
        f"{server.url}/auth/oidc/{slug}/token", json=body, headers=headers, timeout=10
    )


def signed_in(server: Server, tokens: dict) -> dict:
    user = ApiClient(server.url, tokens["accessToken"])
    return dict(user.run(ME, {"p": tokens["position"]})["me"])


# -- the flow end to end ---------------------------------------------------------------------


def test_an_existing_user_signs_in_through_the_issuer_and_gets_parleys_token_pair(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    browser = sign_in(server, t.slug)
    authorize = urlsplit(browser.visited[1])
    sent = parse_qs(authorize.query)
    assert authorize.path == "/authorize" and sent["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(sent)
    assert browser.last.status_code == 303
    landed = browser.landed
    assert landed["state"] == "app-state-1" and set(landed) == {"code", "state"}
    r = exchange(server, t.slug, landed["code"])
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    tokens = r.json()
    assert tokens["tokenType"] == "Bearer" and tokens["user"]["email"] == t.admin_email
    assert signed_in(server, tokens) == {
        "email": t.admin_email,
        "role": "TENANT_ADMIN",
        "displayName": "Administrator",
    }
    refreshed = ApiClient(server.url).run(
        "mutation($i: RefreshTokenInput!) { refreshToken(input: $i) { accessToken } }",
        {"i": {"refreshToken": tokens["refreshToken"]}},
    )
    assert refreshed["refreshToken"]["accessToken"]
    # The client authenticated to the token endpoint with the secret, and proved PKCE.
    last = issuer.token_requests[-1]
    assert "client_secret" not in last and len(last["code_verifier"]) >= 43


def test_es256_id_tokens_and_a_client_bound_one_time_code(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer, alg="ES256")
    verifier, challenge = pkce_pair()
    code = sign_in(server, t.slug, client_challenge=challenge).landed["code"]
    assert exchange(server, t.slug, code, "a" * 43).status_code == 401  # and the code is spent
    assert exchange(server, t.slug, code, verifier).status_code == 401
    code = sign_in(server, t.slug, client_challenge=challenge).landed["code"]
    r = exchange(server, t.slug, code, verifier)
    assert r.status_code == 200, r.text
    assert signed_in(server, r.json())["email"] == t.admin_email


def test_a_pkce_mismatch_is_refused_by_the_issuer(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    _, someone_elses = pkce_pair()
    browser = sign_in(server, t.slug, edit_authorize={"code_challenge": someone_elses})
    assert browser.last.status_code == 401
    assert browser.error()["code"] == "UNAUTHENTICATED"
    assert "invalid_grant" in browser.error()["message"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tamper": True}, "signature"),
        ({"claims": {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}}, "expired"),
        ({"claims": {"aud": "another-client"}}, "another client"),
        ({"claims": {"nonce": "a-nonce-from-another-sign-in"}}, "nonce"),
        ({"claims": {"iss": "https://issuer.example"}}, "another issuer"),
        ({"email_verified": False}, "not verified"),
    ],
    ids=["tampered", "expired", "wrong-audience", "wrong-nonce", "wrong-issuer", "unverified"],
)
def test_an_id_token_that_does_not_prove_the_sign_in_is_refused(
    server: Server, root: ApiClient, issuer: OidcIssuer, change: dict, reason: str
) -> None:
    t = oidc_tenant(server, root, issuer)
    for name, value in change.items():
        setattr(t.client, name, value)
    browser = sign_in(server, t.slug)
    assert browser.last.status_code == 401, browser.last.text
    assert browser.error()["code"] == "UNAUTHENTICATED"
    assert reason in browser.error()["message"]


def test_a_replayed_callback_or_code_is_refused(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    browser = sign_in(server, t.slug)
    code = browser.landed["code"]
    callback = browser.visited[-1]
    again = browser.http.get(callback)
    assert again.status_code == 400 and "already used" in again.json()["error"]["message"]
    assert exchange(server, t.slug, code).status_code == 200
    assert exchange(server, t.slug, code).status_code == 401


def test_a_callback_in_another_browser_is_refused(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    http = httpx.Client(timeout=10)
    start = http.get(f"{server.url}/auth/oidc/{t.slug}/login", params={"redirect_uri": APP})
    callback = http.get(start.headers["location"]).headers["location"]
    elsewhere = httpx.get(callback, timeout=10)  # no cookie: not the browser that started it
    assert elsewhere.status_code == 400 and "another browser" in elsewhere.text


def test_a_redirect_uri_the_tenant_did_not_list_is_refused(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    r = httpx.get(
        f"{server.url}/auth/oidc/{t.slug}/login",
        params={"redirect_uri": "https://attacker.example/steal"},
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_USER_INPUT"


# -- who may sign in -----------------------------------------------------------------------------


def test_an_unknown_user_is_refused_without_auto_provisioning(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    slug_domain = f"{uuid.uuid4().hex[:8]}.example"
    t = oidc_tenant(server, root, issuer, email=f"stranger@{slug_domain}")
    browser = sign_in(server, t.slug)
    assert browser.last.status_code == 401
    assert "no user" in browser.error()["message"]


def test_an_unknown_user_of_an_allowed_domain_is_provisioned_with_the_configured_role(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    domain = f"acme-{uuid.uuid4().hex[:8]}.example"
    t = oidc_tenant(
        server,
        root,
        issuer,
        email=f"new.hire@{domain}",
        allowed_domains=[domain],
        auto_provision_role="AUDITOR",
    )
    for _ in range(2):  # created at the first sign-in, found at the second
        r = exchange(server, t.slug, sign_in(server, t.slug).landed["code"])
        assert r.status_code == 200, r.text
        assert signed_in(server, r.json()) == {
            "email": f"new.hire@{domain}",
            "role": "AUDITOR",
            "displayName": "Test User",
        }
    # Nobody knows the password Parley gave the user.
    with pytest.raises(GraphQLFailed):
        ApiClient(server.url).login(t.slug, f"new.hire@{domain}", "")


def test_a_user_of_a_domain_that_is_not_allowed_is_refused(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(
        server,
        root,
        issuer,
        email="someone@elsewhere.example",
        allowed_domains=["acme.example"],
        auto_provision_role="MEMBER",
    )
    browser = sign_in(server, t.slug)
    assert browser.last.status_code == 403
    assert browser.error() == {
        "code": "FORBIDDEN",
        "message": "users of elsewhere.example may not sign in to this tenant",
    }


# -- keys and secrets --------------------------------------------------------------------------


def test_a_key_rotation_at_the_issuer_refetches_its_keys_once(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    assert exchange(server, t.slug, sign_in(server, t.slug).landed["code"]).status_code == 200
    issuer.rotate()
    fetches = issuer.jwks_fetches
    r = exchange(server, t.slug, sign_in(server, t.slug).landed["code"])
    assert r.status_code == 200, r.text
    assert issuer.jwks_fetches >= fetches + 1  # the new key was unknown: fetched
    for _ in range(6):
        assert exchange(server, t.slug, sign_in(server, t.slug).landed["code"]).status_code == 200
    # Each API process fetches the new keys once at most, then uses them from its cache.
    assert issuer.jwks_fetches <= fetches + API_PROCESSES


def test_the_client_secret_never_appears_in_any_answer_or_in_the_log(
    server: Server, root: ApiClient, issuer: OidcIssuer, database: Database
) -> None:
    secret = "oidc-secret-" + secrets.token_hex(16)
    t = oidc_tenant(server, root, issuer, secret=secret)
    answers = [
        t.admin.raw(
            CONFIGURE,
            {"i": {"issuer": issuer.url, "clientId": t.client.client_id, "redirectUris": [APP]}},
        ),
        t.admin.raw(CONFIG),
        t.admin.raw("query { tenant { name slug } }"),
    ]
    config = answers[1]["data"]["oidcConfig"]
    assert config["hasClientSecret"] is True  # kept: same issuer and client
    assert config["callbackPath"] == f"/auth/oidc/{t.slug}/callback"
    browser = sign_in(server, t.slug)
    answers.append(exchange(server, t.slug, browser.landed["code"]).json())
    assert browser.landed["code"] and secret not in browser.last.text
    assert all(secret not in json.dumps(a) for a in answers)
    with psycopg.connect(database.target.conninfo()) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM parley_events WHERE position(%s in state) > 0", (secret.encode(),)
        ).fetchone()
    assert stored == (0,)


def test_only_tenant_admins_configure_oidc_and_only_sound_settings(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = oidc_tenant(server, root, issuer)
    base = {"issuer": issuer.url, "clientId": "c", "redirectUris": [APP]}
    bad = [
        {**base, "issuer": "http://issuer.example"},
        {**base, "redirectUris": ["javascript:alert(1)"]},
        {**base, "redirectUris": []},
        {**base, "autoProvisionRole": "MEMBER"},  # without allowed domains
        {**base, "autoProvisionRole": "TENANT_ADMIN", "allowedDomains": ["acme.example"]},
    ]
    for value in bad:
        with pytest.raises(GraphQLFailed) as e:
            t.admin.run(CONFIGURE, {"i": value})
        assert e.value.codes == ["BAD_USER_INPUT"], value
    member_email = f"member@{t.slug}.example"
    t.admin.run(
        """mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }""",
        {"i": {"email": member_email, "password": "member-password-1", "displayName": "M"}},
    )
    member = ApiClient(server.url).login(t.slug, member_email, "member-password-1")
    with pytest.raises(GraphQLFailed) as e:
        member.run(CONFIGURE, {"i": base})
    assert e.value.codes == ["FORBIDDEN"]
    with pytest.raises(GraphQLFailed) as e:
        member.run(CONFIG)
    assert e.value.codes == ["FORBIDDEN"]
    assert (
        t.admin.run("mutation { removeOidc { config { issuer } } }")["removeOidc"]["config"] is None
    )
    assert t.admin.run(CONFIG)["oidcConfig"] is None
    r = httpx.get(f"{server.url}/auth/oidc/{t.slug}/login", params={"redirect_uri": APP})
    assert r.status_code == 404


# -- ID token validation in process --------------------------------------------------------------


async def test_unsigned_and_symmetric_id_tokens_are_refused(issuer: OidcIssuer) -> None:
    client = issuer.register(
        Client(client_id="direct", secret=None, redirect_uris=[], email="a@b.example")
    )
    issuers = Issuers(cache_seconds=60, timeout_seconds=5)
    discovery = await issuers.discover(issuer.url)
    good = issuer.id_token(client, "n-1")
    claims = jwt.decode(good, options={"verify_signature": False})
    jwks = issuer.jwks()["keys"]
    public_pem = jwt.PyJWK(next(k for k in jwks if k["alg"] == "RS256")).key
    unsigned = jwt.encode(claims, None, algorithm="none")
    # The classic confusion: HS256 "signed" with the issuer's public key as the secret.
    pem = public_pem.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.kid("RS256")}
    confused = _hs256(header, claims, pem)
    for token in (unsigned, confused):
        with pytest.raises(InvalidIdToken, match="not accepted"):
            await issuers.verify_id_token(discovery, token, client_id="direct", nonce="n-1")
    identity = await issuers.verify_id_token(discovery, good, client_id="direct", nonce="n-1")
    assert identity.email == "a@b.example"


def test_an_id_token_for_several_audiences_needs_parley_as_authorized_party() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = ECKey.import_key(private.public_key())
    now = int(time.time())
    claims = {
        "iss": "https://issuer.example",
        "sub": "s",
        "aud": ["parley", "another-app"],
        "iat": now,
        "exp": now + 60,
        "nonce": "n",
        "email": "a@b.example",
        "email_verified": True,
    }
    check = {"issuer": "https://issuer.example", "client_id": "parley", "nonce": "n"}
    without_azp = jwt.encode(claims, private, algorithm="ES256")
    with pytest.raises(InvalidIdToken, match="azp"):
        validate_id_token(without_azp, key, "ES256", **check)
    with_azp = jwt.encode({**claims, "azp": "parley"}, private, algorithm="ES256")
    assert validate_id_token(with_azp, key, "ES256", **check).email == "a@b.example"


def test_sign_ins_in_progress_are_single_use_and_expire() -> None:
    store = MemorySignInStore(max_entries=2)
    store.put("a", {"n": 1}, 60)
    store.put("b", {"n": 2}, 0.01)
    assert store.take("a") == {"n": 1} and store.take("a") is None
    time.sleep(0.02)
    assert store.take("b") is None


def _hs256(header: dict, claims: dict, secret: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_a_master_key_rotation_reseals_the_client_secret(runtime: Runtime) -> None:
    from infra.identity.master_key import MasterKey

    h = runtime.bus
    slug = f"r-{uuid.uuid4().hex[:10]}"
    created = h.handle(
        CreateTenant(name="R", slug=slug, admin_email=f"a@{slug}.example", admin_password="a" * 12)
    )
    admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
    old, new = os.urandom(32), os.urandom(32)
    rotating = MessageBus(h.store, master_key=MasterKey(new, [old]))
    MessageBus(h.store, master_key=MasterKey(old)).handle(
        ConfigureOidc(
            issuer="https://login.example",
            client_id="parley",
            client_secret="rotate-me",
            redirect_uris=[APP],
        ),
        admin,
    )
    assert rotating.handle(ResealOidcSecret(tenant_id=created.tenant_id)) == 1
    assert rotating.handle(ResealOidcSecret(tenant_id=created.tenant_id)) == 0
    assert oidc_client(h.store, MasterKey(new), slug).client_secret == "rotate-me"


# -- Parley's own web client ---------------------------------------------------------------------


@dataclass
class Page:
    """Parley's web client (web/src/pages/SignInPage.tsx) in a browser: requests from Parley's
    own origin, with the cookies Parley set. By hand: httpx's jar would not send Secure cookies
    over http://127.0.0.1 (browsers do: loopback is a secure context)."""

    server: Server
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def landing(self) -> str:
        """Where the client asks the sign-in to come back: `${location.origin}/signed-in`."""
        return f"{self.server.url}/signed-in"

    def start_oidc(self, slug: str, verifier: str) -> Browser:
        """startOidc: the page's own state and S256 challenge, followed through the issuer."""
        return sign_in(
            self.server,
            slug,
            client_state="page-state-1",
            client_challenge=s256(verifier),
            redirect_uri=self.landing,
        )

    def post(self, path: str, body: dict | None = None, *, csrf: bool = False) -> httpx.Response:
        headers = {"Origin": self.server.url}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if csrf:
            headers["X-CSRF-Token"] = self.cookies.get("parley_csrf", "")
        r = httpx.post(f"{self.server.url}{path}", json=body, headers=headers, timeout=10)
        self.cookies |= {c.name: c.value for c in r.cookies.jar}
        return r


def web_client_tenant(server: Server, root: ApiClient, issuer: OidcIssuer) -> OidcTenant:
    return oidc_tenant(server, root, issuer, redirect_uris=[Page(server).landing])


def test_the_web_client_signs_in_through_the_issuer_into_a_cookie_session_that_refreshes(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = web_client_tenant(server, root, issuer)
    page = Page(server)
    verifier, _ = pkce_pair()
    browser = page.start_oidc(t.slug, verifier)
    assert browser.last.status_code == 303, browser.last.text
    landed = browser.landed
    assert set(landed) == {"code", "state"} and landed["state"] == "page-state-1"
    r = page.post(
        "/auth/session/oidc", {"tenant": t.slug, "code": landed["code"], "codeVerifier": verifier}
    )
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert set(tokens) == {"accessToken", "expiresIn", "user", "position"}
    assert tokens["user"]["email"] == t.admin_email and tokens["user"]["role"] == "TENANT_ADMIN"
    cookies = {c.name: c for c in r.cookies.jar}
    refresh = cookies["parley_refresh"]
    assert refresh.path == "/auth/session" and refresh.secure
    assert refresh.has_nonstandard_attr("HttpOnly") and refresh.value not in r.text
    assert cookies["parley_csrf"].path == "/" and cookies["parley_csrf"].secure
    assert signed_in(server, tokens)["email"] == t.admin_email
    # The page's next step: a refresh through the cookie (and its CSRF token).
    refreshed = page.post("/auth/session/refresh", csrf=True)
    assert refreshed.status_code == 200, refreshed.text
    assert page.cookies["parley_refresh"] != refresh.value
    assert signed_in(server, refreshed.json())["email"] == t.admin_email


def test_a_page_asking_for_json_gets_the_issuers_address_or_a_typed_refusal(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    """The web client starts the sign-in with fetch (Accept: application/json): the address to
    go to and the cookie that binds the sign-in to the browser, or a refusal it can show."""
    t = web_client_tenant(server, root, issuer)
    _, challenge = pkce_pair()
    params = {
        "redirect_uri": Page(server).landing,
        "state": "page-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    json_accept = {"Accept": "application/json"}
    r = httpx.get(
        f"{server.url}/auth/oidc/{t.slug}/login", params=params, headers=json_accept, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    address = r.json()["authorizationUrl"]
    assert address.startswith(issuer.url) and "code_challenge_method=S256" in address
    assert "parley_oidc" in r.cookies
    without = httpx.get(
        f"{server.url}/auth/oidc/no-such-{t.slug}/login",
        params=params,
        headers=json_accept,
        timeout=10,
    )
    assert without.status_code == 404 and without.json()["error"]["code"] == "NOT_FOUND"


def test_a_code_challenge_without_its_method_is_refused(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = web_client_tenant(server, root, issuer)
    _, challenge = pkce_pair()
    params = {"redirect_uri": Page(server).landing, "code_challenge": challenge}
    r = httpx.get(f"{server.url}/auth/oidc/{t.slug}/login", params=params, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_USER_INPUT"
    assert "code_challenge_method" in r.json()["error"]["message"]


def test_the_web_clients_code_with_a_wrong_verifier_is_refused_and_spent(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = web_client_tenant(server, root, issuer)
    page = Page(server)
    verifier, _ = pkce_pair()
    code = page.start_oidc(t.slug, verifier).landed["code"]
    body = {"tenant": t.slug, "code": code, "codeVerifier": pkce_pair()[0]}
    wrong = page.post("/auth/session/oidc", body)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "UNAUTHENTICATED"
    assert "code_verifier" in wrong.json()["error"]["message"]
    assert "set-cookie" not in wrong.headers and page.cookies == {}
    again = page.post("/auth/session/oidc", {**body, "codeVerifier": verifier})
    assert again.status_code == 401  # one try per code: a guessed verifier gets no second one


def test_the_token_endpoint_refuses_parleys_own_pages_and_leaves_the_code_unused(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = web_client_tenant(server, root, issuer)
    page = Page(server)
    verifier, _ = pkce_pair()
    code = page.start_oidc(t.slug, verifier).landed["code"]
    r = exchange(server, t.slug, code, verifier, Origin=server.url)
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert "/auth/session/oidc" in r.json()["error"]["message"]
    assert "refreshToken" not in r.text
    session = page.post(
        "/auth/session/oidc", {"tenant": t.slug, "code": code, "codeVerifier": verifier}
    )
    assert session.status_code == 200, session.text


@pytest.mark.parametrize("origin", [None, "https://app.example"], ids=["no-origin", "other-origin"])
def test_the_token_endpoint_still_answers_native_apps_and_other_origins(
    server: Server, root: ApiClient, issuer: OidcIssuer, origin: str | None
) -> None:
    t = oidc_tenant(server, root, issuer)
    verifier, challenge = pkce_pair()
    code = sign_in(server, t.slug, client_challenge=challenge).landed["code"]
    r = exchange(server, t.slug, code, verifier, **({"Origin": origin} if origin else {}))
    assert r.status_code == 200, r.text
    assert r.json()["refreshToken"]


def test_a_new_sign_in_through_the_issuer_ends_the_one_the_browsers_cookie_held(
    server: Server, root: ApiClient, issuer: OidcIssuer
) -> None:
    t = web_client_tenant(server, root, issuer)
    page = Page(server)
    for _ in range(2):
        verifier, _ = pkce_pair()
        code = page.start_oidc(t.slug, verifier).landed["code"]
        before = dict(page.cookies)
        body = {"tenant": t.slug, "code": code, "codeVerifier": verifier}
        assert page.post("/auth/session/oidc", body).status_code == 200
    replaced = Page(server, before)
    assert replaced.post("/auth/session/refresh", csrf=True).status_code == 401
    assert page.post("/auth/session/refresh", csrf=True).status_code == 200
