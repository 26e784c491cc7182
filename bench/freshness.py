"""`python -m bench freshness`: from a command's acknowledgement to visibility downstream.

A real `parley serve` (read models, search index on Elasticsearch, audit ledger, Kafka relay and
the responder all in process, as deployed on one machine) on a scratch database. A client sends
`sendMessage` over GraphQL/HTTP at a fixed rate; for each acknowledged message the benchmark
watches, from threads of its own:

- the read model: the message's row in `rm_messages` (PostgreSQL full-text search reads the same
  row, written in the same transaction, so this is also "searchable in Postgres");
- Elasticsearch: the message's document found by a search (what `searchMessages` sees; the index
  refreshes every second by default);
- Kafka: the message's record on the topic (behind the audit ledger, which chains it first).

Prints p50/p99/max lag per sink and how many never arrived, and writes
bench/results/freshness-<time>.json.
"""

import json
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass

import httpx
import psycopg
from kafka import KafkaConsumer, TopicPartition

from bench import options
from bench.options import option
from bench.report import Lags, Run, package_versions, print_columns
from bench.server import SEND_MESSAGE, START_CHAT, bearer, new_tenant, scratch_server
from bench.services import elasticsearch_url, kafka_bootstrap
from infra.postgres import PostgresTarget
from infra.settings import Settings
from testbed.processes import Server

SINKS = ("read model", "elasticsearch", "kafka")


@dataclass(frozen=True)
class Options:
    messages: int = options.messages(300)
    rate: float = options.rate(20.0)
    timeout: float = option(30.0, "seconds to wait per sink")
    keep: bool = options.keep("the scratch database, the server's data directory and the index")


