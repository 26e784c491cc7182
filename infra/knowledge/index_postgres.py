"""The knowledge index in PostgreSQL: `PostgresKnowledge`, the embedded default.

Passages live in `knowledge.chunks` (infra/migrations.py), a row per passage and embedding
model. Words are ranked by PostgreSQL's full-text search; vectors by exact cosine similarity,
computed here with numpy (our PostgreSQL has no pgvector): each process keeps the current
vectors of a tenant as one float32 matrix and reloads it only when the tenant's change counter
(`knowledge.tenant_changes`, bumped by every write in its transaction) moved.

Writes go through the owner's pool (the knowledge projection). Every read is a transaction of
the reader role with the tenant set, so row-level security holds whatever a query says; the
queries name the tenant too.
"""

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg_pool import ConnectionPool

from infra.knowledge.index import CANDIDATES, ChunkRecord, Mode, Passage, Scope, fuse
from infra.lru import Lru
from infra.read_model_schema import READER_ROLE, TENANT_SETTING

_TEXT_SEARCH_CONFIG = "english"
"""As `knowledge.chunks.text_tsv` is built (infra/migrations.py)."""

_LOADING_LOCKS = 16
"""Threads that find a tenant's vectors out of date wait for one of them to load them."""

_PASSAGE_COLUMNS = (
    "chunk_id, document_id, revision, chunk_index, title, location, text, start_offset, end_offset"
)

# Bumps the counter of every model whose rows a delete removed (several models' projections
# share the table; each deletes, so whichever comes first empties the others' too).
_DELETE = """
WITH gone AS (
    DELETE FROM knowledge.chunks WHERE tenant_id = %(tenant)s AND {match} RETURNING model
)
INSERT INTO knowledge.tenant_changes (tenant_id, model, changed)
SELECT DISTINCT %(tenant)s::uuid, model, 1 FROM gone
ON CONFLICT (tenant_id, model) DO UPDATE SET changed = knowledge.tenant_changes.changed + 1
"""

_UPSERT = """
INSERT INTO knowledge.chunks (
    chunk_id, model, tenant_id, document_id, owner_id, revision, chunk_index, current, title,
    location, start_offset, end_offset, text, vector, position
) VALUES (
    %(chunk_id)s, %(model)s, %(tenant_id)s, %(document_id)s, %(owner_id)s, %(revision)s,
    %(index)s, %(current)s, %(title)s, %(location)s, %(start)s, %(end)s, %(text)s, %(vector)s,
    %(position)s
)
ON CONFLICT (chunk_id, model) DO UPDATE SET
    document_id = excluded.document_id, owner_id = excluded.owner_id,
    revision = excluded.revision, chunk_index = excluded.chunk_index,
    current = excluded.current, title = excluded.title, location = excluded.location,
    start_offset = excluded.start_offset, end_offset = excluded.end_offset,
    text = excluded.text, vector = excluded.vector, position = excluded.position
-- A replayed older write never overwrites newer state, nor another tenant's row.
WHERE knowledge.chunks.position <= excluded.position
    AND knowledge.chunks.tenant_id = excluded.tenant_id
"""


@dataclass(frozen=True)
class _Vectors:
    """A tenant's current vectors of one model, as of `changed`; row i is chunk_ids[i]."""

    changed: int
    matrix: npt.NDArray[np.float32]
    chunk_ids: list[UUID]
    owners: npt.NDArray[np.int32]
    """Index into owner_codes' keys; -1: the tenant's collection."""
    owner_codes: dict[UUID, int]
    documents: npt.NDArray[np.int32]
    document_codes: dict[UUID, int]

    def visible(self, scope: Scope) -> npt.NDArray[np.bool_] | None:
        """Which rows the scope may see; None: all of them."""
        mask: npt.NDArray[np.bool_] | None = None
        if scope.owner_id is not None:
            mine = self.owner_codes.get(scope.owner_id, -2)
            mask = (self.owners == -1) | (self.owners == mine)
        if scope.document_ids is not None:
            codes = [self.document_codes[d] for d in scope.document_ids if d in self.document_codes]
            chosen = np.isin(self.documents, np.array(codes, dtype=np.int32))
            mask = chosen if mask is None else mask & chosen
        return mask


