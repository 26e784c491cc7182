"""What the security suites share: a real `parley serve` on a database of its own in the
services' PostgreSQL and on their Redis, a platform admin to build tenants with, and a client
that keeps its connection (a new httpx connection per request costs ~50 ms, which would eat the
suites' time budget)."""

import json
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from testbed.client import ApiClient
from testbed.processes import Server, target_url
from tests.conftest import fresh_database

PLATFORM_EMAIL = "root@platform.example"
PLATFORM_PASSWORD = "platform-password-123"
BYOK_PROVIDER = "byok"
"""An OpenAI-compatible provider that tenants may bring their own key for. It points at a closed
port, so every reply with it fails at once and leaves a circuit breaker with an error behind."""
BYOK_MODEL = f"{BYOK_PROVIDER}/model-x"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SessionClient(ApiClient):
    """An ApiClient whose requests share one keep-alive connection pool."""

    def __init__(self, url: str, token: str | None = None, http: httpx.Client | None = None):
        super().__init__(url, token)
        self.http = http or httpx.Client(timeout=30)

    def as_user(self, token: str) -> "SessionClient":
        return SessionClient(self.url, token, self.http)

    def raw(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict:
        return self.post(query, variables, **headers).json()  # type: ignore[no-any-return]

    def post(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(headers)
        return self.http.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, headers=h
        )


@contextmanager
def security_server(
    data_dir: Path, postgres_url: str, redis_url: str, env: dict[str, str] | None = None
) -> Iterator[tuple[Server, SessionClient]]:
    """A started server and a platform admin signed in to it; stopped on exit."""
    database = fresh_database(postgres_url)
    server = Server(
        data_dir,
        {
            "PARLEY_DATABASE_URL": target_url(database),
            "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
            "PARLEY_REDIS_URL": redis_url,
            "PARLEY_JWT_SECRET": secrets.token_urlsafe(48),
            "PARLEY_ECHO_DELAY_MS": "1",
            "PARLEY_FOLLOWER_POLL_SECONDS": "0.2",
            # Sign-ins are argon2 checks; the suites sign many users in.
            "PARLEY_PASSWORD_HASH_CONCURRENCY": "4",
            "PARLEY_LLM_COMPATIBLE": json.dumps(
                {
                    BYOK_PROVIDER: {
                        "base_url": f"http://127.0.0.1:{closed_port()}/v1",
                        "api_key": "platform-key-never-used",
                    }
                }
            ),
            "PARLEY_LLM_MAX_ATTEMPTS": "1",
            **(env or {}),
        },
    ).start()
    http = httpx.Client(timeout=30)
    try:
        done = server.cli(
            "platform-admins", "create", "--email", PLATFORM_EMAIL, "--password", PLATFORM_PASSWORD
        )
        assert done.returncode == 0, done.stderr
        root = SessionClient(server.url, http=http).login(
            "platform", PLATFORM_EMAIL, PLATFORM_PASSWORD
        )
        assert isinstance(root, SessionClient)
        yield server, root
    finally:
        http.close()
        server.stop()
