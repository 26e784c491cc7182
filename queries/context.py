"""What query and subscription resolvers need from the request context."""

from typing import Protocol

from domain.actor import Actor
from infra.live_feed import LiveFeed
from queries.read_models import ReadModels
from queries.search import SearchIndex


class QueryContext(Protocol):
    read_models: ReadModels
    live_feed: LiveFeed
    search: SearchIndex

    def actor(self) -> Actor:
        """The authenticated caller; raises NotAuthenticated."""
        ...
