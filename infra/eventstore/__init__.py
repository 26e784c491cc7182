"""The event log and what reads and writes it: the one `eventsourcing` application, group commit,
crypto-shredded personal data and its data keys, the durable positions of the log's followers
(the loop that follows it is `infra/loops/log_follower.py`), and the event contract published to
consumers."""
