"""`make run`'s way in: on a fresh machine (the embedded database) `parley demo --welcome`
creates the demo tenant and prints the address and, once, the password; later runs print how to
get a new one, which `parley demo --new-password` sets (ending the old sign-ins)."""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from api.runtime import Runtime
from commands.messages import ResetPassword
from domain.actor import Actor
from domain.errors import NotAllowed
from domain.user import Role
from testbed.processes import Server

EMAIL = "demo@parley.example"
URL = "http://127.0.0.1:8000/"


@dataclass
class FirstRuns:
    server: Server
    first: str
    second: str


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRuns]:
    """A machine that never ran Parley (an empty data directory, the embedded database): what
    `make run` printed the first and the second time, then the server it started."""
    srv = Server(tmp_path_factory.mktemp("fresh-machine"), args=("--workers", "1"))
    outputs = []
    for _ in range(2):
        done = srv.cli("demo", "--welcome")
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    srv.start()
    yield FirstRuns(srv, *outputs)
    srv.stop()


def printed_password(output: str) -> str | None:
    found = re.search(r"^\s*password\s+(\S+)", output, re.M)
    return found.group(1) if found else None


def sign_in(server: Server, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/session",
        json={"tenant": "demo", "email": EMAIL, "password": password},
        timeout=30,
    )


def test_the_first_run_prints_the_address_and_a_password_that_signs_in(
    machine: FirstRuns,
) -> None:
    password = printed_password(machine.first)
    assert password and len(password) >= 12, machine.first
    assert URL in machine.first and f"{URL}graphql" in machine.first
    assert re.search(r"tenant\s+demo", machine.first) and EMAIL in machine.first
    r = sign_in(machine.server, password)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "TENANT_ADMIN"


def test_later_runs_print_the_address_and_how_to_get_a_new_password_not_the_password(
    machine: FirstRuns,
) -> None:
    password = printed_password(machine.first)
    assert password and password not in machine.second
    assert printed_password(machine.second) is None
    assert URL in machine.second and "parley demo --new-password" in machine.second


def test_a_new_password_replaces_the_old_one_and_ends_its_sign_ins(machine: FirstRuns) -> None:
    old = printed_password(machine.first)
    assert old
    session = sign_in(machine.server, old)
    assert session.status_code == 200
    cookies = {name: session.cookies[name] for name in ("parley_refresh", "parley_csrf")}
    reset = machine.server.cli("demo", "--new-password")
    assert reset.returncode == 0, reset.stderr
    new = printed_password(reset.stdout)
    assert new and new != old, reset.stdout
    assert sign_in(machine.server, old).json()["error"]["code"] == "UNAUTHENTICATED"
    stale = httpx.post(
        f"{machine.server.url}/auth/session/refresh",
        headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "X-CSRF-Token": cookies["parley_csrf"],
        },
        timeout=30,
    )
    assert stale.status_code == 401, stale.text
    assert sign_in(machine.server, new).status_code == 200


def test_only_an_operator_resets_passwords(runtime: Runtime) -> None:
    """Not in the API, and refused to any caller, even an admin: an operator's command."""
    admin = Actor(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role=Role.PLATFORM_ADMIN)
    command = ResetPassword(user_id=admin.user_id, new_password="a-long-password-1")
    with pytest.raises(NotAllowed):
        runtime.bus.handle(command, admin)
