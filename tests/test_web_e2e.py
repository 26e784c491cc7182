"""The web client in a real browser: Debian's Chromium driven by @playwright/test (web/e2e)
against a real `parley serve` (the embedded default) serving the build in api/static. This test
starts the server and a local OpenID Connect issuer (tests/oidc_issuer.py), creates what the
browser tests need through the CLI and GraphQL (two tenants; in A an admin, a member, an auditor,
a member whose role the admin changes, and sign-in through the issuer; in B a member with a
chat), hands them to Playwright as a JSON file (PARLEY_E2E_FIXTURES) and fails with Playwright's
report when a browser test fails.

PARLEY_WEB_SCREENSHOTS=docs/web refreshes the committed screenshots (default: a temporary
directory); PARLEY_WEB_DIR serves another build (e.g. one made with `vite build --outDir`);
PARLEY_CHROMIUM names another Chromium binary; PARLEY_E2E_ARGS passes options to `playwright
test` (e.g. `--grep sign`)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from testbed.client import ApiClient
from testbed.processes import ROOT, Server
from tests.oidc_issuer import Client, OidcIssuer

WEB = ROOT / "web"
PLAYWRIGHT = WEB / "node_modules" / ".bin" / "playwright"
CHROMIUM = os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "e2e-password-12345"

REGISTER = """mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"""
START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
MESSAGES = """query($id: ID!, $after: Int) { chat(id: $id, afterPosition: $after) {
    messages(first: 200) { nodes { id role content createdAt } } } }"""
CONFIGURE_OIDC = """mutation($i: ConfigureOidcInput!) { configureOidc(input: $i) { position } }"""


def register(admin: ApiClient, email: str, role: str, name: str) -> dict:
    done = admin.run(
        REGISTER,
        {"i": {"email": email, "password": PASSWORD, "displayName": name, "role": role}},
    )["registerUser"]
    return {"id": done["userId"], "email": email, "password": PASSWORD, "name": name}


def chat_with(user: ApiClient, title: str, *contents: str) -> dict:
    """A chat with `contents` sent one after the other, each reply durable before the next."""
    chat = user.run(START_CHAT, {"i": {"title": title}})["startChat"]
    messages: list[dict] = []
    for content in contents:
        sent = user.run(SEND, {"i": {"chatId": chat["chatId"], "content": content}})["sendMessage"]
        messages = replies_settled(user, chat["chatId"], len(messages) + 2, sent["position"])
    return {"id": chat["chatId"], "title": title, "messages": messages}


def replies_settled(user: ApiClient, chat_id: str, count: int, after: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        nodes = user.run(MESSAGES, {"id": chat_id, "after": after})["chat"]["messages"]["nodes"]
        if len(nodes) >= count:
            return list(nodes)
        assert time.monotonic() < deadline, f"no reply within 30 s: {nodes}"
        time.sleep(0.1)


def fixtures(server: Server, issuer: OidcIssuer) -> dict:
    api = ApiClient(server.url)
    tag = uuid.uuid4().hex[:6]

    a = server.create_tenant(f"acme-{tag}")
    admin = api.login(a["slug"], a["email"], a["password"])
    member = register(admin, f"member@{a['slug']}.example", "MEMBER", "Mia Member")
    auditor = register(admin, f"auditor@{a['slug']}.example", "AUDITOR", "Avery Auditor")
    promoted = register(admin, f"promoted@{a['slug']}.example", "MEMBER", "Pat Promoted")
    as_member = api.login(a["slug"], member["email"], PASSWORD)

    # What the auditor looks at as of a time between two of its messages.
    audited = chat_with(as_member, "Quarterly plan", "Draft the quarterly plan")
    time.sleep(1.1)  # the snapshot's time lies strictly between the two messages' events
    as_of = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    audited = chat_with_more(as_member, audited, "Add the budget section")

    # A long conversation whose first message a search finds.
    needle = f"zanzibar{tag}"
    searched = chat_with(
        as_member,
        "Travel notes",
        f"Remember the {needle} itinerary",
        *(f"Filler message number {i}" for i in range(1, 16)),
    )

    oidc = sso(server, issuer, admin, a["slug"])

    b = server.create_tenant(f"globex-{tag}")
    b_admin = api.login(b["slug"], b["email"], b["password"])
    b_member = register(b_admin, f"member@{b['slug']}.example", "MEMBER", "Bo Globex")
    secret = f"globex-secret-{tag}"
    b_chat = chat_with(
        api.login(b["slug"], b_member["email"], PASSWORD), "Globex merger", f"The {secret}"
    )

    return {
        "a": {
            "slug": a["slug"],
            "admin": {"email": a["email"], "password": a["password"], "name": a["slug"]},
            "member": member,
            "auditor": auditor,
            "promoted": promoted,
            "audited": {
                "id": audited["id"],
                "title": audited["title"],
                "before": "Draft the quarterly plan",
                "after": "Add the budget section",
                "asOf": as_of.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            "searched": {
                "id": searched["id"],
                "needle": needle,
                "messageId": searched["messages"][0]["id"],
            },
            "oidc": oidc,
        },
        "b": {
            "slug": b["slug"],
            "member": b_member,
            "chat": {"id": b_chat["id"], "title": b_chat["title"], "secret": secret},
        },
    }


def sso(server: Server, issuer: OidcIssuer, admin: ApiClient, slug: str) -> dict:
    """Tenant A signs in through `issuer`, which signs in one person without asking: someone
    Parley does not know yet, provisioned as a member at their first sign-in (their domain is
    allowed). Finished sign-ins return to the web client's /signed-in."""
    client = issuer.register(
        Client(
            client_id=f"parley-{slug}",
            secret=f"e2e-oidc-secret-{slug}",
            redirect_uris=[f"{server.url}/auth/oidc/{slug}/callback"],
            email=f"sso@{slug}.example",
            name="Sasha Single-Sign-On",
        )
    )
    admin.run(
        CONFIGURE_OIDC,
        {
            "i": {
                "issuer": issuer.url,
                "clientId": client.client_id,
                "clientSecret": client.secret,
                "allowedDomains": [f"{slug}.example"],
                "autoProvisionRole": "MEMBER",
                "redirectUris": [f"{server.url}/signed-in"],
            }
        },
    )
    return {"issuer": issuer.url, "email": client.email, "name": client.name, "role": "MEMBER"}


