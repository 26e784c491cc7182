"""Local servers for development, tests and benchmarks: fetched, started, checked and stopped by
Parley itself (`parley services up|down|status`)."""
