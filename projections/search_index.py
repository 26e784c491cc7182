"""The Elasticsearch search index: messages and chat titles, followed from the log.

An idempotent projection. Every document is written with its id from the domain (message id,
chat id), routing by tenant and an external version equal to the log position of the event that
produced it, so a replayed or duplicated batch is refused by Elasticsearch as a version conflict
(which we count as done) instead of overwriting newer state. The position is stored only after
Elasticsearch acknowledged every action of the batch; any other failure raises, and the
LogFollower retries the batch with back-off.

Documents (one index, `dynamic: strict`):
- `kind=message`: one per message, with the chat's owner (immutable) so that members' searches
  filter on it. The chat title is not copied, so a rename rewrites one document.
- `kind=chat_title`: one per chat (id = chat id), carrying the current title.

The distribution we run has no delete-by-query: deleting a chat searches its document ids and
deletes them by id (with the Deleted event's position as version, so an older replayed write
cannot bring them back).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch
from eventsourcing.persistence import Notification
from psycopg_pool import ConnectionPool

from infra.elasticsearch_bulk import describe, failed_actions
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import store_position
from projections.fencing import FencedProjection

log = logging.getLogger(__name__)

PROJECTION_NAME = "search"
INDEX_VERSION = 1
"""Bump with any change to MAPPING or ANALYSIS; the new version is filled by a rebuild."""

CHAT_STARTED = "parley.ChatSession.Started"
CHAT_RENAMED = "parley.ChatSession.Renamed"
MESSAGE_POSTED = "parley.ChatSession.MessagePosted"
CHAT_DELETED = "parley.ChatSession.Deleted"
CHAT_EXPIRED = "parley.ChatSession.Expired"
USER_ERASED = "parley.User.Erased"
TOPICS = frozenset(
    {CHAT_STARTED, CHAT_RENAMED, MESSAGE_POSTED, CHAT_DELETED, CHAT_EXPIRED, USER_ERASED}
)

ANALYZER = "parley_text"
_KEYWORD = {"type": "keyword"}
_TEXT = {"type": "text", "analyzer": ANALYZER}
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    # A document written without its tenant's routing is refused, never misplaced.
    "_routing": {"required": True},
    "properties": {
        "kind": _KEYWORD,
        "tenant_id": _KEYWORD,
        "chat_id": _KEYWORD,
        "message_id": _KEYWORD,
        "owner_id": _KEYWORD,
        "role": _KEYWORD,
        "content": _TEXT,
        "chat_title": _TEXT,
        # Microseconds, as Postgres stores them: date filters agree across both adapters.
        "created_at": {"type": "date_nanos"},
        "position": {"type": "long"},
    },
}
# The built-in `standard` analyzer with English stop words: the distribution we run has no
# analysis-common module (no stemmers, no `english` analyzer).
ANALYSIS = {"analyzer": {ANALYZER: {"type": "standard", "stopwords": "_english_"}}}

_DOC_IDS_PAGE = 1000


class ShardsUnavailable(Exception):
    """Elasticsearch could not answer for every shard (it just restarted): whether a chat's
    title document exists, or which documents to delete. The batch is retried."""


class SearchIndexingFailed(RuntimeError):
    """Elasticsearch refused part of a batch for a reason other than a newer version."""


def index_name(alias: str, version: int) -> str:
    return f"{alias}-v{version}"


def create_index(client: Elasticsearch, name: str, *, shards: int = 1, replicas: int = 0) -> None:
    """Create the index with the explicit mapping, unless it exists (several processes may race)."""
    if client.indices.exists(index=name):
        return
    client.options(ignore_status=400).indices.create(
        index=name,
        settings={
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": ANALYSIS,
        },
        mappings=MAPPING,
    )
    if not client.indices.exists(index=name):
        raise SearchIndexingFailed(f"could not create search index {name}")


def point_alias(client: Elasticsearch, alias: str, name: str) -> None:
    """Make `alias` name exactly the index `name`, in one atomic step (readers never see none)."""
    current = client.options(ignore_status=404).indices.get_alias(name=alias)
    holders = (
        [index for index in current.body if index != name] if current.meta.status == 200 else []
    )
    client.indices.update_aliases(
        actions=[
            *({"remove": {"index": index, "alias": alias}} for index in holders),
            {"add": {"index": name, "alias": alias}},
        ]
    )


def ensure_index(
    client: Elasticsearch, alias: str, version: int, *, shards: int = 1, replicas: int = 0
) -> str:
    """Create `{alias}-v{version}` and point `alias` at it, unless the alias exists already;
    return the index the alias names.

    An existing alias is never moved here: after a mapping change the new version is empty
    until a rebuild fills it, and only the rebuild's swap (`point_alias`) may move readers."""
    current = client.options(ignore_status=404).indices.get_alias(name=alias)
    if current.meta.status == 200 and current.body:
        serving = next(iter(current.body))
        if serving != index_name(alias, version):
            log.warning("%s serves %s, not version %d: rebuild to upgrade", alias, serving, version)
        return serving
    name = index_name(alias, version)
    create_index(client, name, shards=shards, replicas=replicas)
    point_alias(client, alias, name)
    return name


