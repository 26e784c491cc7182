"""`parley serve` on a scratch database, for the benchmarks that measure a running server
(its own module: it brings in the tests' server harness, which the in-process benchmarks do not
need)."""

import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.database import create_scratch_database, drop_database, server_url
from infra.postgres import PostgresTarget
from infra.settings import Settings
from testbed.processes import Server, target_url


@contextmanager
def scratch_server(
    name: str, env: Mapping[str, str], *, keep: bool = False
) -> Iterator[tuple[Server, PostgresTarget]]:
    """A started `parley serve` with `env` on a new scratch database; on the way out it is
    stopped (its log's last lines printed if the benchmark failed) and the database and its data
    directory are removed, unless `keep`."""
    target = create_scratch_database(server_url(Settings()), "parley_bench")
    data_dir = Path(tempfile.mkdtemp(prefix=f"parley-bench-{name}-"))
    server = Server(data_dir, {**env, "PARLEY_DATABASE_URL": target_url(target)})
    try:
        server.start()
        print(f"parley serve at {server.url} on database {target.dbname}", file=sys.stderr)
        yield server, target
    except BaseException:
        if server.log.exists():
            tail = server.log.read_text(errors="replace").splitlines()[-20:]
            print("parley serve's log, last lines:\n  " + "\n  ".join(tail), file=sys.stderr)
        raise
    finally:
        server.stop()
        if keep:
            print(f"kept database {target.dbname} and {data_dir}", file=sys.stderr)
        else:
            drop_database(target)
            shutil.rmtree(data_dir, ignore_errors=True)
