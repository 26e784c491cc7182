"""`parley serve` comes back at once after a crash that killed it and its embedded PostgreSQL
(kill -9, the OOM killer, a power cut), as a supervisor restarting it would need."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.postgres import server_processes
from testbed.client import ApiClient
from testbed.processes import Server, alive, children_of

LOCK_FILES = ("postmaster.pid", ".s.PGSQL.5432.lock")
"""What a killed server leaves in its data directory (the socket lives there too), each naming
the dead postmaster's pid on its first line."""


def postgres_of(server: Server) -> list[int]:
    return server_processes((server.data_dir / "pgdata").resolve())


def crash(server: Server, *, postgres_too: bool = True) -> None:
    """SIGKILL `parley serve`, and its PostgreSQL too as a power cut would (the postmaster leads
    its own process group, with every backend in it); the OOM killer may take Parley alone."""
    assert server.proc is not None
    postmaster = int((server.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    children = children_of(server.proc.pid)  # its API processes and worker process
    assert children
    os.kill(server.proc.pid, signal.SIGKILL)
    if postgres_too:
        os.killpg(postmaster, signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    # They stop on their own: none keeps serving on the port or answering messages.
    deadline = time.monotonic() + 30
    while left := [pid for pid in children if alive(pid)]:
        assert time.monotonic() < deadline, f"children {left} outlived the killed supervisor"
        time.sleep(0.1)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A running `parley serve` of its own; no PostgreSQL of it outlives the test."""
    server = Server(tmp_path / "crashed").start()
    yield server
    server.stop()
    for pid in postgres_of(server):
        os.kill(pid, signal.SIGKILL)


def test_serve_restarts_at_once_after_it_and_its_postgres_were_killed(own_server: Server) -> None:
    tenant = own_server.create_tenant()
    crash(own_server)
    own_server.start()  # at once, as systemd's Restart=always would
    admin = ApiClient(own_server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    assert admin.token


@pytest.mark.parametrize("postgres_too", [True, False], ids=["with-postgres", "alone"])
def test_a_serve_restarted_after_a_kill_still_stops_its_postgres_when_it_exits(
    own_server: Server, postgres_too: bool
) -> None:
    crash(own_server, postgres_too=postgres_too)
    own_server.start()
    own_server.stop()
    # The killed process never took itself off the server's list of users; that must not keep
    # PostgreSQL running once its last live user has gone.
    deadline = time.monotonic() + 15
    while postgres_of(own_server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres_of(own_server) == []


@pytest.fixture(scope="module")
def left_by_a_crash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    """A stopped server, and the lock files its PostgreSQL wrote while it ran."""
    server = Server(tmp_path_factory.mktemp("stale")).start()
    pgdata = server.data_dir / "pgdata"
    locks = {name: (pgdata / name).read_text() for name in LOCK_FILES}
    server.stop()
    yield server, locks
    server.stop()


def impostor(kind: str) -> subprocess.Popen[bytes]:
    """A process whose pid a stale postmaster.pid may name: an unrelated live one (the pid was
    reused), or the killed postmaster not yet reaped (a zombie, while the machine is busy)."""
    if kind == "unrelated":
        return subprocess.Popen(["sleep", "60"])
    zombie = subprocess.Popen(["true"])
    stat = Path(f"/proc/{zombie.pid}/stat")
    while stat.read_text().rsplit(") ", 1)[1][0] != "Z":
        time.sleep(0.01)
    return zombie


@pytest.mark.parametrize("kind", ["unrelated", "zombie"])
def test_serve_starts_and_stops_over_files_naming_a_process_that_is_not_its_postgres(
    left_by_a_crash: tuple[Server, dict], kind: str
) -> None:
    server, locks = left_by_a_crash
    pgdata = server.data_dir / "pgdata"
    owner = pgdata.stat()
    stranger = impostor(kind)
    try:
        for name, text in locks.items():
            lock = pgdata / name
            lock.write_text(f"{stranger.pid}\n" + text.partition("\n")[2])
            os.chown(lock, owner.st_uid, owner.st_gid)  # as PostgreSQL wrote it
        # The wheel's list of the processes using the server, as the dead one left it.
        (pgdata / ".handle_pids.json").write_text(json.dumps([stranger.pid]))
        server.start()
        server.stop()
        assert postgres_of(server) == []
    finally:
        stranger.kill()
        stranger.wait()
