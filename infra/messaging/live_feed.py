"""In-process fan-out of live chat events to subscribers, each with a bounded queue.

Publishers may run in any thread (the projection and the responder do); subscribers live on the
API's event loop. A subscriber that falls more than its queue size behind is disconnected rather
than allowed to grow memory without bound: its client reconnects and re-reads from the read model.
"""

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from infra.metrics import LIVE_DROPPED, LIVE_SUBSCRIBERS

log = logging.getLogger(__name__)


class SubscriberTooSlow(Exception):
    """The subscriber's queue overflowed; it must reconnect."""


_OVERFLOW = object()


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any]
    overflowed: bool = False

    def offer(self, item: Any) -> None:
        # Runs on the subscriber's loop.
        if self.overflowed:
            return
        if self.queue.qsize() >= self.queue.maxsize - 1:
            self.overflowed = True
            self.queue.put_nowait(_OVERFLOW)
            LIVE_DROPPED.inc()
            return
        self.queue.put_nowait(item)


class LiveFeed:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = max(2, queue_size)
        self._subscribers: dict[UUID, set[_Subscriber]] = defaultdict(set)
        self._lock = threading.Lock()
        self.control: Callable[[UUID, Any], bool] | None = None
        """Sees every item first; True means it was a control item for this process (e.g. a
        stop request for the responder), not for subscribers."""

    def publish_many(self, items: Sequence[tuple[UUID, Any]]) -> None:
        """`publish` each (chat, item), in order."""
        for chat_id, item in items:
            self.publish(chat_id, item)

    def publish(self, chat_id: UUID, item: Any) -> None:
        """Deliver `item` to every subscriber of `chat_id`; safe from any thread, never blocks."""
        if self.control is not None and self.control(chat_id, item):
            return
        with self._lock:
            subscribers = list(self._subscribers.get(chat_id, ()))
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, item)
            except RuntimeError:  # the subscriber's loop is closed
                self._remove(chat_id, sub)

    def open(self, chat_id: UUID) -> "Subscription":
        """Register a subscriber now (call on its event loop); close it when done."""
        sub = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(self._queue_size))
        with self._lock:
            self._subscribers[chat_id].add(sub)
        LIVE_SUBSCRIBERS.inc()
        return Subscription(self, chat_id, sub)

    def subscriber_count(self, chat_id: UUID) -> int:
        with self._lock:
            return len(self._subscribers.get(chat_id, ()))

    def _remove(self, chat_id: UUID, sub: _Subscriber) -> bool:
        with self._lock:
            subs = self._subscribers.get(chat_id)
            if subs is None or sub not in subs:
                return False
            subs.discard(sub)
            if not subs:
                del self._subscribers[chat_id]
            return True


class Subscription:
    """One subscriber's view of a chat's live items."""

    def __init__(self, feed: LiveFeed, chat_id: UUID, sub: _Subscriber) -> None:
        self._feed = feed
        self._chat_id = chat_id
        self._sub = sub

    async def next(self) -> Any:
        item = await self._sub.queue.get()
        if item is _OVERFLOW:
            raise SubscriberTooSlow("subscriber fell behind; reconnect with afterPosition")
        return item

    def offer(self, item: Any) -> None:
        """Put an item of this process (not the chat's) in this subscriber's queue; call on its
        loop."""
        self._sub.offer(item)

    def close(self) -> None:
        if self._feed._remove(self._chat_id, self._sub):
            LIVE_SUBSCRIBERS.dec()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
