"""The event log and what reads and writes it: the one `eventsourcing` application, group commit,
crypto-shredded personal data and its data keys, following the log from durable positions, and
the event contract published to consumers."""
