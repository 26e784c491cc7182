"""`python -m bench NAME [options]`: run one benchmark; with no name, list them."""

import importlib
import logging
import signal
import sys
from types import FrameType

# name -> (module with `main(argv) -> int`, what it measures)
BENCHMARKS = {
    "write": (
        "bench.write",
        "durable sendMessage commands/s with group commit vs plain eventsourcing and its ceiling",
    ),
    "api": (
        "bench.api",
        "GraphQL over HTTP with auth: sendMessage, messages(first: 50), chats; req/s, p50/p99",
    ),
    "fanout": (
        "bench.fanout",
        "N WebSocket subscribers of chatEvents: delivery p50/p99, drops, memory per connection",
    ),
    "freshness": (
        "bench.freshness",
        "acknowledged sendMessage to visible: read model, Elasticsearch, Kafka (p50/p99)",
    ),
    "projections": (
        "bench.projections",
        "catch-up rate of the Postgres read models and the search index, batched vs per event",
    ),
    "relay": (
        "bench.relay",
        "audit ledger, Kafka relay (vs a bare kafka-python producer) and audit verify rates",
    ),
    "gateway": (
        "bench.gateway",
        "reply latency through GraphQL (first token, whole reply) vs the bare openai SDK",
    ),
    "knowledge": (
        "bench.knowledge",
        "documents to answers: PDF pages/s, passages embedded/s, index writes; recall@5 and MRR "
        "of hybrid vs BM25 vs vector on labelled questions; search p50/p99 at 100,000 passages",
    ),
    "all": (
        "bench.summary",
        "write, api, gateway and fanout in turn, then one table of issue 16's targets and the "
        "CPU each kind of process used",
    ),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench NAME [options]   (NAME --help for its options)\n")
        print("benchmarks:")
        for name, (_, summary) in BENCHMARKS.items():
            print(f"  {name:<14} {summary}")
        return 0
    name, *rest = argv
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM unwinds like Ctrl-C, so a stopped run still drops its database and indexes.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    module = importlib.import_module(BENCHMARKS[name][0])
    return int(module.main(rest))


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
