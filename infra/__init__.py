"""Adapters to the outside, one sub-package per capability:

- `eventstore/`: the event log (the `eventsourcing` application, group commit, crypto-shredding
  and data keys, the followers' positions, the event contract);
- `loops/`: every long-running loop's machinery: log followers and periodic tasks;
- `identity/`: passwords, tokens and their signing keys, API keys, OpenID Connect, the master key,
  the caller as they are now;
- `audit/`: the hash chain, signed checkpoints and their verification;
- `messaging/`: the Kafka relay, live fan-out (in process, Redis), replies in progress;
- `llm/`: the model providers and the router over them;
- `services/`: the local PostgreSQL, Redis, Kafka and Elasticsearch that `parley services` runs;

and, beside them, `settings` (every `PARLEY_*` setting), `postgres` (the embedded server, URLs,
pools), `metrics` (Prometheus), `rate_limits` (token buckets) and `lru` (the bounded caches).
Adapters import third-party libraries and `domain/`, never `commands/`, `queries/`,
`projections/` or `api/`."""
