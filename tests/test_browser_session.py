"""Browser sessions through a real `parley serve`: the refresh token in an HttpOnly cookie (never
in a body), a double-submit CSRF token, the Origin check, rotation with reuse detection, logout,
password change and the typed errors (api/browser_session.py, docs/auth.md)."""

import json
from collections.abc import Iterator
from http.cookies import Morsel, SimpleCookie
from typing import Any

import httpx
import pytest

from infra.postgres import PostgresTarget
from testbed.client import ApiClient
from testbed.processes import Server, target_url
from tests.conftest import own_database

APP = "https://app.example"
EVIL = "https://evil.example"
PASSWORD = "admin-password-123"
ME = "query($p: Int) { me(afterPosition: $p) { email role } }"


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[PostgresTarget]:
    with own_database(postgres_url) as target:
        yield target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: PostgresTarget) -> Iterator[Server]:
    # One API process: the failed-password buckets are counted where the test can predict them.
    srv = Server(
        tmp_path_factory.mktemp("browser-session"),
        {
            "PARLEY_DATABASE_URL": target_url(database),
            "PARLEY_CORS_ALLOWED_ORIGINS": json.dumps([APP]),
            "PARLEY_LOGIN_FAILURES_PER_ACCOUNT": "3",
        },
        args=("--workers", "1"),
    ).start()
    yield srv
    srv.stop()


def set_cookies(response: httpx.Response) -> dict[str, "Morsel[str]"]:
    """The cookies a response sets, with their attributes."""
    found: dict[str, Morsel[str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        found.update(jar)
    return found


class Browser:
    """What a browser does with Parley's cookies, by hand: httpx's jar would not send Secure
    cookies over http://127.0.0.1 (browsers do: loopback is a secure context)."""

    def __init__(self, server: Server) -> None:
        self.url = server.url
        self.cookies: dict[str, str] = {}
        self.bodies: list[str] = []

    def with_cookies(self, cookies: dict[str, str]) -> "Browser":
        """Another browser holding copies of these cookies."""
        other = Browser.__new__(Browser)
        other.url, other.cookies, other.bodies = self.url, dict(cookies), []
        return other

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        csrf: str | None = "cookie",
        origin: str | None = "own",
        **headers: str,
    ) -> httpx.Response:
        sent = dict(headers)
        if origin is not None:
            sent["Origin"] = self.url if origin == "own" else origin
        if csrf == "cookie" and "parley_csrf" in self.cookies:
            sent["X-CSRF-Token"] = self.cookies["parley_csrf"]
        elif csrf not in (None, "cookie"):
            sent["X-CSRF-Token"] = csrf
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        r = httpx.post(
            f"{self.url}{path}",
            headers=sent,
            timeout=30,
            **({"json": body} if body is not None else {}),
        )
        self.bodies.append(r.text)
        for name, morsel in set_cookies(r).items():
            if morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return r

    def sign_in(self, tenant: dict, password: str = PASSWORD) -> httpx.Response:
        return self.post(
            "/auth/session",
            {"tenant": tenant["slug"], "email": tenant["email"], "password": password},
            csrf=None,
        )


@pytest.fixture
def tenant(server: Server) -> dict:
    return server.create_tenant(password=PASSWORD)


@pytest.fixture
def browser(server: Server, tenant: dict) -> Browser:
    b = Browser(server)
    assert b.sign_in(tenant).status_code == 200
    return b


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def test_signing_in_sets_an_httponly_refresh_cookie_and_a_script_readable_csrf_cookie(
    server: Server, tenant: dict
) -> None:
    b = Browser(server)
    r = b.sign_in(tenant)
    assert r.status_code == 200, r.text
    cookies = set_cookies(r)
    refresh, csrf = cookies["parley_refresh"], cookies["parley_csrf"]
    assert refresh["httponly"] and refresh["secure"]
    assert refresh["samesite"].lower() == "strict" and refresh["path"] == "/auth/session"
    assert 29 * 86400 < int(refresh["max-age"]) <= 30 * 86400
    assert not csrf["httponly"] and csrf["secure"]
    assert csrf["samesite"].lower() == "strict" and csrf["path"] == "/"
    assert len(csrf.value) >= 32
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"accessToken", "expiresIn", "user", "position"}
    assert body["user"]["email"] == tenant["email"] and body["user"]["role"] == "TENANT_ADMIN"
    assert set(body["user"]) == {"id", "tenantId", "email", "displayName", "role", "active"}
    me = ApiClient(server.url, body["accessToken"]).run(ME, {"p": body["position"]})["me"]
    assert me == {"email": tenant["email"], "role": "TENANT_ADMIN"}


def test_refresh_rotates_the_cookie_and_answers_like_sign_in(browser: Browser) -> None:
    first = browser.cookies["parley_refresh"]
    csrf = browser.cookies["parley_csrf"]
    r = browser.post("/auth/session/refresh")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"accessToken", "expiresIn", "user", "position"}
    assert browser.cookies["parley_refresh"] != first
    assert browser.cookies["parley_csrf"] == csrf  # the page's token stays what it read
    assert browser.post("/auth/session/refresh").status_code == 200


