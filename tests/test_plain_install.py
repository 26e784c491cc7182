"""Every `parley` command works on a plain install: Parley's own dependencies
(requirements/runtime.txt) without the dev tools (pytest, gql, hypothesis, …). The tests run
in the dev environment, so each check runs in a subprocess that cannot import what a plain
install lacks, nor the test suite (`parley bench gateway` once imported `tests.conftest`, and
with it pytest)."""

import importlib.metadata
import os
import pkgutil
import re
import subprocess
import sys

import pytest

from bench.__main__ import BENCHMARKS
from testbed.processes import PARLEY, ROOT

# Installed as sitecustomize in every Python the check starts (the CLI runs benchmarks in a
# child process), so the child cannot import the blocked modules either.
BLOCKER = """
import importlib.abc, os, sys

_BLOCKED = set(os.environ["BLOCKED_MODULES"].split(","))


class _NotInAPlainInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"{name!r} is not in a plain install", name=name)
        return None


sys.meta_path.insert(0, _NotInAPlainInstall())
"""


def locked(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {_normal(m) for m in re.findall(r"^([A-Za-z0-9_.\-]+)==", text, re.M)}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_only_modules() -> set[str]:
    """Top-level modules that only the dev tools' distributions provide, and the test suite."""
    dev_only = locked("lock.txt") - locked("runtime.txt")
    blocked = {"tests"}
    for module, dists in importlib.metadata.packages_distributions().items():
        if dists and all(_normal(d) in dev_only for d in dists):
            blocked.add(module)
    return blocked


@pytest.fixture(scope="module")
def plain_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("plain-install")
    (site / "sitecustomize.py").write_text(BLOCKER)
    blocked = dev_only_modules()
    assert {"pytest", "gql", "hypothesis"} <= blocked  # the check blocks what it means to
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "BLOCKED_MODULES": ",".join(sorted(blocked)),
        "PARLEY_DATA_DIR": str(site / "data"),
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_check_itself_refuses_the_dev_tools(plain_env: dict[str, str]) -> None:
    done = run(plain_env, sys.executable, "-c", "import pytest")
    assert done.returncode != 0 and "is not in a plain install" in done.stderr


def test_every_benchmark_and_testbed_module_imports_without_the_dev_tools(
    plain_env: dict[str, str],
) -> None:
    modules = [
        info.name
        for package in ("bench", "testbed")
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")
        if not info.name.endswith("__main__")
    ]
    assert "bench.gateway" in modules and "testbed.llm_fakes.openai" in modules
    script = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
    done = run(plain_env, sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
def test_parley_bench_runs_each_benchmark_without_the_dev_tools(
    plain_env: dict[str, str], benchmark: str
) -> None:
    done = run(plain_env, *PARLEY, "bench", benchmark, "--", "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage" in done.stdout.lower()


def test_every_parley_command_parses_without_the_dev_tools(plain_env: dict[str, str]) -> None:
    script = """
import argparse
from api.cli import build_parser

parser = build_parser()
commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
for name in commands.choices:
    try:
        parser.parse_args([name, "--help"])
    except SystemExit as e:
        assert e.code == 0, name
print(len(commands.choices))
"""
    done = run(plain_env, sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 10
