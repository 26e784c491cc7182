"""Where the `knowledge` benchmark's indexes live: each engine opened on throw-away storage of its
own (a scratch PostgreSQL database, an Elasticsearch index named after the run), removed at the
end unless `--keep`. Each engine is the adapter production uses, built as the composition root
builds it; an engine whose adapter or server is missing is reported, not measured."""

import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.database import postgres_info, scratch_database
from bench.services import elasticsearch_url
from infra.knowledge.index import KnowledgeIndex
from infra.postgres import open_pool
from infra.settings import Settings

ADAPTERS = {
    "postgres": "infra.knowledge.index_postgres",
    "elasticsearch": "infra.knowledge.index_elasticsearch",
}


class EngineUnavailable(RuntimeError):
    """The engine cannot be measured: its adapter is not there or its server does not answer."""


@dataclass
class Opened:
    """An engine's index for one run, and what the record says about its server."""

    index: KnowledgeIndex
    server: dict[str, Any] = field(default_factory=dict)
    settle: Callable[[], None] | None = None
    """Makes every acknowledged write searchable now (Elasticsearch: a refresh; PostgreSQL
    needs nothing: a committed write is searched)."""


Opener = Callable[[Settings, str, int, bool], AbstractContextManager[Opened]]
"""(settings, model, dimensions, keep) -> the engine's index for the run."""


def adapter_missing(engine: str) -> str | None:
    """Why the engine's adapter cannot be used, if it cannot."""
    module = ADAPTERS[engine]
    if importlib.util.find_spec(module) is None:
        return f"{module.replace('.', '/')}.py does not exist yet"
    return None


@contextmanager
def postgres(settings: Settings, model: str, dimensions: int, keep: bool) -> Iterator[Opened]:
    """`PostgresKnowledge` on a scratch database (migrated: the knowledge tables included), with
    one pool for writes and reads as the composition root gives it (reads take the reader role
    per transaction)."""
    from infra.knowledge.index_postgres import PostgresKnowledge

    with scratch_database(keep=keep) as target:
        pool = open_pool(target.conninfo(), size=4, name="bench-knowledge")
        try:
            index = PostgresKnowledge(pool, pool, model, dimensions)
            yield Opened(index, {**postgres_info(target), "database": target.dbname})
        finally:
            pool.close()


@contextmanager
def elasticsearch(settings: Settings, model: str, dimensions: int, keep: bool) -> Iterator[Opened]:
    """`ElasticsearchKnowledge` on an index of the run's own."""
    from elasticsearch import Elasticsearch

    from bench.projections_search import elasticsearch_version
    from infra.knowledge.index_elasticsearch import ElasticsearchKnowledge

    url = elasticsearch_url(settings)
    client = Elasticsearch(url, request_timeout=120)
    alias = f"parley-bench-knowledge-{uuid.uuid4().hex[:8]}"
    try:
        version = elasticsearch_version(client)
        if version is None:
            raise EngineUnavailable(f"no Elasticsearch answers at {url}")
        index = ElasticsearchKnowledge(client, alias, model, dimensions)
        serving = index.ensure(shards=settings.elasticsearch_shards, replicas=0)
        print(f"bench index {serving} on {url}", file=sys.stderr)
        try:
            yield Opened(index, {"version": version, "index": serving}, index.refresh)
        finally:
            if keep:
                print(f"kept index {serving}", file=sys.stderr)
            else:
                client.options(ignore_status=404).indices.delete(index=serving)
    finally:
        client.close()


OPENERS: dict[str, Opener] = {"postgres": postgres, "elasticsearch": elasticsearch}
