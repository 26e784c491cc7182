"""The audit ledger's tables in Postgres: chain rows, signed checkpoints, public keys.

All append-only: triggers refuse UPDATE, DELETE and TRUNCATE on them and on the events table.
"""

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection

from infra.audit.chain import Checkpoint, SigningKey
from infra.eventstore.event_store import EVENTS_TABLE

LEDGER_NAME = "audit"
NOTIFY_CHANNEL = "parley_audit"

_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION parley_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA,
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def append_only_ddl(table: str) -> str:
    trigger = f"{table}_append_only"
    return f"""
DROP TRIGGER IF EXISTS {trigger} ON {table};
CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION parley_refuse_change();
DROP TRIGGER IF EXISTS {trigger}_truncate ON {table};
CREATE TRIGGER {trigger}_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION parley_refuse_change();
"""


DDL = (
    """
CREATE TABLE IF NOT EXISTS audit_chain (
    position bigint PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    tenant_id uuid,
    topic text NOT NULL,
    leaf bytea NOT NULL,
    chain bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_chain_aggregate ON audit_chain (originator_id, originator_version);
CREATE INDEX IF NOT EXISTS audit_chain_tenant ON audit_chain (tenant_id, position);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq bigint PRIMARY KEY,
    from_position bigint NOT NULL,
    to_position bigint NOT NULL UNIQUE,
    count integer NOT NULL,
    merkle_root bytea NOT NULL,
    chain_hash bytea NOT NULL,
    previous bytea NOT NULL,
    created_at timestamptz NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_keys (
    key_id text PRIMARY KEY,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
    + _APPEND_ONLY
    + "".join(
        append_only_ddl(t) for t in (EVENTS_TABLE, "audit_chain", "audit_checkpoints", "audit_keys")
    )
)


def tenant_in_state(state: bytes) -> UUID | None:
    """The plaintext tenant id every Parley event carries (None if absent or unreadable)."""
    try:
        value = json.loads(state).get("tenant_id")
        return UUID(value["_data_"] if isinstance(value, dict) else value) if value else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def tenant_of(event: Any) -> UUID | None:
    tenant = getattr(event, "tenant_id", None)
    return tenant if isinstance(tenant, UUID) else None


def register_key(conn: Connection[Any], key: SigningKey) -> None:
    conn.execute(
        "INSERT INTO audit_keys (key_id, public_key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (key.key_id, key.public_bytes),
    )


def public_keys(conn: Connection[Any]) -> dict[str, bytes]:
    rows = conn.execute("SELECT key_id, public_key FROM audit_keys").fetchall()
    return {key_id: bytes(public) for key_id, public in rows}


_CHECKPOINT_COLUMNS = (
    "seq, from_position, to_position, count, merkle_root, chain_hash, previous, created_at, "
    "key_id, signature"
)


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    seq, frm, to, count, root, chain, previous, created, key_id, signature = row
    return Checkpoint(
        seq=seq,
        from_position=frm,
        to_position=to,
        count=count,
        merkle_root=bytes(root),
        chain_hash=bytes(chain),
        previous=bytes(previous),
        created_at=created,
        key_id=key_id,
        signature=bytes(signature),
    )


def load_checkpoints(
    conn: Connection[Any], *, after_seq: int = 0, to_position: int | None = None
) -> list[Checkpoint]:
    rows = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > %s"
        " AND (%s::bigint IS NULL OR to_position <= %s) ORDER BY seq",
        (after_seq, to_position, to_position),
    ).fetchall()
    return [checkpoint_from_row(r) for r in rows]


def last_checkpoint(conn: Connection[Any]) -> Checkpoint | None:
    row = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return checkpoint_from_row(row) if row else None


def insert_checkpoint(conn: Connection[Any], cp: Checkpoint) -> None:
    conn.execute(
        f"INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            cp.seq,
            cp.from_position,
            cp.to_position,
            cp.count,
            cp.merkle_root,
            cp.chain_hash,
            cp.previous,
            cp.created_at,
            cp.key_id,
            cp.signature,
        ),
    )
