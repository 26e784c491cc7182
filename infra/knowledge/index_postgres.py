"""The knowledge index in PostgreSQL: `PostgresKnowledge`, the embedded default.

Passages live in `knowledge.chunks` (infra/migrations.py), a row per passage and embedding
model. Both rankings are computed here with numpy over what each process keeps of a tenant's
current passages, reloaded only when the tenant's change counter (`knowledge.tenant_changes`,
bumped by every write in its transaction) moved: vectors by exact cosine similarity (our
PostgreSQL has no pgvector), one float32 matrix; words by BM25 over the lexemes of each
passage's `text_tsv` (PostgreSQL's `english` stems of title and text, the question's made by
the same `to_tsvector`), an inverted index of them. Not in SQL because the reader role's
row-level security keeps the planner off the GIN index (`@@` is not leakproof, so it may only
run after the policy's filter): any full-text query scans and detoasts every passage of the
tenant, about 0.3 s at 100,000 on two cores, before it ranks a single one.

Writes go through the owner's pool (the knowledge projection). Every read is a transaction of
the reader role with the tenant set, so row-level security holds whatever a query says; the
queries name the tenant too.
"""

import re
import threading
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any, TypeVar
from uuid import UUID

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg_pool import ConnectionPool

from infra.knowledge.index import (
    ChunkRecord,
    Mode,
    Passage,
    Scope,
    candidates,
    fuse,
)
from infra.lru import Lru
from infra.read_model_schema import READER_ROLE, TENANT_SETTING

_TEXT_SEARCH_CONFIG = "english"
"""As `knowledge.chunks.text_tsv` is built (infra/migrations.py)."""

_LOADING_LOCKS = 16
"""Threads that find a tenant's vectors or words out of date wait for one of them to load them."""

_BM25_K1 = 1.2
_BM25_B = 0.75
"""BM25's term-frequency saturation and length normalisation: the usual values (Lucene's)."""

_LEXEME = re.compile(r"'([^']*(?:''[^']*)*)'(?::([0-9A-D,]+))?")
"""A lexeme of a tsvector's text form and its positions (`'stem':3,17`); quotes inside are
doubled. The lexeme stays as written: the question's are read from the same form."""

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
class _Rows:
    """A tenant's current passages of one model, as of `changed`: row i is chunk_ids[i]."""

    changed: int
    chunk_ids: list[UUID]
    owners: npt.NDArray[np.int32]
    """Index into owner_codes' keys; -1: the tenant's collection."""
    owner_codes: dict[UUID, int]
    documents: npt.NDArray[np.int32]
    document_codes: dict[UUID, int]

    @classmethod
    def of(cls, changed: int, rows: Sequence[tuple[Any, ...]]) -> "_Rows":
        """From (chunk_id, owner_id, document_id, ...) rows."""
        owner_codes: dict[UUID, int] = {}
        document_codes: dict[UUID, int] = {}
        owners = [
            -1 if r[1] is None else owner_codes.setdefault(r[1], len(owner_codes)) for r in rows
        ]
        documents = [document_codes.setdefault(r[2], len(document_codes)) for r in rows]
        return cls(
            changed=changed,
            chunk_ids=[r[0] for r in rows],
            owners=np.array(owners, dtype=np.int32),
            owner_codes=owner_codes,
            documents=np.array(documents, dtype=np.int32),
            document_codes=document_codes,
        )

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


