"""Events on their way out: the Kafka relay, live fan-out to subscribers (in process and over
Redis pub/sub) and the text of replies still being generated."""
