"""Example analytics consumer of Parley's event topic: messages per tenant per UTC hour.

It reads `parley.events.v1` in a consumer group, drops records it has already processed (delivery
is at least once: a record can arrive twice, with the same `event_id`), counts
`parley.ChatSession.MessagePosted` events per tenant and hour of `occurred_at`, and prints a
table. It reads envelope fields only, which stay the same for the life of the topic, so a new
payload version (docs/events/README.md, "Versions") cannot break it.

Offsets are committed by hand after each batch is processed, so a restart with the same group
goes on where the last run stopped, and a crash re-reads (never skips) what it had not committed.
The counts here live in memory and are printed at exit; a real consumer upserts them into its
store before committing, or keeps the offsets in that store with the data.

    pip install kafka-python
    python docs/examples/analytics_consumer.py --bootstrap 127.0.0.1:19092 \\
        --group analytics-example --from-beginning --max-idle 10

Needs Python 3.11+, kafka-python and the standard library only.
"""

import argparse
import json
import logging
import signal
import sys
import time
from collections import Counter, OrderedDict
from datetime import UTC, datetime
from typing import Any, TextIO

from kafka import KafkaConsumer

MESSAGE_POSTED = "parley.ChatSession.MessagePosted"
JOIN_TIMEOUT_SECONDS = 60.0
"""With --max-idle: give up when the group has not assigned us partitions by then."""

log = logging.getLogger("analytics")


class RecentEvents:
    """The ids of the events processed most recently, at most `size` of them.

    A resend follows its original closely (the relay resends the batch it could not confirm), so
    a bounded window catches it without keeping every id ever seen.
    """

    def __init__(self, size: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


def hour_of(occurred_at: str) -> str:
    """The UTC hour an ISO 8601 instant falls in, e.g. 2026-05-04T13:00Z."""
    return datetime.fromisoformat(occurred_at).astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


class MessagesPerHour:
    """MessagePosted events per (tenant id, UTC hour), each event counted once."""

    def __init__(self, dedupe_window: int) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.records = 0
        self.duplicates = 0
        self._seen = RecentEvents(dedupe_window)

    def process(self, value: bytes) -> None:
        envelope: dict[str, Any] = json.loads(value)
        self.records += 1
        if not self._seen.first_time(envelope["event_id"]):
            self.duplicates += 1
            return
        if envelope["type"] == MESSAGE_POSTED:
            self.counts[(envelope["tenant_id"], hour_of(envelope["occurred_at"]))] += 1

    def print_table(self, out: TextIO) -> None:
        if not self.counts:
            print("no new messages", file=out, flush=True)
            return
        print(f"{'tenant':<36}  {'hour (UTC)':<17}  {'messages':>8}", file=out)
        for (tenant, hour), count in sorted(self.counts.items()):
            print(f"{tenant:<36}  {hour:<17}  {count:>8}", file=out)
        out.flush()


def lag(consumer: KafkaConsumer) -> int:
    """Records on the assigned partitions not read yet."""
    partitions = list(consumer.assignment())
    if not partitions:
        return 0
    ends = consumer.end_offsets(partitions)
    return sum(max(0, ends[p] - consumer.position(p)) for p in partitions)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id="parley-analytics-example",
        enable_auto_commit=False,
        # Only for a group without committed offsets, as kafka-console-consumer's flag.
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        max_poll_records=args.batch,
    )
    table = MessagesPerHour(args.dedupe_window)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    consumer.subscribe([args.topic])
    log.info("consuming %s as group %s", args.topic, args.group)
    started = last_record = last_report = time.monotonic()
    joined: float | None = None
    try:
        while not stopping:
            batches = consumer.poll(timeout_ms=500, max_records=args.batch)
            for records in batches.values():
                for record in records:
                    table.process(record.value)
            now = time.monotonic()
            if batches:
                # Processed: commit before the next poll, where a rebalance may hand these
                # partitions to another member of the group.
                consumer.commit()
                last_record = now
            if joined is None and consumer.assignment():
                joined = now
                log.info("assigned %d partitions", len(consumer.assignment()))
            if args.report_seconds is not None and now - last_report >= args.report_seconds:
                table.print_table(out)
                log.info("%d records read, lag %d", table.records, lag(consumer))
                last_report = now
            if args.max_idle is not None:
                idle_since = max(last_record, joined or started)
                if now - idle_since >= args.max_idle and (
                    joined is not None or now - started >= JOIN_TIMEOUT_SECONDS
                ):
                    log.info("idle for %.0f s", now - idle_since)
                    break
        table.print_table(out)
        log.info(
            "%d records read, %d duplicates dropped, lag %d",
            table.records,
            table.duplicates,
            lag(consumer),
        )
    finally:
        consumer.close()
        log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="host:port[,host:port]")
    parser.add_argument("--topic", default="parley.events.v1")
    parser.add_argument("--group", default="parley-analytics-example", help="consumer group")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="a new group starts at the oldest record (default: only new records)",
    )
    parser.add_argument(
        "--max-idle", type=float, help="exit after this many seconds without a record"
    )
    parser.add_argument(
        "--report-seconds", type=float, help="also print the table this often (default: at exit)"
    )
    parser.add_argument("--batch", type=int, default=500, help="records per poll, at most")
    parser.add_argument(
        "--dedupe-window", type=int, default=100_000, help="event ids remembered for dedupe"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    run(args)


if __name__ == "__main__":
    main()
