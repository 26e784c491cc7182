"""GraphQL for auditors: `chatAt(id, asOf)` (a chat as it was) and `auditLog(aggregateId, …)`.

Both read the event log itself (queries/replay.py), not the read models, off the event loop.
Only auditors of the aggregate's tenant and platform admins may use them; merged into the root
Query type in api/schema.py like SearchQueries.
"""

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Protocol, TypeVar, cast
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.actor import Actor
from domain.errors import NotFound
from domain.policy import AUDIT, may_audit, require_role
from infra.eventstore.event_store import EventStore
from queries.context import QueryContext
from queries.replay import AuditEntry, audit_log, state_at, tenant_of_aggregate
from queries.schema import parse_id, viewer
from queries.types import (
    Citation,
    MessageRole,
    PageInfo,
    decode_cursor,
    encode_cursor,
    resolve_citations,
)

T = TypeVar("T")

CURSOR_KIND = "audit"


class EventLog(Protocol):
    """What these resolvers need of the API's ports: the event store and a worker thread."""

    @property
    def aggregates(self) -> EventStore: ...

    @property
    def run_blocking(self) -> Callable[..., Awaitable[Any]]: ...


class AuditContext(QueryContext, Protocol):
    services: EventLog


def event_log(info: Info[QueryContext, None]) -> EventLog:
    """The ports behind the request (the API's context carries them)."""
    return cast(AuditContext, info.context).services


async def audited_tenant(info: Info[QueryContext, None], actor: Actor, aggregate_id: UUID) -> UUID:
    """Check that the caller may audit this aggregate; return its tenant.

    Other tenants' aggregates look missing, exactly like ids that do not exist.
    """
    require_role(actor, AUDIT, "read the audit trail")
    log = event_log(info)
    tenant = await log.run_blocking(tenant_of_aggregate, log.aggregates, aggregate_id)
    if not may_audit(actor, tenant):
        raise NotFound("not found")
    assert tenant is not None
    return tenant