class PostgresKnowledge:
    """The knowledge index in PostgreSQL (see the module); safe to share between threads."""

    def __init__(
        self,
        writer: ConnectionPool,
        reader: ConnectionPool,
        model: str,
        dimensions: int,
        *,
        cached_tenants: int = 32,
    ) -> None:
        """`writer` connects as the tables' owner; `reader` as a login that may `SET ROLE` to
        the reader role (the same login will do). `cached_tenants`: how many tenants' vectors
        this process keeps (each about passages × dimensions × 4 bytes)."""
        self.model = model
        self.dimensions = dimensions
        self._writer = writer
        self._reader = reader
        self._cache: Lru[UUID, _Vectors] = Lru(cached_tenants)
        self._loading = [threading.Lock() for _ in range(_LOADING_LOCKS)]

    # -- writes ----------------------------------------------------------------------------------

    def replace_document(
        self, tenant_id: UUID, document_id: UUID, revision: int, chunks: Sequence[ChunkRecord]
    ) -> None:
        rows = [self._row(tenant_id, document_id, revision, chunk) for chunk in chunks]
        position = max((c.position for c in chunks), default=None)
        with self._writer.connection() as conn, conn.transaction():
            self._lock_tenant(conn, tenant_id)
            newer = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM knowledge.chunks WHERE tenant_id = %s"
                " AND document_id = %s AND model = %s AND (revision > %s"
                " OR (revision = %s AND position > %s)))",
                (tenant_id, document_id, self.model, revision, revision, position),
            ).fetchone()
            # A replayed older write is stored (for citations) but never made current again.
            current = not (newer and newer[0])
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(_UPSERT, [{**row, "current": current} for row in rows])
            if current:
                conn.execute(
                    "UPDATE knowledge.chunks SET current = false WHERE tenant_id = %s"
                    " AND document_id = %s AND model = %s AND current AND revision <= %s"
                    " AND NOT (chunk_id = ANY(%s::uuid[]))"
                    " AND (%s::bigint IS NULL OR position <= %s)",
                    (
                        tenant_id,
                        document_id,
                        self.model,
                        revision,
                        [c.chunk_id for c in chunks],
                        position,
                        position,
                    ),
                )
            conn.execute(
                "INSERT INTO knowledge.tenant_changes (tenant_id, model, changed)"
                " VALUES (%s, %s, 1) ON CONFLICT (tenant_id, model)"
                " DO UPDATE SET changed = knowledge.tenant_changes.changed + 1",
                (tenant_id, self.model),
            )

    def delete_documents(self, tenant_id: UUID, document_ids: Iterable[UUID]) -> None:
        documents = list(document_ids)
        if documents:
            self._delete(tenant_id, "document_id = ANY(%(match)s::uuid[])", documents)

    def delete_owner(self, tenant_id: UUID, owner_id: UUID) -> None:
        self._delete(tenant_id, "owner_id = %(match)s", owner_id)

    def _delete(self, tenant_id: UUID, match: str, value: Any) -> None:
        """Every model's rows go: erasure leaves nothing behind, whichever index comes first."""
        with self._writer.connection() as conn, conn.transaction():
            self._lock_tenant(conn, tenant_id)
            conn.execute(_DELETE.format(match=match), {"tenant": tenant_id, "match": value})

    @staticmethod
    def _lock_tenant(conn: psycopg.Connection[Any], tenant_id: UUID) -> None:
        """One writer per tenant at a time: whether a newer revision exists stays true until
        the transaction commits."""
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('knowledge ' || %s::text, 0))",
            (tenant_id,),
        )

    def _row(
        self, tenant_id: UUID, document_id: UUID, revision: int, chunk: ChunkRecord
    ) -> dict[str, Any]:
        if (chunk.tenant_id, chunk.document_id, chunk.revision) != (
            tenant_id,
            document_id,
            revision,
        ):
            raise ValueError(f"passage {chunk.chunk_id} belongs to another document or revision")
        vector = np.asarray(chunk.vector, dtype="<f4")
        if vector.shape != (self.dimensions,) or not np.isfinite(vector).all():
            raise ValueError(
                f"passage {chunk.chunk_id}: expected {self.dimensions} finite numbers from "
                f"{self.model}, got shape {vector.shape}"
            )
        return {
            "chunk_id": chunk.chunk_id,
            "model": self.model,
            "tenant_id": tenant_id,
            "document_id": document_id,
            "owner_id": chunk.owner_id,
            "revision": revision,
            "index": chunk.index,
            "title": chunk.title,
            "location": chunk.location,
            "start": chunk.start,
            "end": chunk.end,
            "text": chunk.text,
            "vector": vector.tobytes(),
            "position": chunk.position,
        }

    # -- reads -----------------------------------------------------------------------------------

    def search(
        self,
        scope: Scope,
        text: str,
        vector: npt.NDArray[np.float32] | None,
        *,
        first: int = 5,
        mode: Mode = "hybrid",
    ) -> list[Passage]:
        if mode != "bm25" and vector is None:
            raise ValueError(f"a {mode} search needs the question's vector")
        if first <= 0 or scope.document_ids == frozenset():
            return []
        wanted = max(first, CANDIDATES) if mode == "hybrid" else first
        with self._tenant(scope.tenant_id) as cur:
            rankings: list[list[tuple[UUID, float]]] = []
            if mode != "vector":
                rankings.append(self._words(cur, scope, text, wanted))
            if mode != "bm25":
                assert vector is not None
                rankings.append(self._similar(cur, scope, vector, wanted))
            if mode == "hybrid":
                ranked = fuse([[chunk for chunk, _ in r] for r in rankings])[:first]
            else:
                ranked = rankings[0]
            found = self._fetch(cur, scope.tenant_id, [chunk for chunk, _ in ranked], current=True)
        return [_passage(found[chunk], score) for chunk, score in ranked if chunk in found]

    def passages(self, tenant_id: UUID, chunk_ids: Iterable[UUID]) -> dict[UUID, Passage]:
        wanted = list(dict.fromkeys(chunk_ids))
        if not wanted:
            return {}
        with self._tenant(tenant_id) as cur:
            rows = self._fetch(cur, tenant_id, wanted, current=False)
        return {chunk: _passage(row, 0.0) for chunk, row in rows.items()}

    @contextmanager
    def _tenant(self, tenant_id: UUID) -> Iterator[psycopg.Cursor[Any]]:
        """A read-only snapshot (the counter, the vectors and the passages agree) in which the
        reader role sees only `tenant_id`'s rows; a binary cursor (vectors arrive as bytes)."""
        with self._reader.connection() as conn, conn.transaction():
            conn.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                f" SET LOCAL ROLE {READER_ROLE}"
            )
            conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(tenant_id)))
            with conn.cursor(binary=True) as cur:
                yield cur

    def _words(
        self, cur: psycopg.Cursor[Any], scope: Scope, text: str, limit: int
    ) -> list[tuple[UUID, float]]:
        """Full-text ranking: passages holding any of the question's words (not all of them, as
        a question is asked in more words than a passage answers in)."""
        query = _any_word(text)
        if not query:
            return []
        where, params = self._scope_sql(scope)
        cur.execute(
            f"""WITH q AS (SELECT websearch_to_tsquery('{_TEXT_SEARCH_CONFIG}', %(query)s) AS q)
                SELECT c.chunk_id, ts_rank_cd(c.text_tsv, q.q)::float8 AS score
                FROM knowledge.chunks c, q
                WHERE {where} AND c.text_tsv @@ q.q
                ORDER BY score DESC, c.chunk_id LIMIT %(limit)s""",
            {**params, "query": query, "limit": limit},
        )
        return [(row[0], float(row[1])) for row in cur.fetchall()]

    def _scope_sql(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        where = ["c.tenant_id = %(tenant)s", "c.model = %(model)s", "c.current"]
        params: dict[str, Any] = {"tenant": scope.tenant_id, "model": self.model}
        if scope.owner_id is not None:
            where.append("(c.owner_id IS NULL OR c.owner_id = %(owner)s)")
            params["owner"] = scope.owner_id
        if scope.document_ids is not None:
            where.append("c.document_id = ANY(%(documents)s::uuid[])")
            params["documents"] = list(scope.document_ids)
        return " AND ".join(where), params

    def _similar(
        self,
        cur: psycopg.Cursor[Any],
        scope: Scope,
        vector: npt.NDArray[np.float32],
        limit: int,
    ) -> list[tuple[UUID, float]]:
        """Exact cosine similarity (vectors are of length one) over the passages the scope may
        see, masked before ranking."""
        question = np.asarray(vector, dtype=np.float32)
        if question.shape != (self.dimensions,):
            raise ValueError(f"expected a {self.dimensions}-wide vector from {self.model}")
        vectors = self._vectors(cur, scope.tenant_id)
        mask = vectors.visible(scope)
        rows = np.arange(len(vectors.chunk_ids)) if mask is None else np.flatnonzero(mask)
        if len(rows) == 0:
            return []
        if len(rows) == len(vectors.chunk_ids):
            scores = vectors.matrix @ question
        else:
            scores = vectors.matrix[rows] @ question
        best = np.argpartition(-scores, limit - 1)[:limit] if len(scores) > limit else None
        order = best if best is not None else np.arange(len(scores))
        order = order[np.argsort(-scores[order], kind="stable")]
        return [(vectors.chunk_ids[rows[i]], float(scores[i])) for i in order]

    def _vectors(self, cur: psycopg.Cursor[Any], tenant_id: UUID) -> _Vectors:
        """The tenant's vectors as of this transaction's snapshot: the cached ones when the
        change counter has not moved, else loaded (by one thread; the others wait for it)."""
        cur.execute(
            "SELECT changed FROM knowledge.tenant_changes WHERE tenant_id = %s AND model = %s",
            (tenant_id, self.model),
        )
        row = cur.fetchone()
        changed = int(row[0]) if row else 0
        cached = self._cache.get(tenant_id)
        if cached is not None and cached.changed == changed:
            return cached
        with self._loading[hash(tenant_id) % _LOADING_LOCKS]:
            cached = self._cache.get(tenant_id)
            if cached is not None and cached.changed == changed:
                return cached
            loaded = self._load(cur, tenant_id, changed)
            # An older snapshot's load never replaces a newer one.
            if cached is None or cached.changed < changed:
                self._cache.put(tenant_id, loaded)
            return loaded

    def _load(self, cur: psycopg.Cursor[Any], tenant_id: UUID, changed: int) -> _Vectors:
        cur.execute(
            "SELECT chunk_id, owner_id, document_id, vector FROM knowledge.chunks"
            " WHERE tenant_id = %s AND model = %s AND current",
            (tenant_id, self.model),
        )
        rows = cur.fetchall()
        width = self.dimensions * 4
        rows = [r for r in rows if len(r[3]) == width]  # another width is another model's
        matrix = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").astype(
            np.float32, copy=False
        )
        owner_codes: dict[UUID, int] = {}
        document_codes: dict[UUID, int] = {}
        owners = [
            -1 if r[1] is None else owner_codes.setdefault(r[1], len(owner_codes)) for r in rows
        ]
        documents = [document_codes.setdefault(r[2], len(document_codes)) for r in rows]
        return _Vectors(
            changed=changed,
            matrix=matrix.reshape(len(rows), self.dimensions),
            chunk_ids=[r[0] for r in rows],
            owners=np.array(owners, dtype=np.int32),
            owner_codes=owner_codes,
            documents=np.array(documents, dtype=np.int32),
            document_codes=document_codes,
        )

    def _fetch(
        self, cur: psycopg.Cursor[Any], tenant_id: UUID, chunk_ids: list[UUID], *, current: bool
    ) -> dict[UUID, tuple[Any, ...]]:
        """Passages by id: searched ones of this model; for citations any revision, this
        model's row when there are several."""
        if not chunk_ids:
            return {}
        if current:
            cur.execute(
                f"SELECT {_PASSAGE_COLUMNS} FROM knowledge.chunks WHERE tenant_id = %s"
                " AND chunk_id = ANY(%s::uuid[]) AND model = %s AND current",
                (tenant_id, chunk_ids, self.model),
            )
        else:
            cur.execute(
                f"SELECT DISTINCT ON (chunk_id) {_PASSAGE_COLUMNS} FROM knowledge.chunks"
                " WHERE tenant_id = %s AND chunk_id = ANY(%s::uuid[])"
                " ORDER BY chunk_id, model = %s DESC",
                (tenant_id, chunk_ids, self.model),
            )
        return {row[0]: row for row in cur.fetchall()}


def _any_word(text: str) -> str:
    """The question as websearch_to_tsquery input asking for any of its words: quotes (phrases)
    and leading minus signs (exclusions) are dropped, the words joined by "or"."""
    words = (word.lstrip("-") for word in re.split(r"[\s\"]+", text))
    return " or ".join(word for word in words if word)


def _passage(row: tuple[Any, ...], score: float) -> Passage:
    chunk_id, document_id, revision, index, title, location, text, start, end = row
    return Passage(
        chunk_id=chunk_id,
        document_id=document_id,
        revision=revision,
        index=index,
        title=title,
        location=location,
        text=text,
        start=start,
        end=end,
        score=score,
    )
