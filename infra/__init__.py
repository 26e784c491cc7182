"""Adapters to the outside world: settings, Postgres, the event store, crypto, providers, telemetry."""
