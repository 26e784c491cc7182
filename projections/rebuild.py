"""Rebuilding a projection from position 0 without downtime.

The new generation is built beside the live one (schema `readmodels_next`, position name
`read_models@rebuild`) while the live one keeps serving and keeps following the log. When the
copy is close to the head, one transaction takes the projection's lock (the live follower waits
at its next batch), applies the last events, swaps the schemas by renaming them and moves the
live position to the copy's. Readers resolve table names per query: they see the old
generation or the new one, never a half-built one. The old generation is dropped afterwards.
"""

import logging
import time
from collections.abc import Callable

from elasticsearch import Elasticsearch
from psycopg import sql
from psycopg_pool import ConnectionPool

from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import delete_position, move_position
from infra.migrations import (
    read_model_ddl,
    security_ddl,
)
from infra.read_model_schema import (
    PROJECTION_NAME,
    READ_SCHEMA,
    READ_SCHEMA_NEXT,
)
from projections.fencing import projection_lock
from projections.read_models import ReadModelProjection
from projections.search_index import PROJECTION_NAME as SEARCH
from projections.search_index import (
    SearchProjection,
    create_index,
    index_name,
    point_alias,
)

log = logging.getLogger(__name__)

REBUILD_SUFFIX = "@rebuild"
RETIRED_SCHEMA = "readmodels_retired"
SWAP_WITHIN = 2_000
"""Swap once the copy is this close to the head: the last stretch runs under the lock."""

Progress = Callable[[int, int], None]


def rebuild_read_models(
    store: EventStore, pool: ConnectionPool, *, batch_size: int = 1_000, progress: Progress
) -> int:
    """Rebuild the Postgres read models; return the position the new generation starts at."""
    name = PROJECTION_NAME + REBUILD_SUFFIX
    with pool.connection() as conn, conn.transaction():
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(READ_SCHEMA_NEXT))
        )
        conn.execute(read_model_ddl(READ_SCHEMA_NEXT))
        for statement in security_ddl(READ_SCHEMA_NEXT):
            conn.execute(statement)
        delete_position(conn, name)
    copy = ReadModelProjection(store, pool, schema=READ_SCHEMA_NEXT, name=name)
    log.info("rebuilding %s into %s", PROJECTION_NAME, READ_SCHEMA_NEXT)

    while True:
        head, position = store.head(), copy.position()
        progress(position, head)
        if head - position <= SWAP_WITHIN:
            break
        copy.handle(store.read(position, batch_size))

    started = time.monotonic()
    with pool.connection() as conn, conn.transaction():
        projection_lock(conn, PROJECTION_NAME)  # the live follower waits from here to commit
        position = copy.position()
        while batch := store.read(position, batch_size):
            copy.apply(conn, batch)
            position = batch[-1].id
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(RETIRED_SCHEMA))
        )
        conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(READ_SCHEMA), sql.Identifier(RETIRED_SCHEMA)
            )
        )
        conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(READ_SCHEMA_NEXT), sql.Identifier(READ_SCHEMA)
            )
        )
        move_position(conn, PROJECTION_NAME, position)
        delete_position(conn, name)
    progress(position, position)
    log.info(
        "swapped in the rebuilt %s at position %d (lock held %.2fs)",
        PROJECTION_NAME,
        position,
        time.monotonic() - started,
    )
    with pool.connection() as conn:  # waits for readers still on the old generation
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(RETIRED_SCHEMA))
        )
        conn.commit()
    return position


def rebuild_search(
    store: EventStore,
    pool: ConnectionPool,
    client: Elasticsearch,
    alias: str,
    *,
    shards: int = 1,
    replicas: int = 0,
    batch_size: int = 1_000,
    progress: Progress,
) -> int:
    """Rebuild the Elasticsearch index into a new versioned index and swap the alias.

    Same shape as the read models: build beside the live index, finish under the projection's
    lock, swap the alias in one atomic `_aliases` call, move the position."""
    existing = client.options(ignore_status=404).indices.get(index=f"{alias}-v*")
    versions = [
        int(name.rsplit("-v", 1)[1])
        for name in (existing.body if existing.meta.status == 200 else {})
        if name.rsplit("-v", 1)[1].isdigit()
    ]
    old = client.options(ignore_status=404).indices.get_alias(name=alias)
    serving = list(old.body) if old.meta.status == 200 else []
    new = index_name(alias, max(versions, default=0) + 1)
    create_index(client, new, shards=shards, replicas=replicas)
    staging = f"{alias}-rebuild"
    point_alias(client, staging, new)
    name = SEARCH + REBUILD_SUFFIX
    with pool.connection() as conn:
        delete_position(conn, name)
        conn.commit()
    copy = SearchProjection(store, pool, client, staging, name=name)
    log.info("rebuilding %s into %s", SEARCH, new)
    while True:
        head, position = store.head(), copy.position()
        progress(position, head)
        if head - position <= SWAP_WITHIN:
            break
        copy.handle(store.read(position, batch_size))

    with pool.connection() as conn, conn.transaction():
        projection_lock(conn, SEARCH)  # the live search follower waits from here to commit
        position = copy.position()
        while batch := store.read(position, batch_size):
            copy.index(batch)
            position = batch[-1].id
        # Searchable before readers arrive: else the first searches after the swap see the new
        # index as of its last periodic refresh (up to a second behind, or empty).
        client.indices.refresh(index=new)
        point_alias(client, alias, new)  # atomic: readers see the old index or the new one
        move_position(conn, SEARCH, position)
        delete_position(conn, name)
    progress(position, position)
    client.options(ignore_status=404).indices.delete_alias(index=new, name=staging)
    for index in serving:
        if index != new:
            client.options(ignore_status=404).indices.delete(index=index)
    log.info("swapped %s to %s at position %d", alias, new, position)
    return position
