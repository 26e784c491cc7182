"""The knowledge index in Elasticsearch: `ElasticsearchKnowledge`, when PARLEY_ELASTICSEARCH_URL
is set.

One index per embedding model, behind an alias (`ensure` creates `<alias>-v1`), with a strict
mapping that records the model and the vectors' width. Documents are passages, routed by
tenant (routing is required: a passage written without it is refused, never misplaced) and
written with the log position as external version, as the chat search index is
(projections/search_index.py): a replayed older write is refused as a version conflict, which
counts as done.

A new revision rewrites the previous revision's current passages with `current: false` (at the
new write's position, without their vectors: they are no longer searched, only read by id for
old citations). Our Elasticsearch build has no update- or delete-by-query (nor scripts): the
passages to rewrite or delete are found by a search after a refresh, a partial answer fails
the write, and they are then written or deleted by id.

Searches carry the scope as filters inside the engine's query (the BM25 query's `filter`, the
kNN section's `filter`), routed to the tenant; hybrid search fuses both rankings in Python
(`fuse`), as the build has no `rrf` retriever.
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from domain.errors import SearchUnavailable
from infra.elasticsearch_bulk import describe, failed_actions
from infra.knowledge.index import (
    ChunkRecord,
    Mode,
    Passage,
    Scope,
    candidates,
    fuse,
)

log = logging.getLogger(__name__)

INDEX_VERSION = 1
"""Bump with any change to the mapping or analysis; the new version is filled by a rebuild."""

TENANT_COLLECTION = "tenant"
"""`owner_id` of the tenant's collection (a uuid never reads so): filters stay `terms`."""

ANALYZER = "parley_text"
# The built-in `standard` analyzer with English stop words: our build has no analysis-common
# module (no stemmers, no `english` analyzer).
ANALYSIS = {"analyzer": {ANALYZER: {"type": "standard", "stopwords": "_english_"}}}

_SOURCE = ["document_id", "revision", "chunk_index", "title", "location", "text", "start", "end"]
_PAGE = 1000
_MAX_CANDIDATES = 10_000
"""Elasticsearch's ceiling for a kNN search's `num_candidates`."""


class KnowledgeIndexingFailed(RuntimeError):
    """Elasticsearch refused a write for a reason other than a newer version, or could not say
    for every shard which passages a write must change; the projection retries."""


class KnowledgeIndexMismatch(RuntimeError):
    """The alias names an index of another embedding model or width."""


def mapping(model: str, dimensions: int) -> dict[str, Any]:
    keyword = {"type": "keyword"}
    text = {"type": "text", "analyzer": ANALYZER}
    return {
        "dynamic": "strict",
        "_routing": {"required": True},
        "_meta": {"model": model, "dimensions": dimensions},
        "properties": {
            "tenant_id": keyword,
            "document_id": keyword,
            "owner_id": keyword,
            "revision": {"type": "integer"},
            "current": {"type": "boolean"},
            "chunk_index": {"type": "integer"},
            "title": text,
            "text": text,
            "location": {"type": "keyword", "index": False},
            "start": {"type": "integer"},
            "end": {"type": "integer"},
            "position": {"type": "long"},
            "vector": {
                "type": "dense_vector",
                "dims": dimensions,
                "index": True,
                "similarity": "cosine",
            },
        },
    }


