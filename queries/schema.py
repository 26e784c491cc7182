"""Query and subscription resolvers. They read only read models and the live feed."""

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from domain.actor import Actor
from domain.base import parse_id
from domain.errors import InvalidInput, NotFound
from domain.policy import (
    ADMINISTER,
    LIST_TENANTS,
    LIST_USERS,
    allows,
    chat_owner_filter,
    require_role,
    usage_user_filter,
)
from infra.messaging.live_items import (
    ChatRemoved,
    MessageRow,
)
from infra.messaging.live_items import (
    ReplyDelta as LiveReplyDelta,
)
from queries.callers import current_actor, visible
from queries.context import QueryContext
from queries.subscription_checks import CallerRechecked, CallerRefused
from queries.types import (
    ChatDeleted,
    ChatEvent,
    ChatStatus,
    Message,
    MessageAdded,
    MessageConnection,
    ModelDeployment,
    ModelGatewayStatus,
    PageInfo,
    ReplyDelta,
    Tenant,
    UsageDimension,
    UsageRow,
    User,
    check_first,
    decode_cursor,
    decode_key_cursor,
    encode_cursor,
    encode_key_cursor,
)

AfterPosition = Annotated[
    int | None,
    strawberry.argument(
        description="Wait (bounded) until the read models include this log position, as "
        "returned by a mutation, so that you read your own writes."
    ),
]


async def viewer(info: Info[QueryContext, None], after_position: int | None = None) -> Actor:
    """The caller as the read models know them now, once they reached `after_position`.

    Deactivated users read nothing, and the role is the current one, not the token's claim
    (a user too new to be projected yet still has the role they registered with).
    """
    actor = info.context.actor()
    read_models = info.context.read_models
    await read_models.wait_for(after_position)
    return current_actor(actor, await read_models.user(actor.tenant_id, actor.user_id))


PageRequest = tuple[int, int | None]
"""A page of messages: how many (`first`) after which position (`after`'s)."""


async def viewer_and_chat(
    info: Info[QueryContext, None],
    chat_id: UUID,
    after_position: int | None = None,
    page: PageRequest | None = None,
) -> tuple[Actor, Any, list[tuple[Any, ...]]]:
    """`viewer` and the chat it may read (else NotFound), in one read transaction; with `page`,
    that page of the chat's messages from the same transaction (no page: no rows)."""
    actor = info.context.actor()
    read_models = info.context.read_models
    await read_models.wait_for(after_position)
    rows: list[tuple[Any, ...]] = []
    if page is None:
        user, chat = await read_models.user_and_chat(actor.tenant_id, actor.user_id, chat_id)
    else:
        user, chat, rows = await read_models.user_chat_and_page(
            actor.tenant_id, actor.user_id, chat_id, first=page[0] + 1, after_seq=page[1]
        )
    actor = current_actor(actor, user)
    return actor, visible(actor, chat), rows


def page_request(first: int, after: str | None) -> PageRequest:
    """`first` and `after` of `Chat.messages`, checked (else InvalidInput)."""
    return check_first(first, maximum=200), decode_cursor("msg", after)


def selected_page(info: Info[QueryContext, None]) -> PageRequest | None:
    """The page of the one `messages` field selected directly on this chat, so that it can be
    read with the chat in one transaction; None when there is none, several, one behind a
    directive or fragment, or arguments that do not check (`Chat.messages` then reads its page
    itself, and reports)."""
    selected = info.selected_fields
    fields = [
        s
        for s in (selected[0].selections if len(selected) == 1 else ())
        if isinstance(s, SelectedField) and s.name == "messages"
    ]
    if len(fields) != 1 or fields[0].directives:
        return None
    # Literals arrive as their text, variables as their values.
    arguments = {"first": 50, "after": None, **fields[0].arguments}
    first, after = arguments["first"], arguments["after"]
    if not isinstance(first, int | str) or not (after is None or isinstance(after, str)):
        return None
    try:
        return page_request(int(first), after)
    except (InvalidInput, ValueError):
        return None


