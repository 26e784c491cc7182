"""Redis from the operating system's `redis-server` (installed with apt-get when missing)."""

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from infra.services.base import LocalService, ServiceError


def ensure_redis_installed() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(
            "redis-server is not installed; install it with your package manager "
            "(Debian/Ubuntu: sudo apt-get install redis-server)"
        )
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
        done = subprocess.run(
            step,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            raise ServiceError(f"`{' '.join(step)}` failed:\n{done.stderr[-2000:]}")
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError("apt-get installed redis-server but it is not on PATH")
    return found


class RedisService(LocalService):
    name = "redis"
    start_timeout = 30.0

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root)
        self.port = port

    @cached_property
    def version(self) -> str:
        exe = shutil.which("redis-server")
        if not exe:
            return "not installed"
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        for word in out.split():
            if word.startswith("v="):
                return word[2:]
        return out.strip() or "unknown"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"PARLEY_REDIS_URL": f"redis://127.0.0.1:{self.port}/0"}

    def ports(self) -> Sequence[int]:
        return (self.port,)

    def prepare(self) -> None:
        ensure_redis_installed()
        self.__dict__.pop("version", None)

    def command(self) -> Sequence[str]:
        return [
            ensure_redis_installed(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",  # persistence off: a cache and a fan-out bus, nothing to keep
            "--appendonly",
            "no",
            "--logfile",
            "",
            "--daemonize",
            "no",
        ]

    def check(self) -> str | None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
        except OSError as e:
            return str(e)
        return None if reply.startswith(b"+PONG") else f"unexpected reply {reply!r}"
