"""Live chat events across API processes over Redis pub/sub.

Every process publishes its live items (durable messages from its projection, deltas from its
responder) to `parley:chat:<chat id>` and listens to `parley:chat:*`, handing what arrives to its
local `LiveFeed`, whose subscribers keep their bounded queues. Pub/sub is fire-and-forget: a
subscriber that misses something re-reads durable messages with `afterPosition`.
"""

import logging
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import redis

from infra.messaging.live_codec import decode, encode
from infra.messaging.live_feed import LiveFeed

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "parley:chat:"


class RedisFanout:
    """`publish` goes through Redis; the local feed delivers to this process's subscribers.

    The listener is a thread of its own, not a PeriodicTask (`infra/loops/`): it holds one
    subscription open and Redis pushes to it, so work is due when a message arrives, not when
    time passes; and pub/sub has no position to fall behind on: a message arrives at once or is
    lost (subscribers re-read durable messages with `afterPosition`; one that falls behind its
    queue is dropped and counted in `parley_live_subscribers_dropped_total`)."""

    def __init__(self, url: str, local: LiveFeed) -> None:
        self.local = local
        self._client = redis.Redis.from_url(url, socket_timeout=5, health_check_interval=10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="redis-fanout", daemon=True)
        self._ready = threading.Event()

    def start(self) -> None:
        self._client.ping()  # fail at start-up, not at the first message
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("could not subscribe to Redis within 10 s")
        log.info("live events fan out over Redis")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()
        log.info("live fan-out over Redis stopped")

    def publish_many(self, items: Sequence[tuple[UUID, Any]]) -> None:
        """Every item on its chat's channel, in one round trip (a pipeline), in order."""
        try:
            pipe = self._client.pipeline(transaction=False)
            for chat_id, item in items:
                pipe.publish(f"{CHANNEL_PREFIX}{chat_id}", encode(item))
            pipe.execute()
        except redis.RedisError:
            log.warning("could not publish %d live events to Redis", len(items))

    def publish(self, chat_id: UUID, item: Any) -> None:
        try:
            self._client.publish(f"{CHANNEL_PREFIX}{chat_id}", encode(item))
        except redis.RedisError:
            # Live delivery is best effort; durable messages stay readable with afterPosition.
            log.warning("could not publish a live event for chat %s to Redis", chat_id)

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                self._ready.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is None:
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    chat_id = UUID(channel.removeprefix(CHANNEL_PREFIX))
                    self.local.publish(chat_id, decode(message["data"]))
            except redis.RedisError:
                log.warning("Redis fan-out connection lost; reconnecting")
                self._stop.wait(1.0)
            finally:
                pubsub.close()