@dataclass(frozen=True)
class IndexSpec:
    """The index a projection creates when it starts from the beginning of the log."""

    version: int
    shards: int = 1
    replicas: int = 0


@dataclass(frozen=True)
class ChatFacts:
    """What message documents need from their chat; none of it ever changes."""

    owner_id: str
    created_at: str
    position: int


class SearchProjection(FencedProjection):
    """Follows the log into the search index; the position is stored after ES acknowledged."""

    name = PROJECTION_NAME

    def __init__(
        self,
        store: EventStore,
        pool: ConnectionPool,
        client: Elasticsearch,
        alias: str,
        *,
        name: str = PROJECTION_NAME,
        create: IndexSpec | None = None,
    ) -> None:
        """`alias` must be an alias: writes require one, so a missing index is never
        auto-created with a guessed mapping. With `create`, the projection creates the index
        (`ensure_index`) before its first batch from position 0, and only then: an index lost
        later must be rebuilt, not silently restarted half-empty. `name` keys the position."""
        self.name = name
        self._create = create
        self._store = store
        self._pool = pool
        self._client = client
        self._alias = alias
        self._position: int | None = None

    def handle(self, batch: Sequence[Notification]) -> None:
        if self._create is not None and self.position() == 0:
            # Here, not at start-up: Elasticsearch being down must not stop the process, and
            # the follower retries this like any failed batch.
            spec = self._create
            ensure_index(
                self._client, self._alias, spec.version, shards=spec.shards, replicas=spec.replicas
            )
            self._create = None
        # The transaction holds the projection's lock and commits the position only after
        # Elasticsearch acknowledged the batch (a rebuild's swap waits for it, or fences it).
        with self.fenced() as conn:
            if conn is None:  # a rebuild swapped in a new index: continue from there
                return
            self._index_batch(batch)
            store_position(conn, self.name, batch[-1].id)
        # store_position never moves backwards: a replayed old batch leaves the position alone.
        self._position = max(self.position(), batch[-1].id)

    def index(self, batch: Sequence[Notification]) -> None:
        """Index a batch without touching the position (a rebuild's swap, under the lock)."""
        self._index_batch(batch)

    def _index_batch(self, batch: Sequence[Notification]) -> None:
        events = [(n.id, n.topic, self._store.decode(n)) for n in batch if n.topic in TOPICS]
        chats = self._chats_of(events)
        actions: list[dict[str, Any]] = []
        for position, topic, e in events:
            chat_id = str(e.originator_id)
            if topic == CHAT_STARTED:
                facts = ChatFacts(str(e.owner_id), e.timestamp.isoformat(), position)
                chats[chat_id] = facts
                actions.append(self._chat_title(position, e, facts))
            elif topic in (CHAT_DELETED, CHAT_EXPIRED):
                self._write(actions)  # so that the search for the chat's documents sees them
                actions = self._deletions(position, str(e.tenant_id), "chat_id", chat_id)
                chats.pop(chat_id, None)
            elif topic == USER_ERASED:
                # Every document of the user's chats goes (their titles and both sides of
                # every conversation), found by owner.
                user_id = str(e.originator_id)
                self._write(actions)
                actions = self._deletions(position, str(e.tenant_id), "owner_id", user_id)
                chats = {c: f for c, f in chats.items() if f.owner_id != user_id}
            elif chat_id in chats:
                # A chat missing from the index here was deleted later in the log (we replay
                # an old batch after its deletion): its documents are gone for good.
                if topic == CHAT_RENAMED:
                    actions.append(self._chat_title(position, e, chats[chat_id]))
                elif topic == MESSAGE_POSTED:
                    actions.append(self._message(position, e, chats[chat_id]))
        self._write(actions)

    # -- documents -------------------------------------------------------------------------------

    def _index(self, doc_id: str, tenant_id: str, version: int, doc: dict[str, Any]) -> dict:
        return {
            "_op_type": "index",
            "_index": self._alias,
            "_id": doc_id,
            "routing": tenant_id,
            "version": version,
            "version_type": "external",
            "_source": doc,
        }

    def _chat_title(self, version: int, e: Any, facts: ChatFacts) -> dict[str, Any]:
        """The whole chat-title document (not a partial update, which cannot carry an external
        version): Started and Renamed both rewrite it, and an older replay is refused."""
        tenant_id, chat_id = str(e.tenant_id), str(e.originator_id)
        doc = {
            "kind": "chat_title",
            "tenant_id": tenant_id,
            "chat_id": chat_id,
            "owner_id": facts.owner_id,
            "chat_title": e.title,
            "created_at": facts.created_at,
            "position": facts.position,
        }
        return self._index(chat_id, tenant_id, version, doc)

    def _message(self, version: int, e: Any, facts: ChatFacts) -> dict[str, Any]:
        tenant_id = str(e.tenant_id)
        doc = {
            "kind": "message",
            "tenant_id": tenant_id,
            "chat_id": str(e.originator_id),
            "message_id": str(e.message_id),
            "owner_id": facts.owner_id,
            "role": e.role,
            "content": e.content,
            "created_at": e.timestamp.isoformat(),
            "position": version,
        }
        return self._index(str(e.message_id), tenant_id, version, doc)

    def _chats_of(self, events: list[tuple[int, str, Any]]) -> dict[str, ChatFacts]:
        """Facts of the chats this batch writes to but does not start, read from their
        chat-title documents in one real-time multi-get (acknowledged writes are visible)."""
        started = {str(e.originator_id) for _, topic, e in events if topic == CHAT_STARTED}
        wanted = {
            str(e.originator_id): str(e.tenant_id)
            for _, topic, e in events
            if topic in (CHAT_RENAMED, MESSAGE_POSTED) and str(e.originator_id) not in started
        }
        if not wanted:
            return {}
        response = self._client.mget(
            index=self._alias,
            docs=[{"_id": chat, "routing": tenant} for chat, tenant in wanted.items()],
            source=["owner_id", "created_at", "position"],
        )
        failed = [doc for doc in response["docs"] if "error" in doc]
        if failed:
            # A shard that is not available yet (Elasticsearch just restarted) answers its
            # documents with an error, not "not found": taking that for a deleted chat would drop
            # this batch's messages for good. Fail the batch; the follower retries it.
            raise ShardsUnavailable(
                f"{len(failed)} chat document(s) unreadable: {failed[0]['error']}"
            )
        return {
            doc["_id"]: ChatFacts(
                doc["_source"]["owner_id"], doc["_source"]["created_at"], doc["_source"]["position"]
            )
            for doc in response["docs"]
            if doc.get("found")
        }

    def _deletions(
        self, version: int, tenant_id: str, field: str, value: str
    ) -> list[dict[str, Any]]:
        """Delete actions for every document of the tenant whose `field` is `value` (a chat's,
        an owner's), found by search: no delete-by-query."""
        # Searches see only refreshed documents; acknowledged ones may not be yet.
        self._client.indices.refresh(index=self._alias)
        actions: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while True:
            response = self._client.search(
                index=self._alias,
                routing=tenant_id,
                query={
                    "bool": {
                        "filter": [
                            {"term": {"tenant_id": tenant_id}},
                            {"term": {field: value}},
                        ]
                    }
                },
                sort=[{"position": "asc"}],  # unique per document: a stable page order
                search_after=after,
                size=_DOC_IDS_PAGE,
                source=False,
                track_total_hits=False,
            )
            shards = response.get("_shards", {})
            if shards.get("failed"):
                # Partial results (a shard not available yet) would leave documents of a
                # deleted chat or an erased user behind: fail the batch, the follower retries.
                raise ShardsUnavailable(f"the search for documents to delete was partial: {shards}")
            hits = response["hits"]["hits"]
            actions += [
                {
                    "_op_type": "delete",
                    "_index": self._alias,
                    "_id": hit["_id"],
                    "routing": tenant_id,
                    "version": version,
                    "version_type": "external",
                }
                for hit in hits
            ]
            if len(hits) < _DOC_IDS_PAGE:
                return actions
            after = hits[-1]["sort"]

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, actions: list[dict[str, Any]]) -> None:
        """Bulk-write in order; raise unless every action was applied or already superseded."""
        failures = failed_actions(self._client, actions)
        if failures:
            raise SearchIndexingFailed(
                f"{len(failures)} of {len(actions)} search index actions failed; "
                f"first: {describe(failures[0])}"
            )