@strawberry.enum
class ChatSnapshotStatus(Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


@strawberry.type(description="A message as the chat held it at the snapshot's time.")
class SnapshotMessage:
    id: strawberry.ID
    role: MessageRole
    content: str
    citation_records: strawberry.Private[list[dict[str, Any]]]
    tenant_id: strawberry.Private[UUID]

    @strawberry.field(
        description="What a grounded reply was given and cited, as recorded on its event (the "
        "passages' text as the knowledge index has it now: erased ones show as erased)."
    )
    async def citations(self, info: Info[QueryContext, None]) -> list[Citation]:
        return await resolve_citations(info, self.citation_records, self.tenant_id)


@strawberry.type(description="A chat as it was at a moment, rebuilt from its events.")
class ChatSnapshot:
    id: strawberry.ID
    tenant_id: strawberry.ID
    title: str
    status: ChatSnapshotStatus
    model: str
    owner_id: strawberry.ID
    version: int = strawberry.field(description="Its last event at or before asOf (1 = started).")
    as_of: datetime
    created_at: datetime
    updated_at: datetime = strawberry.field(description="When that last event happened.")
    messages: list[SnapshotMessage] = strawberry.field(description="Oldest first.")

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ChatSnapshot":
        return cls(
            id=strawberry.ID(state["id"]),
            tenant_id=strawberry.ID(state["tenant_id"]),
            title=state["title"],
            status=ChatSnapshotStatus(state["status"]),
            model=state["model"],
            owner_id=strawberry.ID(state["owner_id"]),
            version=state["version"],
            as_of=datetime.fromisoformat(state["as_of"]),
            created_at=datetime.fromisoformat(state["created_on"]),
            updated_at=datetime.fromisoformat(state["modified_on"]),
            messages=[
                SnapshotMessage(
                    id=strawberry.ID(m["id"]),
                    role=MessageRole(m["role"]),
                    content=m["content"],
                    citation_records=m.get("citations") or [],
                    tenant_id=UUID(state["tenant_id"]),
                )
                for m in state["messages"]
            ],
        )


@strawberry.type(description="One recorded event: what happened, when, by whom, and its hash.")
class AuditLogEntry:
    position: int = strawberry.field(description="Its position in the log.")
    event_type: str = strawberry.field(description="Its topic, e.g. parley.ChatSession.Renamed.")
    aggregate_version: int
    actor_id: strawberry.ID | None = strawberry.field(
        description="The user who acted; null for the system itself (e.g. assistant replies)."
    )
    occurred_at: datetime
    chain_hash: str | None = strawberry.field(
        description="The audit chain's hash at this position (hex); null until the ledger, "
        "which follows the log, has chained it."
    )

    @classmethod
    def from_entry(cls, entry: AuditEntry) -> "AuditLogEntry":
        return cls(
            position=entry.position,
            event_type=entry.event_type,
            aggregate_version=entry.aggregate_version,
            actor_id=strawberry.ID(str(entry.actor_id)) if entry.actor_id else None,
            occurred_at=entry.occurred_at,
            chain_hash=entry.chain_hash,
        )


@strawberry.type
class AuditLogEdge:
    cursor: str
    node: AuditLogEntry


@strawberry.type
class AuditLogConnection:
    edges: list[AuditLogEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[AuditLogEntry]:
        return [e.node for e in self.edges]


async def chat_at(
    info: Info[QueryContext, None],
    id: strawberry.ID,
    as_of: Annotated[
        datetime, strawberry.argument(description="A time without a zone is taken as UTC.")
    ],
) -> ChatSnapshot | None:
    chat_id = parse_id(id, "chat id")
    actor = await viewer(info)
    await audited_tenant(info, actor, chat_id)
    log = event_log(info)
    state = await log.run_blocking(
        functools.partial(state_at, log.aggregates, chat_id, as_of=as_of)
    )
    if state["type"] != "parley.ChatSession":
        raise NotFound("not found")
    return ChatSnapshot.from_state(state)


async def audit_log_of(
    info: Info[QueryContext, None],
    aggregate_id: strawberry.ID,
    from_: Annotated[
        datetime | None,
        strawberry.argument(name="from", description="Occurred at or after (inclusive)."),
    ] = None,
    to: Annotated[
        datetime | None, strawberry.argument(description="Occurred before (exclusive).")
    ] = None,
    first: Annotated[int | None, strawberry.argument(description="1..500.")] = 50,
    after: Annotated[
        str | None, strawberry.argument(description="The endCursor of the previous page.")
    ] = None,
) -> AuditLogConnection | None:
    aggregate = parse_id(aggregate_id, "aggregate id")
    after_version = decode_cursor(CURSOR_KIND, after)
    actor = await viewer(info)
    await audited_tenant(info, actor, aggregate)
    log = event_log(info)
    page = await log.run_blocking(
        functools.partial(
            audit_log,
            log.aggregates,
            aggregate,
            from_=from_,
            to=to,
            first=50 if first is None else first,
            after_version=after_version,
        )
    )
    edges = [
        AuditLogEdge(
            cursor=encode_cursor(CURSOR_KIND, e.aggregate_version), node=AuditLogEntry.from_entry(e)
        )
        for e in page.entries
    ]
    return AuditLogConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
        ),
    )


@strawberry.type
class AuditQueries:
    chat_at: ChatSnapshot | None = strawberry.field(
        resolver=chat_at,
        description="A chat as it was at `asOf` (after its last event at or before then), "
        "rebuilt from the event log, deleted chats included. Auditors of its tenant and platform "
        "admins only.",
    )
    audit_log: AuditLogConnection | None = strawberry.field(
        resolver=audit_log_of,
        description="The events of one aggregate (chat, user, tenant) in log order: type, "
        "version, acting user, time and audit-chain hash. Auditors of its tenant and platform "
        "admins only.",
    )
