"""Tamper evidence: the hash chain and signed checkpoints (`chain`), their tables (`store`), where
verification reads history from (`sources`), the verification itself (`verify`, with the
checkpoints' signatures in `signatures`), what it compares (`records`) and finds (`report`), and
the offline bundle's format (`bundle`)."""
