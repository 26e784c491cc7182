"""Documents' bytes, in PostgreSQL, encrypted under each document's data key.

A document's key is a data key like a chat's (`infra/eventstore/data_keys.py`): its id is the
document's, its owner the uploader (none for the tenant's collection), so erasing the uploader
destroys it with their chats' keys, and deleting the document destroys it alone. The bytes are
sealed with AES-256-GCM, bound to the document's id, so they cannot be moved under another id.
Once the key is gone the bytes are noise; Parley deletes them too (the knowledge projection, on
Deleted and on the owner's erasure), so they do not linger in backups taken later.
"""

import os
from collections.abc import Iterable
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg_pool import ConnectionPool

from infra.eventstore.data_keys import DataKeys, Subject

_NONCE = 12


def subject(document_id: UUID, tenant_id: UUID, owner_id: UUID | None) -> Subject:
    return Subject(document_id, tenant_id, owner_id, "document")


class DocumentBlobs:
    def __init__(self, pool: ConnectionPool, keys: DataKeys) -> None:
        self._pool = pool
        self._keys = keys

    def put(self, owner: Subject, data: bytes) -> bool:
        """Keep the document's bytes (once: a retried upload keeps the first); whether these
        were stored (False: the document had bytes already)."""
        key = self._keys.for_writing(owner)
        nonce = os.urandom(_NONCE)
        sealed = nonce + AESGCM(key).encrypt(nonce, data, _aad(owner.key_id))
        with self._pool.connection() as conn:
            inserted = conn.execute(
                """INSERT INTO document_blobs (document_id, tenant_id, sealed) VALUES (%s, %s, %s)
                   ON CONFLICT (document_id) DO NOTHING""",
                (owner.key_id, owner.tenant_id, sealed),
            ).rowcount
        return inserted == 1

    def get(self, document_id: UUID) -> bytes | None:
        """The bytes; None once the document was deleted or its owner erased."""
        key = self._keys.get(document_id)
        if key is None:
            return None
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT sealed FROM document_blobs WHERE document_id = %s", (document_id,)
            ).fetchone()
        if row is None:
            return None
        sealed = bytes(row[0])
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(document_id))

    def erased(self, document_id: UUID) -> bool:
        """The document's key was destroyed (deleted, expired, its owner erased)."""
        return self._keys.destroyed(document_id)

    def delete(self, document_ids: Iterable[UUID]) -> int:
        ids = list(document_ids)
        if not ids:
            return 0
        with self._pool.connection() as conn:
            return conn.execute(
                "DELETE FROM document_blobs WHERE document_id = ANY(%s)", (ids,)
            ).rowcount

    def of_owner(self, tenant_id: UUID, owner_id: UUID) -> list[UUID]:
        """The documents whose key the user owns (their personal documents)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT key_id FROM data_keys
                   WHERE tenant_id = %s AND owner_id = %s AND kind = 'document'""",
                (tenant_id, owner_id),
            ).fetchall()
        return [r[0] for r in rows]


def _aad(document_id: UUID) -> bytes:
    return f"document:{document_id}".encode()
