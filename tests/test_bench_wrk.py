"""The api benchmark's load generator: reading wrk's figures from its output, and the CPU seconds
by process that every run reports."""

import os
import subprocess
import sys

import pytest

from bench import cpu, wrk

# A real run of wrk 4.1.0 (Debian) with the script of `wrk.script`: two bodies, one of them
# answered with GraphQL errors.
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:18777/graphql
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   728.41us  478.43us   8.46ms   91.29%
    Req/Sec     2.89k   758.70     4.41k    63.64%
  6322 requests in 1.10s, 0.90MB read
Requests/sec:   5749.73
Transfer/sec:    834.55KB
WRK_RESULT {"requests": 6322, "duration_us": 1099529, "connect": 0, "read": 0, "write": 0, \
"status": 0, "timeout": 0, "failed": 3252, "p50_us": 650, "p99_us": 2498, "max_us": 8459, \
"mean_us": 728.4}
"""


def test_wrk_figures_are_read_from_the_line_its_script_prints() -> None:
    result = wrk.parse(WRK_OUTPUT)

    assert result.requests == 6322
    assert result.seconds == pytest.approx(1.099529)
    assert result.rps == pytest.approx(5749.7, abs=0.1)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (0.65, 2.498, 8.459)
    assert result.errors == 3252


def test_wrk_output_without_the_scripts_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="WRK_RESULT"):
        wrk.parse(WRK_OUTPUT.split("WRK_RESULT")[0])


def test_lua_strings_escape_every_byte_that_is_not_a_letter_or_digit() -> None:
    assert wrk.lua_string('a"1 é') == '"a\\0341\\032\\195\\169"'


def test_the_cpu_of_a_process_tree_includes_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in cpu.process_tree(os.getpid())
        seconds = cpu.tree_cpu_seconds(os.getpid())
        assert seconds is not None and seconds > 0
    finally:
        child.kill()
        child.wait()


def test_cpu_used_between_two_snapshots_is_none_where_a_process_is_missing() -> None:
    used = cpu.used({"server": 1.0, "postgres": None}, {"server": 3.5, "postgres": 2.0})

    assert used == {"server": 2.5, "postgres": None}
