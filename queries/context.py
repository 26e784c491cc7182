"""What query and subscription resolvers need from the request context."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from domain.actor import Actor
from infra.knowledge.retrieval import Knowledge
from infra.llm.gateway_report import GatewayReport
from infra.messaging.live_feed import LiveFeed
from infra.messaging.reply_buffer import ReplyBuffer
from queries.read_models import ReadModels
from queries.search import SearchIndex
from queries.subscription_checks import SubscriptionChecks


class QueryContext(Protocol):
    read_models: ReadModels
    live_feed: LiveFeed
    search: SearchIndex
    partial_replies: ReplyBuffer
    subscription_checks: SubscriptionChecks
    """Re-checks every live subscription's caller (deactivation, role, chat in sight)."""
    subscription_reads: asyncio.Semaphore
    """Read-model queries of subscriptions (start, backlog, re-check) at once."""
    knowledge: Knowledge
    """Documents' passages (blocking calls: through `run_blocking`)."""
    run_blocking: Callable[..., Awaitable[Any]]

    def actor(self) -> Actor:
        """The authenticated caller; raises NotAuthenticated."""
        ...

    async def model_status(self) -> GatewayReport | None:
        """Providers and circuit breakers as the replying process (this one, or the worker
        process) last reported them; None before it has."""
        ...