def test_a_reused_refresh_cookie_ends_the_whole_sign_in_and_is_cleared(browser: Browser) -> None:
    stolen = browser.cookies["parley_refresh"]
    # The page refreshed twice since, so no answer of the stolen token's was lost (docs/auth.md).
    assert browser.post("/auth/session/refresh").status_code == 200
    assert browser.post("/auth/session/refresh").status_code == 200
    current = browser.cookies["parley_refresh"]
    thief = browser.with_cookies({**browser.cookies, "parley_refresh": stolen})
    r = thief.post("/auth/session/refresh")
    assert error(r) == (401, "UNAUTHENTICATED")
    assert set_cookies(r)["parley_refresh"]["max-age"] == "0"
    assert "parley_refresh" not in thief.cookies
    # The reuse revoked the sign-in: the legitimate, newer cookie stops working too.
    assert browser.cookies["parley_refresh"] == current
    assert error(browser.post("/auth/session/refresh")) == (401, "UNAUTHENTICATED")


def test_signing_in_again_ends_the_sign_in_whose_cookie_it_replaces(
    browser: Browser, tenant: dict
) -> None:
    replaced = dict(browser.cookies)
    assert browser.sign_in(tenant).status_code == 200
    assert browser.cookies["parley_refresh"] != replaced["parley_refresh"]
    # Nobody holds the replaced sign-in any more: it is over, not valid for 30 more days.
    r = browser.with_cookies(replaced).post("/auth/session/refresh")
    assert error(r) == (401, "UNAUTHENTICATED")
    assert browser.post("/auth/session/refresh").status_code == 200


def test_signing_in_with_a_cookie_that_no_longer_works_signs_in_all_the_same(
    browser: Browser, tenant: dict
) -> None:
    browser.cookies["parley_refresh"] = "not-a-token"
    assert browser.sign_in(tenant).status_code == 200
    ended = dict(browser.cookies)
    assert browser.post("/auth/session/logout").status_code == 200
    assert browser.with_cookies(ended).sign_in(tenant).status_code == 200


def test_a_refused_sign_in_leaves_the_cookies_sign_in_as_it_was(
    browser: Browser, tenant: dict
) -> None:
    assert error(browser.sign_in(tenant, "wrong-password-1")) == (401, "UNAUTHENTICATED")
    assert browser.post("/auth/session/refresh").status_code == 200


def test_refresh_without_a_session_cookie_is_unauthenticated(server: Server) -> None:
    r = Browser(server).post("/auth/session/refresh")
    assert error(r) == (401, "UNAUTHENTICATED")


def test_refresh_without_the_csrf_header_is_forbidden(browser: Browser) -> None:
    r = browser.post("/auth/session/refresh", csrf=None)
    assert error(r) == (403, "FORBIDDEN")
    assert "X-CSRF-Token" in r.json()["error"]["message"]
    assert "parley_refresh" not in set_cookies(r)  # refused, not signed out
    assert browser.post("/auth/session/refresh").status_code == 200


def test_refresh_with_a_csrf_header_that_does_not_match_the_cookie_is_forbidden(
    browser: Browser,
) -> None:
    r = browser.post("/auth/session/refresh", csrf="x" * 43)
    assert error(r) == (403, "FORBIDDEN")
    assert "does not match" in r.json()["error"]["message"]


def test_refresh_without_the_csrf_cookie_is_forbidden_even_with_a_header(
    browser: Browser,
) -> None:
    token = browser.cookies.pop("parley_csrf")
    assert error(browser.post("/auth/session/refresh", csrf=token)) == (403, "FORBIDDEN")


def test_a_request_from_another_origin_is_forbidden(browser: Browser, tenant: dict) -> None:
    for path in ("/auth/session/refresh", "/auth/session/logout"):
        r = browser.post(path, origin=EVIL)
        assert error(r) == (403, "FORBIDDEN"), path
        assert EVIL in r.json()["error"]["message"]
    # Signing in from another origin too (a page elsewhere must not sign a browser in).
    other = browser.with_cookies({})
    body = {"tenant": tenant["slug"], "email": tenant["email"], "password": PASSWORD}
    assert error(other.post("/auth/session", body, csrf=None, origin=EVIL)) == (403, "FORBIDDEN")
    assert browser.post("/auth/session/refresh").status_code == 200


def test_the_own_origin_an_allowed_cors_origin_and_no_origin_are_accepted(
    browser: Browser,
) -> None:
    for origin in ("own", APP, None):
        r = browser.post("/auth/session/refresh", origin=origin)
        assert r.status_code == 200, (origin, r.text)


