"""Live chat events across processes over PostgreSQL `LISTEN`/`NOTIFY`, for deployments without
Redis (the embedded default split into API and worker processes).

Every process publishes its live items (durable messages from the projection, deltas from the
responder, stop requests from the API) with `pg_notify` on one channel and listens to it,
handing what arrives to its local `LiveFeed`. PostgreSQL delivers notifications in commit order
to every listening session, so one publishing connection (behind a lock) keeps a reply's deltas
in order. A payload over NOTIFY's limit (8,000 bytes) travels by reference: it is stored in the
unlogged `live_spill` table and its id is notified; spilled rows live a minute. Like Redis
pub/sub this is fire-and-forget: a subscriber that misses something re-reads durable messages
with `afterPosition`."""

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg

from infra.messaging.live_codec import decode, encode
from infra.messaging.live_feed import LiveFeed
from infra.messaging.live_items import StopRequested

log = logging.getLogger(__name__)

CHANNEL = "parley_live"
MAX_NOTIFY_BYTES = 7_900
"""PostgreSQL refuses payloads of 8,000 bytes or more; a little room for the envelope."""
SPILL_SECONDS = 60


class PostgresFanout:
    """`publish` goes through PostgreSQL; the local feed delivers to this process's subscribers.

    The listener is a thread of its own holding one `LISTEN` session (as `RedisFanout`'s holds
    one subscription): work is due when a notification arrives, and there is no position to
    fall behind on."""

    def __init__(self, conninfo: str, local: LiveFeed) -> None:
        self.local = local
        self._conninfo = conninfo
        self._publisher: psycopg.Connection[Any] | None = None
        self._publish_lock = threading.Lock()
        self._published = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="pg-fanout", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("could not LISTEN on PostgreSQL within 10 s")
        log.info("live events fan out over PostgreSQL LISTEN/NOTIFY")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._publish_lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
        log.info("live fan-out over PostgreSQL stopped")

    def publish(self, chat_id: UUID, item: Any) -> None:
        self.publish_many([(chat_id, item)])

    def publish_many(self, items: Sequence[tuple[UUID, Any]]) -> None:
        """Every item as a notification of its own, all in one round trip, in order (the
        responder sends the deltas of every reply in progress at once)."""
        # The chat (and whether it is a control item, which every process must see) in front:
        # a listener skips what no subscriber of its process wants without decoding it.
        payloads = [
            ("C" if isinstance(item, StopRequested) else "I") + str(chat_id) + encode(item)
            for chat_id, item in items
        ]
        try:
            with self._publish_lock:
                conn = self._connection()
                for n, payload in enumerate(payloads):
                    if len(payload.encode()) > MAX_NOTIFY_BYTES:
                        row = conn.execute(
                            "INSERT INTO live_spill (payload) VALUES (%s) RETURNING id",
                            (payload[37:],),
                        ).fetchone()
                        assert row is not None
                        payloads[n] = payload[:37] + json.dumps({"spill": row[0]})
                conn.execute(
                    "SELECT pg_notify(%s, p) FROM (SELECT p FROM unnest(%s::text[])"
                    " WITH ORDINALITY AS t(p, n) ORDER BY n) AS ordered",
                    (CHANNEL, payloads),
                )
                before, self._published = self._published, self._published + len(payloads)
                if before // 1000 != self._published // 1000:
                    conn.execute(
                        "DELETE FROM live_spill"
                        " WHERE created_at < now() - make_interval(secs => %s)",
                        (SPILL_SECONDS,),
                    )
        except psycopg.Error:
            # Live delivery is best effort; durable messages stay readable with afterPosition.
            log.warning("could not publish %d live events to PostgreSQL", len(payloads))
            with self._publish_lock:
                if self._publisher is not None:
                    self._publisher.close()
                    self._publisher = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._publisher is None or self._publisher.closed:
            self._publisher = psycopg.connect(self._conninfo, autocommit=True)
        return self._publisher

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                # `notifies` holds its connection while it waits: spilled payloads are read on a
                # second one.
                with (
                    psycopg.connect(self._conninfo, autocommit=True) as conn,
                    psycopg.connect(self._conninfo, autocommit=True) as reader,
                ):
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._deliver(reader, notify.payload)
            except psycopg.Error:
                log.warning("PostgreSQL fan-out connection lost; reconnecting")
                self._stop.wait(1.0)

    def _deliver(self, conn: psycopg.Connection[Any], payload: str) -> None:
        control, chat, payload = payload[:1] == "C", payload[1:37], payload[37:]
        try:
            if not control and not self.local.subscriber_count(UUID(chat)):
                return  # nobody here follows this chat
            data = json.loads(payload)
            if isinstance(data, dict) and "spill" in data:
                row = conn.execute(
                    "SELECT payload FROM live_spill WHERE id = %s", (data["spill"],)
                ).fetchone()
                if row is None:
                    return  # older than the spill table keeps: the subscriber re-reads
                payload = row[0]
            item = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("dropped a live event that could not be decoded")
            return
        self.local.publish(item.chat_id, item)
