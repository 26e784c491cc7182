"""What every local service shares: a folder, a pid we own, a log, a health check.

A service's folder (`.services/<name>/`) holds `state.json` (pid, version, address, the marker
in its command line), its data and its log. `down` signals only a pid that still runs in our folder
(command line or working directory), so a recycled pid or a server someone else started is
never touched.
"""

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service could not be fetched or started; the message says why and what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    version: str
    address: str
    healthy: bool
    pid: int | None
    detail: str = ""


@dataclass(frozen=True)
class ServiceState:
    pid: int
    version: str
    address: str
    marker: str
    session: int = 0
    """The session `up` created for the server (helpers such as runuser and ES's launcher)."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def is_ours(pid: int, marker: str) -> bool:
    """The process runs in our folder (by command line, or working directory for servers such
    as Redis that rewrite their process title)."""
    return marker in cmdline_of(pid) or cwd_of(pid).startswith(marker)


def session_members(session: int, marker: str) -> list[int]:
    """Live processes of `session` that run in our folder: what `up` started, nothing else."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        if int(fields[3]) == session and fields[0] != "Z" and is_ours(pid, marker):
            members.append(pid)
    return members


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def require_executable(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ServiceError(f"`{name}` not found: {hint}")
    return found


class LocalService(ABC):
    """A server process that `parley services` owns."""

    name: str
    start_timeout = 120.0
    external = False
    """A server someone else runs, that we only use: never started or stopped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = (root / self.name).resolve()
        self.log_path = self.dir / "server.log"
        self.state_path = self.dir / "state.json"

    # -- what each service defines -----------------------------------------------------------

    @property
    @abstractmethod
    def version(self) -> str: ...

    @property
    @abstractmethod
    def address(self) -> str: ...

    @abstractmethod
    def env(self) -> dict[str, str]:
        """The `PARLEY_*` settings that point Parley at this server."""

    @abstractmethod
    def prepare(self) -> None:
        """Fetch and configure (cached: cheap when done before)."""

    @abstractmethod
    def command(self) -> Sequence[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def check(self) -> str | None:
        """None when healthy, else what is wrong."""

    def ports(self) -> Sequence[int]:
        return ()

    def run_as(self) -> str | None:
        """The unprivileged user to run as when invoked as root (None: run as ourselves)."""
        return None

    def process_env(self) -> dict[str, str]:
        return dict(os.environ)

    def after_start(self) -> None:  # noqa: B027 (optional hook)
        """Runs once the server is healthy (create a database, a topic, …)."""

    # -- life cycle ------------------------------------------------------------------------------

    def state(self) -> ServiceState | None:
        try:
            return ServiceState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def owned_pid(self) -> int | None:
        """Our server's pid, if it is still running and still ours."""
        state = self.state()
        if state is None or not process_alive(state.pid):
            return None
        return state.pid if is_ours(state.pid, state.marker) else None

    def up(self) -> ServiceStatus:
        pid = self.owned_pid()
        if pid is not None:
            problem = self.check()
            if problem is None:
                return self.status()
            self._wait_healthy(pid, started=time.monotonic())
            return self.status()
        for port in self.ports():
            if port_in_use(port):
                raise ServiceError(
                    f"{self.name}: port {port} on 127.0.0.1 is taken by a process we did not "
                    "start; stop it or choose another port (see `parley services --help`)"
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        started = time.monotonic()
        pid = self._spawn()
        self._wait_healthy(pid, started)
        self.after_start()
        log.info(
            "%s %s up on %s in %.1fs",
            self.name,
            self.version,
            self.address,
            time.monotonic() - started,
        )
        return self.status()

    def down(self) -> bool:
        """Stop our server and whatever else `up` started with it; True when something was."""
        state = self.state()
        pid = self.owned_pid()
        stopped = False
        if pid is not None:
            self._signal(pid, signal.SIGTERM)
            stopped = self._wait_gone([pid], 30)
            if not stopped:
                log.warning("%s did not stop in 30s; killing pid %d", self.name, pid)
                self._signal(pid, signal.SIGKILL)
            stopped = True
        if state is not None and state.session:
            leftovers = session_members(state.session, state.marker)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for member in leftovers:
                    self._signal(member, sig)
                if self._wait_gone(leftovers, 10):
                    break
            stopped = stopped or bool(leftovers)
        self.state_path.unlink(missing_ok=True)
        return stopped

    @staticmethod
    def _wait_gone(pids: list[int], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while any(process_alive(p) for p in pids):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def status(self) -> ServiceStatus:
        pid = self.owned_pid()
        if pid is None:
            return ServiceStatus(self.name, self.version, self.address, False, None, "not running")
        problem = self.check()
        return ServiceStatus(
            self.name, self.version, self.address, problem is None, pid, problem or "healthy"
        )

    def _spawn(self) -> int:
        argv = list(self.command())
        user = self.run_as() if os.geteuid() == 0 else None
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        marker = str(self.dir)
        if marker not in " ".join(argv):
            raise ServiceError(f"{self.name}: command line must mention {marker}")
        with self.log_path.open("ab") as logfile:
            proc = subprocess.Popen(
                argv,
                cwd=self.dir,
                env=self.process_env(),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI; `down` stops it by pid
            )
        pid = self._server_pid(proc.pid)
        state = ServiceState(pid, self.version, self.address, marker, session=proc.pid)
        self.state_path.write_text(json.dumps(asdict(state)))
        return pid

    def _server_pid(self, spawned: int) -> int:
        """`runuser` forks the real server; follow it so we signal the server itself."""
        if not cmdline_of(spawned).startswith("runuser"):
            return spawned
        for _ in range(50):
            children = Path(f"/proc/{spawned}/task/{spawned}/children")
            try:
                kids = children.read_text().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.02)
        return spawned

    def _wait_healthy(self, pid: int, started: float) -> None:
        deadline = started + self.start_timeout
        problem: str | None = "starting"
        while time.monotonic() < deadline:
            if not process_alive(pid):
                raise ServiceError(
                    f"{self.name} exited during start; last lines of {self.log_path}:\n"
                    + tail(self.log_path)
                )
            problem = self.check()
            if problem is None:
                return
            time.sleep(0.25)
        raise ServiceError(
            f"{self.name} not healthy after {self.start_timeout:.0f}s ({problem}); last lines of "
            f"{self.log_path}:\n{tail(self.log_path)}"
        )

    def _signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
