"""Every long-running loop of a Parley process, on one of two types with the same parts.

- `log_follower.LogFollower`: work that is due because the log moved (read models, search
  index, audit ledger, Kafka relay, responder): a bounded batch after a durable position.
- `periodic_task.PeriodicTask`: work that is due because time passed (sealing the audit chain's
  partial ranges, publishing checkpoints to Kafka, the retention sweep): a bounded `run_once`
  every interval.

Both have a named daemon thread, a stop signal (`stop()` returns promptly, joined), a bounded
unit of work, a metric that says how far behind they are, and log lines when they start, stop,
fail or recover (failures also counted). The components own only their unit of work (`handle`,
`run_once`); the composition root (`api/runtime.py`) builds, starts and stops every loop.
"""
