"""`parley serve`: the deployed topology on one machine (`--single-process` for one process).

N API processes (default: one per core; uvicorn's workers, sharing one listening socket; a dead
one is replaced by uvicorn) and one worker process for every follower (read models, search,
audit ledger, relay, responder, retention; `parley worker all`, replaced by this supervisor when
it dies, which it says in the log). They share state through Redis when `PARLEY_REDIS_URL` is
set and through PostgreSQL otherwise (`Runtime.start(shared=True)`): live events, rate limits,
replies in progress, sign-ins in progress. With the embedded default the supervisor starts
PostgreSQL and migrates first, so the children attach to a ready server, and creates the master
key file before they could race to. Ctrl-C (or SIGTERM) stops the API processes, then the
worker, then PostgreSQL; a supervisor killed outright takes its children with it (they get
SIGTERM). With `PARLEY_RUN_WORKERS=false` it runs the API processes only (the followers run in a
`parley worker` elsewhere).

All of them write their Prometheus metrics into one directory (`PROMETHEUS_MULTIPROC_DIR`, made
fresh for each run), so `/metrics` of any API process shows the whole deployment: counters and
histograms summed, `parley_live_subscribers` summed over live processes, the followers' gauges
from the worker.

Every HTTP response and WebSocket handshake names the process that served it
(`X-Parley-Instance`, random per process): operators see the spread, tests pick processes."""

import ctypes
import gc
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

from prometheus_client import multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.settings import Settings

log = logging.getLogger("parley.serve")

INSTANCE = secrets.token_hex(4)
"""This process's name in `X-Parley-Instance`."""
SUPERVISOR_ENV = "PARLEY_SUPERVISOR_PID"
"""Set for the children: the supervisor's pid, which they must not outlive."""
GC_YOUNG_THRESHOLD = 100_000
"""Allocations (net of frees) between two collections of the youngest generation."""
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before restarting a worker process that died: longer while it keeps dying."""


class _Stopped(Exception):
    """SIGINT or SIGTERM, after uvicorn's graceful shutdown."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


def die_with_supervisor() -> None:
    """In a child of `parley serve`: get SIGTERM (a graceful stop) when the supervisor dies,
    even by SIGKILL, so no API or worker process of a killed supervisor keeps serving, answering
    messages or holding the embedded PostgreSQL (Linux `PR_SET_PDEATHSIG`)."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor is None:
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def leave_metrics() -> None:
    """At the end of a child of `parley serve`: its live gauges (subscribers, follower
    positions) leave the shared metrics directory with it; its counters stay in the sums."""
    if SUPERVISOR_ENV in os.environ and "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(os.getpid())


def settle_garbage_collector() -> None:
    """Once started: what the process has built so far (schema, modules, pools) lives as long
    as it does, so the cyclic collector stops walking it (`gc.freeze`), and collects the young
    generation less often. A request allocates thousands of objects; with the default threshold
    (700) the collector ran several times per request over every long-lived object: measured
    under a sendMessage load, a third of an API process's CPU and a fifth of the worker's, down
    to under a tenth with this. A higher threshold would save a little more at the price of
    longer pauses (a young-generation collection of 100,000 objects takes some 0.1-0.2 s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


class InstanceHeader:
    """`X-Parley-Instance` on every HTTP response and WebSocket handshake."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-parley-instance", INSTANCE.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_named)


class WorkerProcess:
    """`parley worker all` as a child process, restarted when it dies."""

    def __init__(self, env: dict[str, str], metrics_port: int) -> None:
        self._args = [sys.executable, "-m", "api.cli", "worker", "all"]
        self._args += ["--metrics-port", str(metrics_port)]
        self._env = env
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher = threading.Thread(target=self._watch, name="worker-watch", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                log.warning("the worker process did not stop within 30 s; killing it")
                proc.kill()
                proc.wait()
        self._watcher.join(timeout=5)

    def _spawn(self) -> None:
        # Its log lines go where the supervisor's go.
        self._proc = subprocess.Popen(self._args, env=self._env)
        log.info("worker process %d started (followers and retention)", self._proc.pid)

    def _watch(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            assert self._proc is not None
            code = self._proc.wait()
            multiprocess.mark_process_dead(self._proc.pid)  # its live gauges go with it
            if self._stopping.is_set():
                return
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            failures += 1
            log.error(
                "worker process %d exited with code %s; restarting it in %.0f s",
                self._proc.pid,
                code,
                delay,
            )
            if self._stopping.wait(delay):
                return
            self._spawn()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How every API process serves, one or many."""
    return {
        "log_level": settings.log_level.lower(),
        # The sans-I/O protocol keeps timers instead of four asyncio tasks per connection
        # (~64 vs ~70 KiB per connection at 2,000 subscribers, docs/performance.md).
        "ws": "websockets-sansio",
        "ws_max_size": settings.ws_max_message_bytes,
        "ws_per_message_deflate": settings.ws_compression,
        "server_header": False,  # no server name or version to fingerprint
    }


def default_api_processes() -> int:
    """One API process per core this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


def serve_processes(
    settings: Settings, host: str, port: int, api_processes: int, worker_metrics_port: int
) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from infra.identity.master_key import MasterKey
    from infra.migrations import migrate
    from infra.postgres import EmbeddedPostgres

    embedded = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir, owner=True)
        migrate(embedded.start())
    # The key file, once: children that find none would each generate another.
    MasterKey.from_setting(
        settings.master_key.get_secret_value() if settings.master_key else None,
        settings.data_dir,
    )
    metrics_dir = tempfile.mkdtemp(prefix="parley-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before any child imports the client
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    worker = None
    if settings.run_workers:
        worker = WorkerProcess(dict(os.environ), worker_metrics_port)
        worker.start()
    os.environ["PARLEY_RUN_WORKERS"] = "false"  # the API processes: followers run in the worker
    log.info(
        "serving on http://%s:%d/ (web client; GraphQL at /graphql): %d API process%s and %s",
        host,
        port,
        api_processes,
        "" if api_processes == 1 else "es",
        "a worker process" if worker else "no worker (PARLEY_RUN_WORKERS=false)",
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # handler it found: ours turns it into an exception, so the worker and PostgreSQL are stopped
    # below instead of the process dying with them still running.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    # Always uvicorn's process supervisor, one API process too: the supervisor itself never
    # serves (it imported the metrics client before PROMETHEUS_MULTIPROC_DIR was set, so what
    # it counted would be missing from /metrics).
    config = uvicorn.Config(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=api_processes,
        **uvicorn_options(settings),
    )
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    except _Stopped:
        pass
    finally:
        sock.close()
        if worker is not None:
            worker.stop()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info(
            "stopped: API processes%s%s",
            ", worker process" if worker else "",
            ", PostgreSQL" if embedded else "",
        )
    return 0
