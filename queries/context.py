"""What query and subscription resolvers need from the request context."""

from typing import Protocol

from domain.actor import Actor
from infra.live_feed import LiveFeed
from queries.read_models import ReadModels


class QueryContext(Protocol):
    read_models: ReadModels
    live_feed: LiveFeed

    def actor(self) -> Actor:
        """The authenticated caller; raises NotAuthenticated."""
        ...