class ElasticsearchKnowledge:
    """The knowledge index in Elasticsearch (see the module); safe to share between threads."""

    def __init__(
        self,
        client: Elasticsearch,
        alias: str,
        model: str,
        dimensions: int,
        *,
        deletes_across: str | None = None,
    ) -> None:
        """`alias`: the index's alias, one per model (`parley-knowledge-<model slug>`).
        `deletes_across`: an index pattern naming every model's knowledge index: deletions and
        erasures reach them all (an index built for another model, serving before a switch or
        built by a rebuild, must not keep a deleted document's text)."""
        self.model = model
        self.dimensions = dimensions
        self.alias = alias
        self._client = client
        self._deletes_across = deletes_across

    def ensure(self, *, shards: int = 1, replicas: int = 0) -> str:
        """Create `<alias>-v1` and its alias unless the alias exists; check that the index it
        names holds this model's vectors; return that index's name. An existing alias is never
        moved (a rebuild's swap does that)."""
        current = self._client.options(ignore_status=404).indices.get_alias(name=self.alias)
        if current.meta.status == 200 and current.body:
            serving = next(iter(current.body))
        else:
            serving = f"{self.alias}-v{INDEX_VERSION}"
            # Several processes may race: the loser's create is refused (400), the alias stays.
            self._client.options(ignore_status=400).indices.create(
                index=serving,
                settings={
                    "number_of_shards": shards,
                    "number_of_replicas": replicas,
                    "analysis": ANALYSIS,
                },
                mappings=mapping(self.model, self.dimensions),
                aliases={self.alias: {}},
            )
            if not self._client.indices.exists_alias(name=self.alias, index=serving):
                self._client.indices.put_alias(index=serving, name=self.alias)
        meta = self._client.indices.get_mapping(index=serving)[serving]["mappings"].get("_meta", {})
        if (meta.get("model"), meta.get("dimensions")) != (self.model, self.dimensions):
            raise KnowledgeIndexMismatch(
                f"{self.alias} ({serving}) holds {meta.get('model')} vectors of "
                f"{meta.get('dimensions')} dimensions, not {self.model}'s {self.dimensions}"
            )
        return serving

    def refresh(self) -> None:
        """Make every acknowledged write searchable now (else within a second)."""
        self._client.indices.refresh(index=self.alias)

    # -- writes ----------------------------------------------------------------------------------

    def replace_document(
        self, tenant_id: UUID, document_id: UUID, revision: int, chunks: Sequence[ChunkRecord]
    ) -> None:
        tenant = str(tenant_id)
        for chunk in chunks:
            self._check(tenant_id, document_id, revision, chunk)
        # Passages still searched, and any of a newer revision (then this write is a replay).
        others = list(
            self._hits(
                tenant,
                [
                    {"term": {"document_id": str(document_id)}},
                    {
                        "bool": {
                            "should": [
                                {"term": {"current": True}},
                                {"range": {"revision": {"gt": revision}}},
                            ],
                            "minimum_should_match": 1,
                        }
                    },
                ],
                source={"includes": [*_SOURCE, "owner_id", "current", "position"]},
            )
        )
        position = max((c.position for c in chunks), default=0)
        # A replayed older write is stored (for citations) but never made current again.
        current = not any(
            (hit["_source"]["revision"], hit["_source"]["position"]) > (revision, position)
            for hit in others
        )
        actions = [
            self._index(str(c.chunk_id), tenant, c.position, self._document(tenant_id, c, current))
            for c in chunks
        ]
        if current:
            written = {str(c.chunk_id) for c in chunks}
            for hit in others:
                if hit["_id"] in written:
                    continue
                # Past its own version even when this revision brought no passages.
                version = max(position, hit["_source"]["position"] + 1)
                doc = {
                    **hit["_source"],
                    "tenant_id": tenant,
                    "current": False,
                    "position": version,
                }
                actions.append(self._index(hit["_id"], tenant, version, doc))
        self._write(actions)

    def delete_documents(self, tenant_id: UUID, document_ids: Iterable[UUID]) -> None:
        documents = sorted(str(d) for d in document_ids)
        if documents:
            self._delete(str(tenant_id), {"terms": {"document_id": documents}})

    def delete_owner(self, tenant_id: UUID, owner_id: UUID) -> None:
        self._delete(str(tenant_id), {"term": {"owner_id": str(owner_id)}})

    def _delete(self, tenant: str, match: dict[str, Any]) -> None:
        where = self._deletes_across or self.alias
        actions = [
            {"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"], "routing": tenant}
            for hit in self._hits(tenant, [match], source=False, index=where)
        ]
        # Concrete indexes (every model's), found by the search: not through an alias.
        self._write(actions, require_alias=self._deletes_across is None)

    def _check(self, tenant_id: UUID, document_id: UUID, revision: int, c: ChunkRecord) -> None:
        if (c.tenant_id, c.document_id, c.revision) != (tenant_id, document_id, revision):
            raise ValueError(f"passage {c.chunk_id} belongs to another document or revision")
        vector = np.asarray(c.vector)
        if vector.shape != (self.dimensions,) or not np.isfinite(vector).all():
            raise ValueError(
                f"passage {c.chunk_id}: expected {self.dimensions} finite numbers from "
                f"{self.model}, got shape {vector.shape}"
            )

    @staticmethod
    def _document(tenant_id: UUID, c: ChunkRecord, current: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "tenant_id": str(tenant_id),
            "document_id": str(c.document_id),
            "owner_id": TENANT_COLLECTION if c.owner_id is None else str(c.owner_id),
            "revision": c.revision,
            "current": current,
            "chunk_index": c.index,
            "title": c.title,
            "text": c.text,
            "location": c.location,
            "start": c.start,
            "end": c.end,
            "position": c.position,
        }
        if current:  # a passage no longer searched needs no vector
            doc["vector"] = np.asarray(c.vector, dtype=np.float32).tolist()
        return doc

    def _index(self, doc_id: str, tenant: str, version: int, doc: dict[str, Any]) -> dict:
        return {
            "_op_type": "index",
            "_index": self.alias,
            "_id": doc_id,
            "routing": tenant,
            "version": version,
            "version_type": "external",
            "_source": doc,
        }

    def _hits(
        self,
        tenant: str,
        filters: list[dict[str, Any]],
        *,
        source: dict[str, Any] | bool,
        index: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every passage of the tenant matching `filters` (in `index`, default the alias), from
        a complete answer only."""
        where = index or self.alias
        # Searches see refreshed passages only; acknowledged ones may not be yet.
        self._client.indices.refresh(index=where)
        after: list[Any] | None = None
        while True:
            response = self._client.search(
                index=where,
                routing=tenant,
                query={"bool": {"filter": [{"term": {"tenant_id": tenant}}, *filters]}},
                # Unique per passage: a stable page order.
                sort=[{"document_id": "asc"}, {"revision": "asc"}, {"chunk_index": "asc"}],
                search_after=after,
                size=_PAGE,
                source=source,
                track_total_hits=False,
            )
            if response.get("_shards", {}).get("failed"):
                # A shard not available yet (Elasticsearch just restarted) would leave passages
                # behind: fail the write, the projection retries.
                raise KnowledgeIndexingFailed(f"partial search answer: {response['_shards']}")
            hits = response["hits"]["hits"]
            yield from hits
            if len(hits) < _PAGE:
                return
            after = hits[-1]["sort"]

    def _write(self, actions: list[dict[str, Any]], *, require_alias: bool = True) -> None:
        """Bulk-write in order; raise unless every action was applied or already superseded."""
        failures = failed_actions(self._client, actions, require_alias=require_alias)
        if failures:
            raise KnowledgeIndexingFailed(
                f"{len(failures)} of {len(actions)} knowledge index actions failed; first: "
                f"{describe(failures[0])}"
            )

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
        wanted = min(candidates(scope, vector, first=first, mode=mode), _MAX_CANDIDATES)
        if not wanted:
            return []
        filters = _scope_filters(scope)
        header = {"index": self.alias, "routing": str(scope.tenant_id)}
        bodies: list[dict[str, Any]] = []
        if mode != "vector" and text.strip():
            query = {"multi_match": {"query": text, "fields": ["text", "title"]}}
            bodies.append({"query": {"bool": {"must": [query], "filter": filters}}})
        if mode != "bm25":
            question = np.asarray(vector, dtype=np.float32)
            if question.shape != (self.dimensions,):
                raise ValueError(f"expected a {self.dimensions}-wide vector from {self.model}")
            knn = {
                "field": "vector",
                "query_vector": question.tolist(),
                "k": wanted,
                "num_candidates": min(4 * wanted, _MAX_CANDIDATES),
                "filter": filters,
            }
            bodies.append({"knn": knn})
        if not bodies:
            return []
        searches: list[dict[str, Any]] = []
        for body in bodies:
            body.update(size=wanted, _source=_SOURCE, track_total_hits=False)
            searches += [header, body]
        rankings = self._rankings(searches)
        sources = {hit["_id"]: hit["_source"] for ranking in rankings for hit in ranking}
        if mode == "hybrid":
            ids = [[UUID(hit["_id"]) for hit in ranking] for ranking in rankings]
            ranked = [(str(chunk), score) for chunk, score in fuse(ids)[:first]]
        else:
            ranked = [(hit["_id"], float(hit["_score"])) for hit in rankings[0]]
        return [_passage(chunk, sources[chunk], score) for chunk, score in ranked]

    def _rankings(self, searches: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        try:
            responses = self._client.msearch(searches=searches)["responses"]
        except (ApiError, TransportError) as e:
            log.warning("knowledge search on %s failed: %s", self.alias, e)
            raise SearchUnavailable("knowledge search is unavailable; retry later") from e
        for response in responses:
            if "error" in response or response.get("_shards", {}).get("failed"):
                # A partial answer would leave passages out without saying so.
                log.warning(
                    "knowledge search on %s failed: %s",
                    self.alias,
                    response.get("error") or response.get("_shards"),
                )
                raise SearchUnavailable("knowledge search is unavailable; retry later")
        return [response["hits"]["hits"] for response in responses]

    def passages(self, tenant_id: UUID, chunk_ids: Iterable[UUID]) -> dict[UUID, Passage]:
        wanted = list(dict.fromkeys(str(c) for c in chunk_ids))
        if not wanted:
            return {}
        tenant = str(tenant_id)
        # Real time (no refresh needed); the tenant is checked, as ids are not secrets.
        response = self._client.mget(
            index=self.alias,
            docs=[{"_id": chunk, "routing": tenant} for chunk in wanted],
            source=[*_SOURCE, "tenant_id"],
        )
        failed = [doc for doc in response["docs"] if "error" in doc]
        if failed:
            raise SearchUnavailable("knowledge passages are unavailable; retry later")
        return {
            UUID(doc["_id"]): _passage(doc["_id"], doc["_source"], 0.0)
            for doc in response["docs"]
            if doc.get("found") and doc["_source"]["tenant_id"] == tenant
        }


def _scope_filters(scope: Scope) -> list[dict[str, Any]]:
    """The scope as filters: the tenant, current revisions, visible owners, chosen documents."""
    filters: list[dict[str, Any]] = [
        {"term": {"tenant_id": str(scope.tenant_id)}},
        {"term": {"current": True}},
    ]
    if scope.owner_id is not None:
        filters.append({"terms": {"owner_id": [str(scope.owner_id), TENANT_COLLECTION]}})
    if scope.document_ids is not None:
        filters.append({"terms": {"document_id": sorted(str(d) for d in scope.document_ids)}})
    return filters


def _passage(chunk_id: str, source: dict[str, Any], score: float) -> Passage:
    return Passage(
        chunk_id=UUID(chunk_id),
        document_id=UUID(source["document_id"]),
        revision=source["revision"],
        index=source["chunk_index"],
        title=source["title"],
        location=source["location"],
        text=source["text"],
        start=source["start"],
        end=source["end"],
        score=score,
    )
