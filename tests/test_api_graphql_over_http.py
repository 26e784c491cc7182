"""GraphQL over HTTP through a real `parley serve`: the media type a client accepts decides the
answer. application/graphql-response+json: 400 and no `data` for a document that cannot run, 200
once it ran; application/json (or no Accept, or */*): 200 for every GraphQL response, as ever.
The reference audit (npm `graphql-http`) must pass without a warning."""

import json
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from api.graphql_over_http import GRAPHQL_RESPONSE, JSON, response_media_type
from testbed.processes import ROOT, Server

AUDIT = ROOT / "tests" / "http_audit"


def post(server: Server, body: Any, accept: str | None) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    return httpx.post(f"{server.url}/graphql", content=content, headers=headers, timeout=30)


def test_the_graphql_over_http_audit_passes_without_a_warning(server: Server) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("the audit needs Node.js 18+ on PATH: `make tools` installs it", pytrace=False)
    if not (AUDIT / "node_modules" / "graphql-http").is_dir():
        pytest.fail(f"the audit's packages are missing: run `make tools` ({AUDIT})", pytrace=False)
    done = subprocess.run(
        # Its anonymous operations come from an address of their own: they neither spend nor meet
        # the rate limit budget of the other tests' sign-ins from loopback.
        [node, "audit.mjs", f"{server.url}/graphql", "X-Forwarded-For: 198.51.100.80"],
        cwd=AUDIT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results, done.stdout
    not_ok = [r for r in results if r["status"] != "ok"]
    report = "\n".join(
        f"{r['status'].upper()} {r['id']} {r['name']}: {r['reason']}" for r in not_ok
    )
    print(report)  # notices (a MAY not done) included
    # A failed MUST is an error, a failed SHOULD a warning: neither may creep back in.
    assert not [r for r in not_ok if r["status"] in ("error", "warn")], report


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("parse", {"query": "{"}),
        ("validation", {"query": "{ noSuchField }"}),
        (
            "variable coercion",
            {"query": "query($n: String!) { __type(name: $n) { name } }", "variables": {"n": None}},
        ),
    ],
)
def test_a_document_that_cannot_run_is_400_without_data_in_graphql_response_json(
    server: Server, name: str, body: dict
) -> None:
    r = post(server, body, GRAPHQL_RESPONSE)
    assert r.status_code == 400, name
    assert r.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    answer = r.json()
    assert "data" not in answer, name
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], name


@pytest.mark.parametrize(
    "body",
    ['{ "not JSON', '{"qeury": "{ __typename }"}', '{"query": "{ __typename }", "variables": 7}'],
)
def test_a_malformed_request_is_400_with_a_graphql_error_in_graphql_response_json(
    server: Server, body: str
) -> None:
    r = post(server, body, GRAPHQL_RESPONSE)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    (error,) = r.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["message"]


def test_an_operation_that_ran_is_200_in_graphql_response_json_even_with_field_errors(
    server: Server,
) -> None:
    ok = post(server, {"query": "{ __typename }"}, GRAPHQL_RESPONSE)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.json() == {"data": {"__typename": "Query"}}
    # `me` without a token: a field error, the operation ran and its result is null.
    failed = post(server, {"query": "{ me { id } }"}, GRAPHQL_RESPONSE)
    assert failed.status_code == 200 and failed.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    answer = failed.json()
    assert answer["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [
        (["me"], "UNAUTHENTICATED")
    ]


@pytest.mark.parametrize("accept", [JSON, None, "*/*", "text/html, */*;q=0.8"])
def test_application_json_clients_keep_200_and_null_data_for_a_document_that_cannot_run(
    server: Server, accept: str | None
) -> None:
    for body in ({"query": "{"}, {"query": "{ noSuchField }"}):
        r = post(server, body, accept)
        assert r.status_code == 200 and r.headers["content-type"] == JSON, (accept, body)
        answer = r.json()
        assert answer["data"] is None
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]


def test_application_json_clients_keep_a_plain_text_400_for_a_malformed_request(
    server: Server,
) -> None:
    r = post(server, '{ "not JSON', JSON)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain")


def test_a_client_accepting_neither_media_type_gets_406_but_a_browser_still_gets_graphiql(
    server: Server,
) -> None:
    assert post(server, {"query": "{ __typename }"}, "text/html").status_code == 406
    ide = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 200 and ide.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.9", JSON),
        (f"{GRAPHQL_RESPONSE};q=0.5, */*", JSON),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0", None),
        (f"{GRAPHQL_RESPONSE};q=high, text/html", None),
        ("text/html", None),
    ],
)
def test_the_response_media_type_is_the_accepted_one_with_the_highest_q(
    accept: str | None, media_type: str | None
) -> None:
    """Equal q: graphql-response+json when named; wildcards alone mean legacy application/json."""
    assert response_media_type(accept) == media_type
