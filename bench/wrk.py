"""`wrk` (Debian's package, C and LuaJIT) as a load generator that leaves the servers the machine:
the Lua script of a run generated from the requests to send, the run, and its figures, which the
script's `done` prints as one machine-readable line."""

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL = (
    "the api benchmark drives the servers with wrk, which is not installed: "
    "`apt-get install wrk` (Debian/Ubuntu; `brew install wrk` on macOS), "
    "or run it with `--load-generator httpx`"
)
MARK = "WRK_RESULT "


@dataclass(frozen=True)
class Requests:
    """What a load generator sends: `bodies` in turn (one per connection's turn; an empty one for
    a GET), all with the same method, path and headers."""

    method: str
    path: str
    bodies: tuple[str, ...]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class LoadResult:
    """What a load generator measured."""

    requests: int
    seconds: float
    errors: int
    """Failed connections, reads, writes, timeouts, and answers that were not 200 or held a
    GraphQL `errors` key."""
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def wrk_path() -> str:
    """Where wrk is; SystemExit with how to install it when it is not."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(INSTALL)
    return path


def version() -> str:
    """wrk's version line."""
    done = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True, timeout=30)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def lua_string(text: str) -> str:
    """A Lua 5.1 string literal of `text` (every byte that is not a letter or digit escaped)."""
    return (
        '"'
        + "".join(chr(b) if b < 128 and chr(b).isalnum() else f"\\{b:03d}" for b in text.encode())
        + '"'
    )


def script(requests: Requests, threads: int) -> str:
    """The Lua script: each thread cycles over its share of the bodies (the requests formatted
    once, in `init`), counts answers that are not 200 or carry GraphQL errors, and `done` prints
    the figures as one JSON line after MARK (latencies in microseconds)."""
    headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in requests.headers.items())
    bodies = ", ".join(lua_string(b) for b in requests.bodies)
    return f"""
local THREADS = {threads}
local method, path = {lua_string(requests.method)}, {lua_string(requests.path)}
local headers = {{ {headers} }}
local bodies = {{ {bodies} }}
local threads = {{}}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  failed = 0
  local mine = {{}}
  for i, body in ipairs(bodies) do
    if #bodies < THREADS or (i - 1) % THREADS == id then
      local b = nil
      if body ~= "" then b = body end
      table.insert(mine, wrk.format(method, path, headers, b))
    end
  end
  formatted, turn = mine, 0
end

function request()
  turn = turn % #formatted + 1
  return formatted[turn]
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failed") end
  local e = summary.errors
  io.write(string.format(
    '{MARK}{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "failed": %d, "p50_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, failed,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
"""


def parse(output: str) -> LoadResult:
    """The figures of wrk's output: the line the script's `done` printed."""
    for line in output.splitlines():
        if line.startswith(MARK):
            f = json.loads(line[len(MARK) :])
            # A non-200 answer is counted by wrk (status) and by the script (failed): once.
            errors = f["connect"] + f["read"] + f["write"] + f["timeout"] + f["failed"]
            return LoadResult(
                requests=f["requests"],
                seconds=f["duration_us"] / 1e6,
                errors=errors,
                p50_ms=f["p50_us"] / 1000,
                p99_ms=f["p99_us"] / 1000,
                max_ms=f["max_us"] / 1000,
                mean_ms=f["mean_us"] / 1000,
            )
    raise ValueError(f"no {MARK.strip()} line in wrk's output:\n{output[-2000:]}")


def run(
    url: str,
    requests: Requests,
    *,
    connections: int,
    threads: int,
    seconds: float,
    cpus: Sequence[int] = (),
) -> LoadResult:
    """wrk against `url` for `seconds` (whole seconds, at least one), pinned to `cpus` if any."""
    threads = min(threads, connections)
    with tempfile.TemporaryDirectory(prefix="parley-bench-wrk-") as tmp:
        lua = Path(tmp) / "requests.lua"
        lua.write_text(script(requests, threads))
        command = [
            wrk_path(),
            f"--connections={connections}",
            f"--threads={threads}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=60s",
            f"--script={lua}",
            url + requests.path,
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            preexec_fn=(lambda: os.sched_setaffinity(0, set(cpus))) if cpus else None,
        )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return parse(done.stdout)
