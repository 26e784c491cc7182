"""Benchmarks: run with `python -m bench NAME`; they print figures and never fail on a time."""
