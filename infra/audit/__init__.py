"""Tamper evidence: the hash chain and signed checkpoints (`chain`), their tables (`store`), where
verification reads history from (`sources`) and the verification itself (`verify`)."""
