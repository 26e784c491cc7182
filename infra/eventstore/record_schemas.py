"""The records on the topics, as JSON Schemas: the envelope every event travels in (its
payload is described by `event_schemas`), the headers beside it, and the signed audit
checkpoint records."""

from typing import Any

from infra.audit.chain import CHECKPOINT_FORMAT
from infra.eventstore.event_schemas import DIALECT

ENVELOPE_VERSION = 1
SCHEMA_DIR = "schemas"
ENVELOPE_FILE = f"envelope.v{ENVELOPE_VERSION}.json"

UUID_STRING = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$",
}
AGGREGATE_KEY = {"description": "The record key: the aggregate id (UTF-8).", **UUID_STRING}
HEX_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of a record value on the event topic
    (infra.messaging.kafka_relay.encode_record)."""
    return {
        "$schema": DIALECT,
        "$id": f"urn:parley:envelope:v{ENVELOPE_VERSION}",
        "title": f"Parley event record v{ENVELOPE_VERSION}",
        "description": "The value of every record on the event topic: UTF-8 JSON, fields in this "
        "order, the stored payload embedded byte for byte last. Validate `payload` against "
        f"{SCHEMA_DIR}/<type>.v<schema_version>.json.",
        "type": "object",
        "properties": {
            "event_id": {
                "description": "The event's stable id (uuid5 of aggregate id and version): the "
                "same on every resend; deduplicate by it.",
                **UUID_STRING,
            },
            "type": {
                "description": "The event type, e.g. parley.ChatSession.MessagePosted. Ignore "
                "types you do not know.",
                "type": "string",
            },
            "schema_version": {
                "description": "The version of the payload's schema.",
                "type": "integer",
                "minimum": 1,
            },
            "tenant_id": {
                "description": "The tenant the event belongs to (null only for events without "
                "one; there are none today).",
                "anyOf": [UUID_STRING, {"type": "null"}],
            },
            "aggregate_id": {
                "description": "The aggregate (tenant, user or chat) the event belongs to; also "
                "the record key.",
                **UUID_STRING,
            },
            "aggregate_version": {
                "description": "The event's version within its aggregate: 1, 2, 3… without gaps.",
                "type": "integer",
                "minimum": 1,
            },
            "position": {
                "description": "The event's position in Parley's log: the global order across all "
                "aggregates and partitions (increasing, not necessarily gapless).",
                "type": "integer",
                "minimum": 1,
            },
            "occurred_at": {
                "description": "When the event happened (ISO 8601, UTC).",
                "type": "string",
                "format": "date-time",
            },
            "payload": {
                "description": "The event's stored state, as Parley stored it.",
                "type": "object",
            },
        },
        "required": [
            "event_id",
            "type",
            "schema_version",
            "tenant_id",
            "aggregate_id",
            "aggregate_version",
            "position",
            "occurred_at",
            "payload",
        ],
    }


RECORD_HEADERS = {
    "event_id": "As the envelope's event_id.",
    "event_type": "As the envelope's type.",
    "schema_version": "As the envelope's schema_version (decimal).",
    "tenant_id": "As the envelope's tenant_id (empty when null).",
    "aggregate_id": "As the envelope's aggregate_id.",
    "aggregate_version": "As the envelope's aggregate_version (decimal).",
    "position": "As the envelope's position (decimal).",
    "occurred_at": "As the envelope's occurred_at.",
    "chain_hash": "The audit hash chain at this event's position (64 hex digits): see "
    "docs/audit.md.",
    "content_type": "application/json",
}
"""Every event record's headers (UTF-8 strings), so consumers can route without parsing values."""


def headers_schema() -> dict[str, Any]:
    return {
        "description": "Kafka record headers; each value is a UTF-8 string.",
        "type": "object",
        "properties": {
            name: (
                {"description": note, **HEX_SHA256}
                if name == "chain_hash"
                else {"description": note, "type": "string"}
            )
            for name, note in RECORD_HEADERS.items()
        },
        "required": list(RECORD_HEADERS),
    }


def checkpoint_schema() -> dict[str, Any]:
    """A record value on the checkpoint topic (infra.audit.chain.Checkpoint.to_json, canonical
    JSON)."""
    return {
        "description": "A signed audit checkpoint (canonical JSON: sorted keys, no spaces). The "
        "Ed25519 signature covers the canonical JSON of every other field; see docs/audit.md.",
        "type": "object",
        "properties": {
            "format": {"const": CHECKPOINT_FORMAT},
            "seq": {"type": "integer", "minimum": 1},
            "from_position": {"description": "Exclusive.", "type": "integer", "minimum": 0},
            "to_position": {"description": "Inclusive.", "type": "integer", "minimum": 0},
            "count": {"type": "integer", "minimum": 0},
            "merkle_root": {"description": "RFC 6962 Merkle root of the leaves.", **HEX_SHA256},
            "chain_hash": {"description": "The hash chain at to_position.", **HEX_SHA256},
            "previous": {"description": "SHA-256 of the previous checkpoint.", **HEX_SHA256},
            "created_at": {"type": "string", "format": "date-time"},
            "key_id": {
                "description": "First 16 hex digits of the SHA-256 of the raw public key.",
                "type": "string",
                "pattern": "^[0-9a-f]{16}$",
            },
            "signature": {"description": "Ed25519 signature, base64.", "type": "string"},
        },
        "required": [
            "format",
            "seq",
            "from_position",
            "to_position",
            "count",
            "merkle_root",
            "chain_hash",
            "previous",
            "created_at",
            "key_id",
            "signature",
        ],
    }