def chat_with_more(user: ApiClient, chat: dict, content: str) -> dict:
    sent = user.run(SEND, {"i": {"chatId": chat["id"], "content": content}})["sendMessage"]
    messages = replies_settled(user, chat["id"], len(chat["messages"]) + 2, sent["position"])
    return {**chat, "messages": messages}


def screenshots_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("PARLEY_WEB_SCREENSHOTS")
    directory = (ROOT / chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


@pytest.mark.timeout(900)
def test_the_web_client_in_a_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("node") is None or not PLAYWRIGHT.exists():
        pytest.fail("the browser tests need web/'s packages: run `make tools`", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: run `make tools`", pytrace=False
        )
    web_dir = os.environ.get("PARLEY_WEB_DIR")
    if not (Path(web_dir) if web_dir else ROOT / "api" / "static").joinpath("index.html").is_file():
        pytest.fail("no build to serve: run `npm --prefix web run build`", pytrace=False)

    started = time.monotonic()
    server = Server(tmp_path / "serve", {"PARLEY_WEB_DIR": web_dir} if web_dir else {}).start()
    try:
        with OidcIssuer() as issuer:  # answers the browser's sign-ins
            data = fixtures(server, issuer)
            prepared = time.monotonic()
            fixture_file = tmp_path / "fixtures.json"
            fixture_file.write_text(json.dumps(data, indent=2))
            env = {
                **os.environ,
                "PARLEY_E2E_BASE_URL": server.url,
                "PARLEY_E2E_FIXTURES": str(fixture_file),
                "PARLEY_E2E_SCREENSHOTS": str(screenshots_dir(tmp_path)),
                "PARLEY_E2E_OUTPUT": str(tmp_path / "test-results"),
                "PARLEY_CHROMIUM": CHROMIUM,
                "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
                "CI": "1",
                "FORCE_COLOR": "0",
            }
            done = subprocess.run(
                [str(PLAYWRIGHT), "test", *shlex.split(os.environ.get("PARLEY_E2E_ARGS", ""))],
                cwd=WEB,
                env=env,
                capture_output=True,
                text=True,
                timeout=780,
            )
    finally:
        server.stop()
    report = done.stdout + done.stderr
    with capsys.disabled():
        # Each browser test's line, and the send-to-first-token figure, in the suite's output.
        print(
            f"\nweb e2e: server and fixtures {prepared - started:.0f} s, "
            f"browser tests {time.monotonic() - prepared:.0f} s"
        )
        for line in done.stdout.splitlines():
            if re.match(r"\s*(✓|✘|-|\d+ (passed|failed|skipped|flaky))|send-to-|axe on", line):
                print(line.rstrip())
    assert done.returncode == 0, f"Playwright failed:\n{report}\n\nserver log:\n{tail(server)}"
    assert re.search(r"\d+ passed", report), report


def tail(server: Server) -> str:
    try:
        return server.log.read_text()[-4000:]
    except OSError:
        return "(no log)"
