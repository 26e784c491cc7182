"""The audit ledger's tables in Postgres: chain rows, signed checkpoints, public keys.

All append-only: triggers refuse UPDATE, DELETE and TRUNCATE on them and on the events table
(created with the tables in `infra/migrations.py`).
"""

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection

from infra.audit.chain import Checkpoint, SigningKey

LEDGER_NAME = "audit"
NOTIFY_CHANNEL = "parley_audit"


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
