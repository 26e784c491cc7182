"""Installs are reproducible: `make` installs exactly what requirements/lock.txt pins (with
hashes), and the lock satisfies pyproject.toml's ranges, so only a commit can change what a
fresh machine gets (an upstream release once turned main red between two commits)."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [ROOT / "requirements" / "lock.txt", ROOT / "requirements" / "runtime.txt"]


def pinned(lock: Path) -> dict[str, list[tuple[str, str]]]:
    """name → [(version, marker)] for every `name==version ; marker` the lock holds."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in lock.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+))?", line):
            name = canonicalize_name(match.group(1).split("[")[0])
            pins.setdefault(name, []).append((match.group(2), (match.group(3) or "").strip()))
    return pins


def requirements(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(r) for r in wanted]


@pytest.mark.parametrize(("lock", "extra"), [(LOCKS[0], "dev"), (LOCKS[1], None)])
def test_the_lock_pins_every_requirement_within_pyprojects_range(
    lock: Path, extra: str | None
) -> None:
    pins = pinned(lock)
    environment = default_environment()
    for requirement in requirements(extra):
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{lock.name} does not pin {requirement.name}: run make lock"
        for version, _ in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock.name} pins {requirement.name}=={version} outside {requirement}"
            )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_carries_hashes(lock: Path) -> None:
    text = lock.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for entry in entries:
        if "==" in entry.split("\n")[0]:
            assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash"


def test_the_runtime_lock_takes_the_dev_locks_versions() -> None:
    dev, runtime = (pinned(lock) for lock in LOCKS)
    for name, versions in runtime.items():
        assert set(versions) <= set(dev.get(name, [])), f"{name}: {versions} vs {dev.get(name)}"


def test_make_installs_from_the_lock_and_nothing_else() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line.strip() for line in makefile.splitlines() if "pip install" in line]
    assert installs, "the Makefile installs nothing"
    for line in installs:
        # Either the lock itself (hashes required) or Parley alone, without resolving anything.
        assert "--no-deps" in line, line
        from_lock = "--require-hashes" in line and line.endswith("-r $(LOCK)")
        assert from_lock or line.endswith("--no-build-isolation -e ."), line
