"""The `projections` benchmark's Elasticsearch part: the search index caught up batched (one bulk
request per batch) and one bulk request per event, each into a throw-away index, riding out a
shared server that restarts mid-run; and the check that each index holds what the load wrote."""

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from elasticsearch import Elasticsearch
from elasticsearch import exceptions as es_errors
from eventsourcing.persistence import Notification
from psycopg_pool import ConnectionPool

from bench.database import Expected, Handle, catch_up
from bench.report import CatchUp
from infra.eventstore.event_store import EventStore

# The benchmark's own logger: its lines read as `bench.projections` whichever part writes them.
log = logging.getLogger("bench.projections")

OUTAGE_ATTEMPTS = 5
OUTAGE_WAIT_SECONDS = 300


class OutageTolerant:
    """A search projection's `handle` for a shared server that may be restarted mid-run (the
    test suite stops and starts it): wait until it is back and retry the batch, which the
    projection makes harmless, and account the wait apart from the measured time."""

    def __init__(self, handle: Handle, client: Elasticsearch, index: str) -> None:
        self._handle = handle
        self._client = client
        self._index = index
        self.interruptions = 0
        self.outage_seconds = 0.0

    def __call__(self, batch: Sequence[Notification]) -> None:
        for attempt in range(1, OUTAGE_ATTEMPTS + 1):
            try:
                self._handle(batch)
                return
            except Exception as e:
                if attempt == OUTAGE_ATTEMPTS or not _unavailable(e):
                    raise
                log.warning("Elasticsearch unavailable (%s); waiting to retry", type(e).__name__)
                started = time.perf_counter()
                self._wait_until_back()
                self.interruptions += 1
                self.outage_seconds += time.perf_counter() - started

    def measured(self, run: CatchUp) -> CatchUp:
        return replace(
            run,
            seconds=run.seconds - self.outage_seconds,
            interruptions=self.interruptions,
            outage_seconds=self.outage_seconds,
        )

    def _wait_until_back(self) -> None:
        deadline = time.monotonic() + OUTAGE_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                health = self._client.cluster.health(
                    index=self._index, wait_for_status="yellow", timeout="10s"
                )
                if not health["timed_out"]:
                    return
            except (es_errors.TransportError, es_errors.ApiError):
                time.sleep(1)
        raise TimeoutError(f"Elasticsearch did not come back within {OUTAGE_WAIT_SECONDS}s")


def _unavailable(e: Exception) -> bool:
    """Failures that a server going away causes (refused connections, unavailable shards)."""
    from projections.search_index import SearchIndexingFailed

    if isinstance(e, es_errors.ApiError):
        return e.meta.status in (429, 503)
    return isinstance(e, es_errors.TransportError | SearchIndexingFailed)


def bench_search_index(
    store: EventStore, pool: ConnectionPool, client: Elasticsearch, batch: int, run_id: str
) -> tuple[dict[str, CatchUp], dict[str, dict[str, int]]]:
    """Batched (one bulk request per batch) vs one bulk request per event, each into a test
    index of its own, deleted afterwards; return the runs and the documents each index holds."""
    from projections.search_index import SearchProjection, ensure_index, index_name

    aliases = {mode: f"parley-bench-{run_id}-{mode}" for mode in ("batched", "per-event")}
    runs: dict[str, CatchUp] = {}
    documents: dict[str, dict[str, int]] = {}
    try:
        for mode, alias in aliases.items():
            ensure_index(client, alias, 1)
            projection = SearchProjection(store, pool, client, alias, name=f"search-bench-{mode}")
            handle = OutageTolerant(projection.handle, client, alias)
            run = catch_up(
                store,
                handle,
                batch=batch,
                per_event=mode == "per-event",
                label=f"elasticsearch {mode}",
            )
            runs[mode] = handle.measured(run)
            client.indices.refresh(index=alias)
            documents[mode] = {
                kind: int(client.count(index=alias, query={"term": {"kind": kind}})["count"])
                for kind in ("message", "chat_title")
            }
    finally:
        for alias in aliases.values():
            try:
                client.options(ignore_status=404).indices.delete(index=index_name(alias, 1))
            except es_errors.TransportError:
                print(f"could not delete the index {index_name(alias, 1)}", file=sys.stderr)
    return runs, documents


def verify_search_index(documents: dict[str, dict[str, int]], expected: Expected) -> list[str]:
    """Each index holds one document per message and one per chat."""
    wanted = {"message": expected.messages, "chat_title": expected.chats}
    return [
        f"elasticsearch {mode}: {got[kind]} {kind} documents, the load wrote {n}"
        for mode, got in documents.items()
        for kind, n in wanted.items()
        if got[kind] != n
    ]


def elasticsearch_version(client: Elasticsearch) -> str | None:
    """The server's version, or None when it does not answer (`GET /` is not served)."""
    try:
        nodes = client.nodes.info(node_id="_local", metric="_none")
    except (es_errors.TransportError, es_errors.ApiError):
        return None
    return str(next(iter(nodes["nodes"].values()))["version"])
