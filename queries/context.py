"""What query and subscription resolvers need from the request context."""

import asyncio
from typing import Protocol

from domain.actor import Actor
from infra.llm.router import BreakerStatus
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

    def actor(self) -> Actor:
        """The authenticated caller; raises NotAuthenticated."""
        ...

    def model_status(self) -> tuple[list[str], list[BreakerStatus]] | None:
        """Providers and circuit breakers of this process's responder (None: it runs in a
        worker process)."""
        ...