class Watch:
    """Acknowledgement and arrival times per message id, per sink."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, float] = {}
        self.seen: dict[str, dict[str, float]] = {sink: {} for sink in SINKS}
        self.stop = threading.Event()

    def pending(self, sink: str) -> list[str]:
        with self.lock:
            return [m for m in self.acked if m not in self.seen[sink]]

    def arrived(self, sink: str, message_id: str, at: float) -> None:
        with self.lock:
            self.seen[sink].setdefault(message_id, at)

    def lags(self, sink: str) -> list[float]:
        with self.lock:
            return [self.seen[sink][m] - t for m, t in self.acked.items() if m in self.seen[sink]]


def watch_read_model(watch: Watch, conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while not watch.stop.is_set():
            pending = watch.pending("read model")
            if pending:
                rows = conn.execute(
                    "SELECT message_id::text FROM readmodels.rm_messages"
                    " WHERE message_id = ANY(%s::uuid[])",
                    (pending,),
                ).fetchall()
                now = time.perf_counter()
                for (m,) in rows:
                    watch.arrived("read model", m, now)
            time.sleep(0.002)


def watch_elasticsearch(watch: Watch, url: str, index: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as es:
        while not watch.stop.is_set():
            pending = watch.pending("elasticsearch")
            if pending:
                hits = es.post(
                    f"/{index}/_search",
                    json={
                        "size": len(pending),
                        "_source": ["message_id"],
                        "query": {"terms": {"message_id": pending}},
                    },
                ).json()["hits"]["hits"]
                now = time.perf_counter()
                for hit in hits:
                    watch.arrived("elasticsearch", hit["_source"]["message_id"], now)
            time.sleep(0.01)


def watch_kafka(watch: Watch, bootstrap: str, topic: str, ready: threading.Event) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        while not consumer.partitions_for_topic(topic):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} did not appear")
            time.sleep(0.2)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for p in partitions:
            consumer.position(p)
        ready.set()
        while not watch.stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope["type"] != "parley.ChatSession.MessagePosted":
                        continue
                    message = envelope["payload"].get("message_id")
                    if isinstance(message, dict):  # eventsourcing's {"_type_": "uuid_hex", …}
                        watch.arrived("kafka", str(uuid.UUID(hex=message["_data_"])), now)
    finally:
        consumer.close()


@dataclass
class Figures:
    sink: str
    arrived: int
    missing: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def figures(watch: Watch, sent: int) -> list[Figures]:
    out = []
    for sink in SINKS:
        lags = watch.lags(sink)
        out.append(Figures(sink, len(lags), sent - len(lags), *Lags.of(lags, 1)))
    return out


@dataclass(frozen=True)
class Sinks:
    kafka: str
    topic: str
    elasticsearch: str
    index: str


def send_and_watch(
    opts: Options, server: Server, target: PostgresTarget, watch: Watch, sinks: Sinks
) -> int:
    """Send the messages at the fixed rate, noting each acknowledgement, while threads watch
    for them in every sink; the number sent."""
    kafka, topic, es_url, index = sinks.kafka, sinks.topic, sinks.elasticsearch, sinks.index
    sent = 0
    try:
        _, client = new_tenant(server)
        chat = client.run(START_CHAT, {"i": {"title": "freshness"}})["startChat"]["chatId"]
        kafka_ready = threading.Event()
        threads = [
            threading.Thread(target=watch_read_model, args=(watch, target.conninfo())),
            threading.Thread(target=watch_elasticsearch, args=(watch, es_url, index)),
            threading.Thread(target=watch_kafka, args=(watch, kafka, topic, kafka_ready)),
        ]
        for t in threads:
            t.daemon = True
            t.start()
        if not kafka_ready.wait(90):
            raise RuntimeError("the Kafka watcher did not start")
        http = httpx.Client(timeout=30, headers=bearer(client.token))
        began = time.perf_counter()
        for n in range(opts.messages):
            due = began + n / opts.rate
            time.sleep(max(0.0, due - time.perf_counter()))
            body = http.post(
                f"{server.url}/graphql",
                json={
                    "query": SEND_MESSAGE,
                    "variables": {"i": {"chatId": chat, "content": f"m{n}"}},
                },
            ).json()
            acked = time.perf_counter()
            if body.get("errors"):
                raise RuntimeError(f"sendMessage failed: {body['errors']}")
            with watch.lock:
                watch.acked[body["data"]["sendMessage"]["messageId"]] = acked
            sent += 1
            if n and n % 50 == 0:
                print(f"sent {n}/{opts.messages}", file=sys.stderr)
        deadline = time.perf_counter() + opts.timeout
        while time.perf_counter() < deadline and any(watch.pending(s) for s in SINKS):
            time.sleep(0.1)
        watch.stop.set()
        for t in threads:
            t.join(timeout=10)
    finally:
        watch.stop.set()
    return sent


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "freshness", __doc__)
    settings = Settings()
    kafka, es_url = kafka_bootstrap(settings), elasticsearch_url(settings)
    run_id = uuid.uuid4().hex[:8]
    topic, index = f"bench-{run_id}.events", f"parley-bench-{run_id}"
    env = {
        "PARLEY_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "PARLEY_KAFKA_TOPIC": topic,
        "PARLEY_KAFKA_CHECKPOINT_TOPIC": f"{topic}.checkpoints",
        "PARLEY_ELASTICSEARCH_URL": es_url,
        "PARLEY_ELASTICSEARCH_INDEX": index,
        "PARLEY_ECHO_DELAY_MS": "1",
    }
    run = Run("freshness")
    watch = Watch()
    try:
        with scratch_server("freshness", env, keep=opts.keep) as (server, target):
            sent = send_and_watch(opts, server, target, watch, Sinks(kafka, topic, es_url, index))
    finally:
        if not opts.keep:
            with httpx.Client(base_url=es_url, timeout=10) as es:
                es.delete(f"/{index}*")
    results = figures(watch, sent)
    print_columns(
        ("sink", "arrived", "missing", "p50 ms", "p99 ms", "max ms"),
        [(f.sink, *(str(v) for v in astuple(f)[1:])) for f in results],
    )
    run.record(
        {
            **asdict(opts),
            "server": "parley serve, workers in process, Elasticsearch search, Kafka relay, "
            "echo replies (1 ms per word); scratch database on the local PostgreSQL",
            "acknowledged": "the sendMessage HTTP response received by the client",
            "watchers": "threads in the benchmark process: SQL every 2 ms, an ES search every "
            "10 ms, a Kafka consumer (poll 100 ms timeout, returns as records arrive)",
        },
        packages=package_versions("eventsourcing", "psycopg", "kafka-python", "elasticsearch"),
        sinks=[asdict(f) for f in results],
    )
    return 1 if any(f.missing for f in results) else 0
