"""The `projections` benchmark's Postgres part: the read models caught up batched (the live
schema) and one transaction per event (a second generation, as a rebuild creates one), and the
check that both hold what the load wrote."""

from dataclasses import asdict
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from bench.database import Expected, catch_up
from bench.report import CatchUp
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import read_position
from infra.migrations import read_model_ddl, security_ddl
from infra.postgres import PostgresTarget
from infra.read_model_schema import PROJECTION_NAME, READ_SCHEMA
from projections.read_models import ReadModelProjection

BASELINE_SCHEMA = "readmodels_bench_per_event"
BASELINE_NAME = "read_models_bench_per_event"


def create_baseline_schema(target: PostgresTarget) -> None:
    """A second generation of the read models, as a rebuild creates one."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn, conn.transaction():
        conn.execute(read_model_ddl(BASELINE_SCHEMA))
        for statement in security_ddl(BASELINE_SCHEMA):
            conn.execute(statement)


def read_model_totals(conn: psycopg.Connection[Any], schema: str, name: str) -> dict[str, int]:
    """Row counts and usage sums of one generation of the read models, and its position."""
    columns = {
        "tenants": "SELECT count(*) FROM {s}.rm_tenants",
        "users": "SELECT count(*) FROM {s}.rm_users",
        "chats": "SELECT count(*) FROM {s}.rm_chats",
        "chat_message_count_sum": "SELECT sum(message_count) FROM {s}.rm_chats",
        "messages": "SELECT count(*) FROM {s}.rm_messages",
        "usage_rows": "SELECT count(*) FROM {s}.rm_usage",
        "user_messages": "SELECT sum(user_messages) FROM {s}.rm_usage",
        "assistant_messages": "SELECT sum(assistant_messages) FROM {s}.rm_usage",
        "input_tokens": "SELECT sum(input_tokens) FROM {s}.rm_usage",
        "output_tokens": "SELECT sum(output_tokens) FROM {s}.rm_usage",
        "latency_ms_sum": "SELECT sum(latency_ms_sum) FROM {s}.rm_usage",
    }
    query = sql.SQL("SELECT ") + sql.SQL(", ").join(
        sql.SQL("coalesce(({}), 0)").format(sql.SQL(q).format(s=sql.Identifier(schema)))
        for q in columns.values()
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    totals = {k: int(v) for k, v in zip(columns, row, strict=True)}
    totals["position"] = read_position(conn, name)
    return totals


def verify_read_models(target: PostgresTarget, expected: Expected, head: int) -> dict[str, Any]:
    """Both generations must equal each other and what the load wrote."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        batched = read_model_totals(conn, READ_SCHEMA, PROJECTION_NAME)
        per_event = read_model_totals(conn, BASELINE_SCHEMA, BASELINE_NAME)
    wanted = {**asdict(expected), "chat_message_count_sum": expected.messages, "position": head}
    problems = [
        f"{k}: batched has {v}, per event has {per_event[k]}"
        for k, v in batched.items()
        if v != per_event[k]
    ]
    problems += [
        f"{k}: the load wrote {v}, batched has {batched[k]}"
        for k, v in wanted.items()
        if batched[k] != v
    ]
    return {"batched": batched, "per_event": per_event, "expected": wanted, "problems": problems}


def bench_read_models(
    store: EventStore, pool: ConnectionPool, target: PostgresTarget, batch: int
) -> tuple[CatchUp, CatchUp]:
    """Batched into the live schema, then one transaction per event into a second schema."""
    batched = catch_up(
        store,
        ReadModelProjection(store, pool).handle,
        batch=batch,
        per_event=False,
        label="postgres batched",
    )
    create_baseline_schema(target)
    per_event = catch_up(
        store,
        ReadModelProjection(store, pool, schema=BASELINE_SCHEMA, name=BASELINE_NAME).handle,
        batch=batch,
        per_event=True,
        label="postgres per event",
    )
    return batched, per_event
