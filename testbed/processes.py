"""Real Parley processes on loopback, for the tests and the benchmarks: `parley serve` and
`parley worker` started as subprocesses on free ports, each with only the settings it is given."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from infra.postgres import PostgresTarget

ROOT = Path(__file__).resolve().parent.parent
PARLEY = [sys.executable, "-m", "api.cli"]
MODELS = (ROOT / os.environ.get("PARLEY_SERVICES_DIR", ".services")).resolve() / "models"
"""The local embedding model, fetched once for every server of a run (as the embeddings tests
fetch it), not into each server's own data directory."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def target_url(target: PostgresTarget) -> str:
    auth = target.user + (f":{target.password}" if target.password else "")
    if target.host.startswith("/"):
        return f"postgresql://{auth}@/{target.dbname}?host={target.host}&port={target.port}"
    return f"postgresql://{auth}@{target.host}:{target.port}/{target.dbname}"


def children_of(pid: int, marker: bytes = b"") -> list[int]:
    """The processes whose parent is `pid` and whose command line has `marker` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == pid and marker in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def spawn(
    args: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool]
) -> subprocess.Popen[bytes]:
    """`parley ARGS` in the background, logging to `log`, once `ready()` says so (60 s at most)."""
    proc = subprocess.Popen(
        [*PARLEY, *args], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"parley {args[0]} exited:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"parley {args[0]} did not become ready:\n{log.read_text()[-3000:]}")


class Server:
    """A real `parley serve` on a free loopback port: the deployed topology (API processes and
    a worker process) unless `args` say otherwise, e.g. ("--single-process",)."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.args = args
        """More `parley serve` options, e.g. ("--workers", "3") or ("--single-process",)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Only what we pass: a developer's exported PARLEY_* must not change the mode under test.
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
            "PARLEY_DATA_DIR": str(data_dir),
            "PARLEY_ECHO_DELAY_MS": "5",
            "PARLEY_LOG_LEVEL": "WARNING",
            "PARLEY_EMBEDDING_MODEL_DIR": str(MODELS),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"serve-{self.port}.log"

    def start(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            ["serve", "--port", str(self.port), *self.args],
            self.env,
            self.log,
            lambda: httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def settled_head(self, timeout: float = 30) -> int:
        """The log head once every follower has processed it and no reply is being written."""
        deadline = time.monotonic() + timeout
        while True:
            ready = httpx.get(f"{self.url}/readyz", timeout=5).json()
            head = int(ready["log_head"])
            # An API process of the deployed topology reports the worker's followers from the
            # database: the responder's durable position is its low-water mark, so it equals
            # the head only once no reply is in flight.
            followers = ready["followers"] or ready["deployment_followers"]
            if (
                ready["read_models_position"] == head
                and all(f["position"] == head for f in followers.values())
                and followers["responder"].get("replies_in_flight", 0) == 0
            ):
                return head
            if time.monotonic() > deadline:
                raise AssertionError(f"followers did not settle: {ready}")
            time.sleep(0.05)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the `parley` CLI against this server's data directory."""
        return subprocess.run(
            [*PARLEY, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )

    def create_tenant(self, slug: str | None = None, password: str = "admin-password-123") -> dict:
        slug = slug or f"t-{uuid.uuid4().hex[:10]}"
        email = f"admin@{slug}.example"
        done = self.cli(
            "tenants",
            "create",
            "--name",
            slug.upper(),
            "--slug",
            slug,
            "--admin-email",
            email,
            "--admin-password",
            password,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        return {**out, "email": email, "password": password}


class Worker:
    """A real `parley worker` process (followers only), ready once its metrics answer."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.server = Server(data_dir, env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Worker":
        log = self.server.log.with_name(f"worker-{self.port}.log")
        self.server.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            ["worker", "--metrics-port", str(self.port)],
            self.server.env,
            log,
            lambda: (
                'parley_follower_position{follower="responder"}'
                in httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=1).text
            ),
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
