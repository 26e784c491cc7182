"""The browser client served from Parley's own assets (api/web_client.py) through a real
`parley serve`: index.html at every client route, content-hashed assets cached for good,
GraphiQL without a third-party origin, the Content-Security-Policy, and the page a checkout that
was never built shows. The build here is a stand-in made in a temporary PARLEY_WEB_DIR."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.hardening import API_CSP, WEB_CSP
from infra.postgres import PostgresTarget
from testbed.processes import Server, target_url
from tests.conftest import own_database

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
INDEX = '<!doctype html><html><head><script type="module" src="/assets/app-3f9a1c.js"></script>'
GRAPHIQL = '<!doctype html><html><head><script type="module" src="/assets/graphiql-77b2e0.js">'
ASSETS = {
    "app-3f9a1c.js": ("export const app = 1;\n", "text/javascript"),
    "graphiql-77b2e0.js": ("export const ide = 1;\n", "text/javascript"),
    "app-5d1e2b.css": ("body { margin: 0 }\n", "text/css"),
    "logo-0c4f.svg": ('<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
    "inter-9a8b.woff2": ("wOF2", "font/woff2"),
}


@pytest.fixture(scope="module")
def web_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `npm --prefix web run build` writes, in miniature."""
    root = tmp_path_factory.mktemp("web")
    (root / "assets").mkdir()
    (root / "index.html").write_text(INDEX)
    (root / "graphiql.html").write_text(GRAPHIQL)
    (root / "build-manifest.json").write_text(json.dumps({"files": sorted(ASSETS)}))
    for name, (content, _) in ASSETS.items():
        (root / "assets" / name).write_text(content)
    (root.parent / "secret.txt").write_text("outside the web directory")
    return root


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[PostgresTarget]:
    with own_database(postgres_url) as target:
        yield target


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database: PostgresTarget, web_dir: Path
) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("web-client"),
        {"PARLEY_DATABASE_URL": target_url(database), "PARLEY_WEB_DIR": str(web_dir)},
        args=("--workers", "1"),
    ).start()
    yield srv
    srv.stop()


def get(server: Server, path: str, accept: str | None = BROWSER) -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=10)


def script_sources(csp: str) -> str:
    return next(d for d in csp.split(";") if d.strip().startswith("script-src"))


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/chats",
        "/chats/6c1f0a52-47b3-4c2e-9d0e-0f1d6f1c9a11",
        "/search",
        "/admin/users",
        "/admin/tenants/acme",
        "/settings",
        "/signed-in",
    ],
)
def test_client_routes_answer_index_html_revalidated_each_time(server: Server, path: str) -> None:
    r = get(server, path)
    assert r.status_code == 200 and r.text == INDEX
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["content-security-policy"] == WEB_CSP


def test_the_root_is_the_client_even_for_a_client_that_does_not_ask_for_html(
    server: Server,
) -> None:
    assert get(server, "/", accept=None).text == INDEX


def test_other_paths_are_not_the_client_unless_a_browser_asks_for_a_page(server: Server) -> None:
    assert get(server, "/chats", accept="application/json").status_code == 404
    assert get(server, "/chats", accept=None).status_code == 404


@pytest.mark.parametrize(
    "path", ["/auth/nothing-here", "/audit/nothing", "/.well-known/nothing", "/metricsx/1"]
)
def test_paths_the_api_claims_are_never_the_client(server: Server, path: str) -> None:
    r = get(server, path)
    assert r.status_code == 404 and r.text != INDEX


def test_api_routes_answer_as_before(server: Server) -> None:
    health = get(server, "/healthz")
    assert health.json() == {"status": "ok"}
    assert health.headers["content-security-policy"] == API_CSP
    assert get(server, "/readyz").json()["status"] == "ok"
    assert "keys" in get(server, "/.well-known/jwks.json").json()
    assert "parley_" in get(server, "/metrics").text
    assert "keys" in get(server, "/audit/public-key").json()
    answer = httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"}, timeout=10)
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert answer.headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize(("name", "media_type"), [(n, t) for n, (_, t) in ASSETS.items()])
def test_hashed_assets_are_served_with_their_type_and_cached_for_good(
    server: Server, name: str, media_type: str
) -> None:
    r = get(server, f"/assets/{name}", accept="*/*")
    assert r.status_code == 200 and r.text == ASSETS[name][0]
    assert r.headers["content-type"].split(";")[0] == media_type
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/app-000000.js",
        "/assets/",
        "/assets/%2e%2e/index.html",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/a%00b",  # a NUL byte: no such file, not a server error
        pytest.param(f"/assets/{'x' * 300}.js", id="/assets/a-name-too-long"),
    ],
)
def test_unknown_assets_and_paths_outside_them_are_404(server: Server, path: str) -> None:
    r = get(server, path)
    assert r.status_code == 404, path
    assert "outside the web directory" not in r.text and r.text != INDEX


def test_graphiql_is_parleys_own_page_with_no_external_url_and_no_inline_scripts(
    server: Server,
) -> None:
    r = get(server, "/graphql")
    assert r.status_code == 200 and r.text == GRAPHIQL
    assert not re.search(r"(?:src|href)=\"https?://", r.text)
    csp = r.headers["content-security-policy"]
    assert csp == WEB_CSP
    assert script_sources(csp).split() == ["script-src", "'self'"]
    assert "unsafe-inline" not in script_sources(csp) and "http" not in csp
    assert "unpkg" not in csp and "frame-ancestors 'none'" in csp


def test_graphql_still_answers_json_to_clients_that_ask_for_it(server: Server) -> None:
    r = httpx.post(
        f"{server.url}/graphql",
        json={"query": "{ __typename }"},
        headers={"Accept": "application/graphql-response+json"},
        timeout=10,
    )
    assert r.json() == {"data": {"__typename": "Query"}}


def test_a_checkout_that_was_never_built_says_how_to_build_and_graphql_still_works(
    server: Server, web_dir: Path
) -> None:
    # Pages are read at each request: taking them away is a checkout without a build.
    moved = [(web_dir / n, web_dir / f"{n}.away") for n in ("index.html", "graphiql.html")]
    for page, away in moved:
        page.rename(away)
    try:
        for path in ("/", "/chats", "/graphql"):
            r = get(server, path)
            assert r.status_code == 200 and "not built" in r.text, path
            assert "npm --prefix web ci &amp;&amp; npm --prefix web run build" in r.text
            assert r.headers["content-security-policy"] == WEB_CSP
            assert "<script" not in r.text
        answer = httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"}, timeout=10)
        assert answer.json() == {"data": {"__typename": "Query"}}
    finally:
        for page, away in moved:
            away.rename(page)
    assert get(server, "/").text == INDEX