def breaker_visible(actor: Actor, deployment: str) -> bool:
    """The platform's breakers are everyone's; a tenant's own-key breaker, which the router names
    `<model> (<tenant id>)`, is that tenant's alone (its name and errors are the tenant's)."""
    _, scoped, scope = deployment.partition(" (")
    return not scoped or actor.is_platform_admin or scope == f"{actor.tenant_id})"


def until_expiry(actor: Actor) -> float | None:
    """Seconds until the caller's token expires (None: it does not)."""
    if actor.expires_at is None:
        return None
    return max(0.01, actor.expires_at - time.time() + 0.01)


@strawberry.type
class Chat:
    id: strawberry.ID
    title: str
    model: str
    status: ChatStatus
    owner_id: strawberry.ID
    message_count: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    position: int = strawberry.field(description="Log position of the event that started it.")
    tenant_id: strawberry.Private[UUID]
    page: strawberry.Private[tuple[PageRequest, list[tuple[Any, ...]]] | None] = None
    """A page of messages read with the chat (`Query.chat`), and which."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Chat":
        return cls(
            id=strawberry.ID(str(row["chat_id"])),
            title=row["title"],
            model=row["model"],
            status=ChatStatus(row["status"]),
            owner_id=strawberry.ID(str(row["owner_id"])),
            message_count=row["message_count"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_message_at=row["last_message_at"],
            position=row["seq"],
            tenant_id=row["tenant_id"],
        )

    @strawberry.field(description="Messages, oldest first.")
    async def messages(
        self, info: Info[QueryContext, None], first: int = 50, after: str | None = None
    ) -> MessageConnection:
        request = page_request(first, after)
        if self.page is not None and self.page[0] == request:
            rows = self.page[1]
        else:
            rows = await info.context.read_models.message_page(
                self.tenant_id, UUID(self.id), first=first + 1, after_seq=request[1]
            )
        nodes = [Message.from_columns(r) for r in rows[:first]]
        return MessageConnection(
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=encode_cursor("msg", nodes[-1].position) if nodes else None,
            ),
        )


@strawberry.type
class ChatEdge:
    cursor: str
    node: Chat


def chat_edges(root: "ChatConnection") -> list[ChatEdge]:
    """Built for the clients that ask: a page read through `nodes` makes no edge or cursor."""
    return [ChatEdge(cursor=encode_cursor("chat", c.position), node=c) for c in root.nodes]


@strawberry.type
class ChatConnection:
    edges: list[ChatEdge] = strawberry.field(resolver=chat_edges)
    page_info: PageInfo
    nodes: list[Chat]


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    nodes: list[User]


@strawberry.type
class TenantEdge:
    cursor: str
    node: Tenant


@strawberry.type
class TenantConnection:
    edges: list[TenantEdge]
    page_info: PageInfo
    nodes: list[Tenant]


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user.")
    async def me(
        self, info: Info[QueryContext, None], after_position: AfterPosition = None
    ) -> User:
        actor = await viewer(info, after_position)
        row = await info.context.read_models.user(actor.tenant_id, actor.user_id)
        if row is None:
            raise NotFound("user not found (yet): pass afterPosition from login")
        return User.from_row(row)

    @strawberry.field(description="Your tenant: name, slug and model settings.")
    async def tenant(
        self, info: Info[QueryContext, None], after_position: AfterPosition = None
    ) -> Tenant:
        actor = await viewer(info, after_position)
        row = await info.context.read_models.tenant_row(actor.tenant_id)
        if row is None:
            raise NotFound("tenant not found (yet): pass afterPosition")
        return Tenant.from_row(row, admin=allows(actor, ADMINISTER))

    @strawberry.field(
        description="Usage of your tenant between two days (inclusive, UTC), grouped by any of "
        "DAY, USER, MODEL. Tenant admins and auditors see everyone; members only themselves."
    )
    async def usage(
        self,
        info: Info[QueryContext, None],
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        group_by: list[UsageDimension] | None = None,
        after_position: AfterPosition = None,
    ) -> list[UsageRow]:
        actor = await viewer(info, after_position)
        if to < from_ or (to - from_).days > 3660:
            raise InvalidInput("`to` must be on or after `from`, at most ten years later")
        rows = await info.context.read_models.usage(
            actor.tenant_id,
            start=from_,
            end=to,
            group_by=[d.value for d in group_by or []],
            user_id=usage_user_filter(actor),
        )
        return [UsageRow.from_row(r) for r in rows if r["user_messages"] is not None]

    @strawberry.field(
        description="Tenant and platform admins: the model providers and each deployment's "
        "circuit breaker, as the process that produces replies last reported them (null "
        "before it has)."
    )
    async def model_gateway(self, info: Info[QueryContext, None]) -> ModelGatewayStatus | None:
        actor = await viewer(info)
        require_role(actor, ADMINISTER, "see the model gateway's status")
        report = await info.context.model_status()
        if report is None:
            return None
        return ModelGatewayStatus(
            providers=report.providers,
            reported_at=report.reported_at,
            deployments=[
                ModelDeployment(
                    deployment=b.deployment,
                    state=b.state,
                    consecutive_failures=b.consecutive_failures,
                    open_seconds_left=b.open_seconds_left,
                    last_error=b.last_error,
                )
                for b in report.deployments
                if breaker_visible(actor, b.deployment)
            ],
        )

    @strawberry.field(description="Your chats, newest first (auditors: every chat of the tenant).")
    async def chats(
        self,
        info: Info[QueryContext, None],
        first: int = 20,
        after: str | None = None,
        after_position: AfterPosition = None,
    ) -> ChatConnection:
        actor = await viewer(info, after_position)
        first = check_first(first)
        rows = await info.context.read_models.chats(
            actor.tenant_id,
            chat_owner_filter(actor),
            first=first + 1,
            before_seq=decode_cursor("chat", after),
        )
        nodes = [Chat.from_row(r) for r in rows[:first]]
        return ChatConnection(
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=encode_cursor("chat", nodes[-1].position) if nodes else None,
            ),
        )

    @strawberry.field(
        description="The users of your tenant, inactive ones included, by e-mail. Tenant admins "
        "and auditors (members: FORBIDDEN)."
    )
    async def users(
        self,
        info: Info[QueryContext, None],
        first: int = 50,
        after: str | None = None,
        after_position: AfterPosition = None,
    ) -> UserConnection:
        actor = await viewer(info, after_position)
        require_role(actor, LIST_USERS, "list the tenant's users")
        first = check_first(first)
        key = decode_key_cursor("user", after, 2)
        rows = await info.context.read_models.users(
            actor.tenant_id,
            first=first + 1,
            after=(key[0], parse_id(key[1], "cursor")) if key is not None else None,
        )
        page = rows[:first]
        return UserConnection(
            edges=[
                UserEdge(
                    cursor=encode_key_cursor("user", r["email"], str(r["user_id"])),
                    node=User.from_row(r),
                )
                for r in page
            ],
            nodes=[User.from_row(r) for r in page],
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=encode_key_cursor("user", page[-1]["email"], str(page[-1]["user_id"]))
                if page
                else None,
            ),
        )

    @strawberry.field(
        description="Every tenant of the platform, by slug (modelSettings is null here). "
        "Platform admins only (everyone else: FORBIDDEN)."
    )
    async def tenants(
        self, info: Info[QueryContext, None], first: int = 50, after: str | None = None
    ) -> TenantConnection:
        actor = await viewer(info)
        require_role(actor, LIST_TENANTS, "list the platform's tenants")
        first = check_first(first)
        key = decode_key_cursor("tenant", after, 1)
        rows = await info.context.read_models.tenant_directory(
            first=first + 1, after_slug=key[0] if key is not None else None
        )
        page = [Tenant.from_row(r) for r in rows[:first]]
        return TenantConnection(
            edges=[TenantEdge(cursor=encode_key_cursor("tenant", t.slug), node=t) for t in page],
            nodes=page,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=encode_key_cursor("tenant", page[-1].slug) if page else None,
            ),
        )

    @strawberry.field(description="One chat, if you may see it.")
    async def chat(
        self,
        info: Info[QueryContext, None],
        id: strawberry.ID,
        after_position: AfterPosition = None,
    ) -> Chat:
        page = selected_page(info)
        _, row, rows = await viewer_and_chat(info, parse_id(id, "chat id"), after_position, page)
        chat = Chat.from_row(row)
        if page is not None:
            chat.page = (page, rows)
        return chat


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Live events of one chat: durable messages (MessageAdded), the reply being "
        "generated (ReplyDelta), and ChatDeleted. With afterPosition, messages recorded after that "
        "position are replayed first, so a reconnecting client misses nothing."
    )
    async def chat_events(
        self,
        info: Info[QueryContext, None],
        chat_id: strawberry.ID,
        after_position: AfterPosition = None,
    ) -> AsyncGenerator[ChatEvent, None]:
        chat_uuid = parse_id(chat_id, "chat id")
        # Subscriptions read the read models in turns (`subscription_reads`): a storm of them,
        # say 10,000 clients reconnecting after a deploy, queues here instead of taking every
        # read connection from queries (or timing out in the pool).
        reads = info.context.subscription_reads
        async with reads:
            actor, _, _ = await viewer_and_chat(info, chat_uuid, after_position)
        token_actor = info.context.actor()
        with (
            info.context.live_feed.open(chat_uuid) as live,
            # Deactivation, a role change, a chat out of sight: re-checked with every other
            # subscription of this process (queries/subscription_checks.py).
            info.context.subscription_checks.watch(
                info.context.read_models, reads, token_actor, actor, chat_uuid, live
            ),
        ):
            # Registered for live items before reading the backlog; de-duplicate by position.
            delivered = after_position or 0
            if after_position:
                while True:
                    async with reads:
                        rows = await info.context.read_models.messages(
                            actor.tenant_id, chat_uuid, first=200, after_seq=delivered
                        )
                    for row in rows:
                        delivered = row["seq"]
                        yield MessageAdded(message=Message.from_row(row))
                    if len(rows) < 200:
                        break
            # Replies being generated: the text so far first (resumable streams). Live deltas
            # already in it are skipped by offset.
            sent: dict[UUID, int] = {}
            partial = await asyncio.to_thread(info.context.partial_replies.snapshot, chat_uuid)
            for reply_id, text in partial.items():
                sent[reply_id] = len(text)
                yield ReplyDelta(
                    chat_id=strawberry.ID(str(chat_uuid)),
                    message_id=strawberry.ID(str(reply_id)),
                    delta=text,
                    offset=0,
                )
            while True:
                try:
                    item = await asyncio.wait_for(live.next(), timeout=until_expiry(actor))
                except TimeoutError:
                    info.context.actor()  # raises UNAUTHENTICATED: the token expired
                    continue
                if isinstance(item, CallerRefused):
                    raise item.error
                if isinstance(item, CallerRechecked):
                    actor = replace(item.actor, expires_at=actor.expires_at)
                    continue
                if isinstance(item, MessageRow):
                    if item.seq <= delivered:
                        continue
                    delivered = item.seq
                    yield MessageAdded(message=Message.from_row(item))
                elif isinstance(item, LiveReplyDelta):
                    have = sent.get(item.message_id, item.offset)
                    new_text = item.delta[max(0, have - item.offset) :]
                    if not new_text:
                        continue  # already in the text sent on subscribing
                    sent[item.message_id] = max(have, item.offset) + len(new_text)
                    yield ReplyDelta(
                        chat_id=strawberry.ID(str(item.chat_id)),
                        message_id=strawberry.ID(str(item.message_id)),
                        delta=new_text,
                        offset=item.offset + (len(item.delta) - len(new_text)),
                    )
                elif isinstance(item, ChatRemoved):
                    yield ChatDeleted(chat_id=strawberry.ID(str(item.chat_id)))
                    return