def test_logout_ends_the_sign_in_and_clears_both_cookies(browser: Browser) -> None:
    old = dict(browser.cookies)
    r = browser.post("/auth/session/logout")
    assert r.status_code == 200 and r.json() == {}
    cleared = set_cookies(r)
    assert cleared["parley_refresh"]["max-age"] == "0"
    assert cleared["parley_refresh"]["path"] == "/auth/session"
    assert cleared["parley_csrf"]["max-age"] == "0" and cleared["parley_csrf"]["path"] == "/"
    assert browser.cookies == {}
    # A copy of the cookie kept somewhere no longer works.
    assert error(browser.with_cookies(old).post("/auth/session/refresh")) == (
        401,
        "UNAUTHENTICATED",
    )


def test_logout_needs_the_csrf_token(browser: Browser) -> None:
    assert error(browser.post("/auth/session/logout", csrf=None)) == (403, "FORBIDDEN")
    assert browser.post("/auth/session/refresh").status_code == 200


def test_changing_the_password_starts_a_new_sign_in_in_the_cookie(
    server: Server, browser: Browser, tenant: dict
) -> None:
    access = browser.post("/auth/session/refresh").json()["accessToken"]
    before = dict(browser.cookies)
    change = {"currentPassword": PASSWORD, "newPassword": "a-new-password-456"}
    bearer = {"Authorization": f"Bearer {access}"}
    assert error(browser.post("/auth/session/password", change, csrf=None, **bearer)) == (
        403,
        "FORBIDDEN",
    )
    wrong = browser.post("/auth/session/password", {**change, "currentPassword": "nope"}, **bearer)
    assert error(wrong) == (400, "BAD_USER_INPUT")
    assert error(browser.post("/auth/session/password", change)) == (401, "UNAUTHENTICATED")
    r = browser.post("/auth/session/password", change, **bearer)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"accessToken", "expiresIn", "user", "position"}
    assert browser.cookies["parley_refresh"] != before["parley_refresh"]
    assert browser.cookies["parley_csrf"] == before["parley_csrf"]
    assert browser.post("/auth/session/refresh").status_code == 200
    # Every earlier sign-in ended with the old password.
    stale = browser.with_cookies(before)
    assert error(stale.post("/auth/session/refresh")) == (401, "UNAUTHENTICATED")
    assert error(Browser(server).sign_in(tenant)) == (401, "UNAUTHENTICATED")
    assert Browser(server).sign_in(tenant, "a-new-password-456").status_code == 200


def test_a_wrong_password_or_unknown_tenant_is_a_typed_unauthenticated(
    server: Server, tenant: dict
) -> None:
    b = Browser(server)
    for body in (
        {"tenant": tenant["slug"], "email": tenant["email"], "password": "wrong-password-1"},
        {"tenant": "no-such-tenant", "email": tenant["email"], "password": PASSWORD},
    ):
        r = b.post("/auth/session", body, csrf=None)
        assert error(r) == (401, "UNAUTHENTICATED"), body
        assert set(r.json()["error"]) >= {"code", "message"}
        assert "set-cookie" not in r.headers


def test_malformed_bodies_are_bad_user_input(server: Server, tenant: dict) -> None:
    b = Browser(server)
    assert error(b.post("/auth/session", {"tenant": "x"}, csrf=None)) == (400, "BAD_USER_INPUT")
    assert error(b.post("/auth/session", [1, 2], csrf=None)) == (400, "BAD_USER_INPUT")
    # An HTML form from another site cannot post JSON without a preflight: forms are refused.
    form = httpx.post(
        f"{server.url}/auth/session",
        content=json.dumps(
            {"tenant": tenant["slug"], "email": tenant["email"], "password": PASSWORD}
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert error(form) == (400, "BAD_USER_INPUT")


def test_repeated_failures_are_rate_limited_with_retry_after(server: Server) -> None:
    tenant = server.create_tenant(password=PASSWORD)
    b = Browser(server)
    wrong = {"tenant": tenant["slug"], "email": tenant["email"], "password": "wrong-password-1"}
    for _ in range(3):
        assert error(b.post("/auth/session", wrong, csrf=None)) == (401, "UNAUTHENTICATED")
    r = b.post("/auth/session", {**wrong, "password": PASSWORD}, csrf=None)
    assert error(r) == (429, "RATE_LIMITED")
    assert r.json()["error"]["retryAfterSeconds"] >= 1
    assert int(r.headers["retry-after"]) == r.json()["error"]["retryAfterSeconds"]


def test_the_refresh_token_never_appears_in_a_response_body(server: Server, tenant: dict) -> None:
    b = Browser(server)
    b.sign_in(tenant)
    seen = [b.cookies["parley_refresh"]]
    access = b.post("/auth/session/refresh").json()["accessToken"]
    seen.append(b.cookies["parley_refresh"])
    change = {"currentPassword": PASSWORD, "newPassword": "another-password-789"}
    b.post("/auth/session/password", change, Authorization=f"Bearer {access}")
    seen.append(b.cookies["parley_refresh"])
    b.post("/auth/session/refresh")
    seen.append(b.cookies["parley_refresh"])
    b.post("/auth/session/logout")
    assert len(b.bodies) == 5 and all(len(token) > 100 for token in seen)
    for body in b.bodies:
        assert "refreshToken" not in body and "refresh_token" not in body
        assert not any(token in body for token in seen)