@dataclass(frozen=True)
class _Vectors:
    """A tenant's current vectors of one model: row i of the matrix is rows.chunk_ids[i]."""

    rows: _Rows
    matrix: npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Words:
    """A tenant's current passages of one model as an inverted index of their lexemes: the
    postings of term t (rows holding it, how often) are [starts[t], starts[t + 1])."""

    rows: _Rows
    terms: dict[str, int]
    starts: npt.NDArray[np.int64]
    postings: npt.NDArray[np.int32]
    frequencies: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.float32]
    """Each row's lexemes counted with their repeats."""

    @classmethod
    def of(cls, changed: int, rows: Sequence[tuple[Any, ...]]) -> "_Words":
        """From (chunk_id, owner_id, document_id, text_tsv as text) rows."""
        # A new lexeme's id is how many there were before it. The maps run in C, into arrays
        # numpy reads in place: at 100,000 passages (about 60 lexemes each) it matters.
        terms: defaultdict[str, int] = defaultdict()
        terms.default_factory = terms.__len__
        term_ids, commas, per_row = array("i"), array("i"), array("i")
        for row in rows:
            found = _LEXEME.findall(row[3])
            term_ids.extend(map(terms.__getitem__, map(itemgetter(0), found)))
            commas.extend(map(str.count, map(itemgetter(1), found), repeat(",")))
            per_row.append(len(found))
        ids = np.frombuffer(term_ids, dtype=np.int32)
        order = np.argsort(ids, kind="stable")
        starts = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(ids, minlength=len(terms)), out=starts[1:])
        frequencies = np.frombuffer(commas, dtype=np.int32).astype(np.float32) + 1
        row_numbers = np.repeat(np.arange(len(rows), dtype=np.int32), per_row)
        lengths = np.bincount(row_numbers, weights=frequencies, minlength=len(rows))
        return cls(
            rows=_Rows.of(changed, rows),
            terms=dict(terms),
            starts=starts,
            postings=row_numbers[order],
            frequencies=frequencies[order],
            lengths=lengths.astype(np.float32),
        )

    def rank(self, lexemes: Iterable[str], scope: Scope, limit: int) -> list[tuple[UUID, float]]:
        """BM25 over the passages the scope may see (masked before ranking: their number and
        each term's count among them make the IDF), best first, ties in chunk id order."""
        mask = self.rows.visible(scope)
        visible = len(self.rows.chunk_ids) if mask is None else int(mask.sum())
        if visible == 0:
            return []
        average = max(float(self.lengths.mean()), 1.0)
        scores = np.zeros(len(self.rows.chunk_ids), dtype=np.float32)
        for lexeme in dict.fromkeys(lexemes):
            term = self.terms.get(lexeme)
            if term is None:
                continue
            rows = self.postings[self.starts[term] : self.starts[term + 1]]
            tf = self.frequencies[self.starts[term] : self.starts[term + 1]]
            if mask is not None:
                seen = mask[rows]
                rows, tf = rows[seen], tf[seen]
            if len(rows) == 0:
                continue
            idf = np.log1p((visible - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * self.lengths[rows] / average)
            scores[rows] += (idf * tf * (_BM25_K1 + 1) / (tf + norm)).astype(np.float32)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > limit:
            # Every passage scoring at least the limit-th best, so ties break by chunk id.
            floor = np.partition(scores[matched], len(matched) - limit)[len(matched) - limit]
            matched = matched[scores[matched] >= floor]
        # Rows are in chunk id order (see _load_words).
        order = matched[np.lexsort((matched, -scores[matched]))][:limit]
        return [(self.rows.chunk_ids[i], float(scores[i])) for i in order]


_Loaded = TypeVar("_Loaded", _Vectors, _Words)


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
        the reader role (the same login will do). `cached_tenants`: how many tenants' vectors,
        and apart how many tenants' words, this process keeps (each tenant's vectors about
        passages × dimensions × 4 bytes, its words about passages × lexemes × 8 bytes)."""
        self.model = model
        self.dimensions = dimensions
        self._writer = writer
        self._reader = reader
        self._vectors: Lru[UUID, _Vectors] = Lru(cached_tenants)
        self._words: Lru[UUID, _Words] = Lru(cached_tenants)
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
        wanted = candidates(scope, vector, first=first, mode=mode)
        if not wanted:
            return []
        with self._tenant(scope.tenant_id) as cur:
            rankings: list[list[tuple[UUID, float]]] = []
            if mode != "vector":
                rankings.append(self._by_words(cur, scope, text, wanted))
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

    def _by_words(
        self, cur: psycopg.Cursor[Any], scope: Scope, text: str, limit: int
    ) -> list[tuple[UUID, float]]:
        """BM25 over the passages holding any of the question's lexemes (not all of them, as a
        question is asked in more words than a passage answers in)."""
        cur.execute(f"SELECT to_tsvector('{_TEXT_SEARCH_CONFIG}', %s)::text", (text,))
        row = cur.fetchone()
        lexemes = [lexeme for lexeme, _ in _LEXEME.findall(row[0] if row else "")]
        if not lexemes:
            return []
        words = self._cached(cur, scope.tenant_id, self._words, self._load_words)
        return words.rank(lexemes, scope, limit)

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
        vectors = self._cached(cur, scope.tenant_id, self._vectors, self._load_vectors)
        mask = vectors.rows.visible(scope)
        rows = np.arange(len(vectors.rows.chunk_ids)) if mask is None else np.flatnonzero(mask)
        if len(rows) == 0:
            return []
        if len(rows) == len(vectors.rows.chunk_ids):
            scores = vectors.matrix @ question
        else:
            scores = vectors.matrix[rows] @ question
        best = np.argpartition(-scores, limit - 1)[:limit] if len(scores) > limit else None
        order = best if best is not None else np.arange(len(scores))
        order = order[np.argsort(-scores[order], kind="stable")]
        return [(vectors.rows.chunk_ids[rows[i]], float(scores[i])) for i in order]

    def _cached(
        self,
        cur: psycopg.Cursor[Any],
        tenant_id: UUID,
        cache: Lru[UUID, _Loaded],
        load: Callable[[psycopg.Cursor[Any], UUID, int], _Loaded],
    ) -> _Loaded:
        """The tenant's vectors or words as of this transaction's snapshot: the cached ones
        when the change counter has not moved, else loaded (by one thread; the others wait)."""
        cur.execute(
            "SELECT changed FROM knowledge.tenant_changes WHERE tenant_id = %s AND model = %s",
            (tenant_id, self.model),
        )
        row = cur.fetchone()
        changed = int(row[0]) if row else 0
        cached = cache.get(tenant_id)
        if cached is not None and cached.rows.changed == changed:
            return cached
        with self._loading[hash(tenant_id) % _LOADING_LOCKS]:
            cached = cache.get(tenant_id)
            if cached is not None and cached.rows.changed == changed:
                return cached
            loaded = load(cur, tenant_id, changed)
            # An older snapshot's load never replaces a newer one.
            if cached is None or cached.rows.changed < changed:
                cache.put(tenant_id, loaded)
            return loaded

    def _load_vectors(self, cur: psycopg.Cursor[Any], tenant_id: UUID, changed: int) -> _Vectors:
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
        return _Vectors(_Rows.of(changed, rows), matrix.reshape(len(rows), self.dimensions))

    def _load_words(self, cur: psycopg.Cursor[Any], tenant_id: UUID, changed: int) -> _Words:
        """In chunk id order, so equal scores rank as they always did (by chunk id); sorted
        here, as PostgreSQL would sort the tsvectors' text with them."""
        cur.execute(
            "SELECT chunk_id, owner_id, document_id, text_tsv::text FROM knowledge.chunks"
            " WHERE tenant_id = %s AND model = %s AND current",
            (tenant_id, self.model),
        )
        return _Words.of(changed, sorted(cur.fetchall(), key=itemgetter(0)))

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
