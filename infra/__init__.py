"""Adapters to the outside: settings, Postgres, the event store, crypto, providers, telemetry."""
