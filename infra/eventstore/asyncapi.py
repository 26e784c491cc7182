"""The AsyncAPI 3.0 document of the event topic (one message per event type and version) and
the checkpoint topic: channels, bindings and messages that refer to the schema files."""

from typing import Any

from infra.eventstore.record_schemas import (
    AGGREGATE_KEY,
    ENVELOPE_FILE,
    ENVELOPE_VERSION,
    SCHEMA_DIR,
    checkpoint_schema,
    headers_schema,
)
from infra.messaging.kafka_relay import TOPIC_CONFIG
from infra.settings import Settings

SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING = "0.5.0"


def message_name(name: str, version: int) -> str:
    return f"{name}.v{version}"


def asyncapi_document(versions: list[tuple[str, int]]) -> dict[str, Any]:
    """AsyncAPI 3.0 for the event topic (one message per event type and version) and the
    checkpoint topic."""
    defaults = Settings.model_fields
    events_topic = defaults["kafka_topic"].default
    checkpoint_topic = defaults["kafka_checkpoint_topic"].default
    partitions = defaults["kafka_partitions"].default
    topic_configuration = {
        "cleanup.policy": [TOPIC_CONFIG["cleanup.policy"]],
        "retention.ms": int(TOPIC_CONFIG["retention.ms"]),
        "retention.bytes": int(TOPIC_CONFIG["retention.bytes"]),
    }
    messages = {}
    for name, version in versions:
        messages[message_name(name, version)] = {
            "name": name,
            "title": f"{name} v{version}",
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/RecordHeaders"},
            "payload": {
                "schemaFormat": SCHEMA_FORMAT,
                "schema": {
                    "allOf": [
                        {"$ref": f"{SCHEMA_DIR}/{ENVELOPE_FILE}"},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": name},
                                "schema_version": {"const": version},
                                "payload": {"$ref": f"{SCHEMA_DIR}/{name}.v{version}.json"},
                            },
                        },
                    ]
                },
            },
            "bindings": {
                "kafka": {
                    "key": AGGREGATE_KEY,
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        }
    event_refs = [{"$ref": f"#/channels/events/messages/{m}"} for m in messages]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley events",
            "version": f"{ENVELOPE_VERSION}.0.0",
            "description": "Every event Parley records, in log order, for analytics and audit "
            "consumers. Delivery is at least once (deduplicate by event_id), in order per "
            "aggregate. See docs/events/README.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The broker `parley services up` runs for development.",
            }
        },
        "channels": {
            "events": {
                "address": events_topic,
                "title": "Every event",
                "description": "Key: the aggregate id, so one aggregate's events share a "
                "partition, in order. Unlimited retention, no compaction. The name and partition "
                "count are PARLEY_KAFKA_TOPIC and PARLEY_KAFKA_PARTITIONS (defaults shown).",
                "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
                "bindings": {
                    "kafka": {
                        "topic": events_topic,
                        "partitions": partitions,
                        "topicConfiguration": topic_configuration,
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            },
            "auditCheckpoints": {
                "address": checkpoint_topic,
                "title": "Signed audit checkpoints",
                "description": "One record per sealed checkpoint, published after every event it "
                "covers is on the event topic. Name: PARLEY_KAFKA_CHECKPOINT_TOPIC.",
                "messages": {"auditCheckpoint": {"$ref": "#/components/messages/auditCheckpoint"}},
                "bindings": {
                    "kafka": {
                        "topic": checkpoint_topic,
                        "partitions": 1,
                        "topicConfiguration": topic_configuration,
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            },
        },
        "operations": {
            "consumeEvents": {
                "action": "receive",
                "title": "Consume the events",
                "description": "Read with a consumer group, commit offsets after processing, "
                "drop records whose event_id was already processed.",
                "channel": {"$ref": "#/channels/events"},
                "messages": event_refs,
            },
            "consumeAuditCheckpoints": {
                "action": "receive",
                "title": "Consume the audit checkpoints",
                "channel": {"$ref": "#/channels/auditCheckpoints"},
                "messages": [{"$ref": "#/channels/auditCheckpoints/messages/auditCheckpoint"}],
            },
        },
        "components": {
            "schemas": {
                "RecordHeaders": headers_schema(),
                "CheckpointHeaders": {
                    "type": "object",
                    "properties": {
                        "seq": {"description": "As the value's seq.", "type": "string"},
                        "key_id": {"description": "As the value's key_id.", "type": "string"},
                    },
                    "required": ["seq", "key_id"],
                },
                "AuditCheckpoint": checkpoint_schema(),
            },
            "messages": {
                **messages,
                "auditCheckpoint": {
                    "name": "auditCheckpoint",
                    "title": "Signed audit checkpoint",
                    "contentType": "application/json",
                    "headers": {"$ref": "#/components/schemas/CheckpointHeaders"},
                    "payload": {"$ref": "#/components/schemas/AuditCheckpoint"},
                    "bindings": {
                        "kafka": {
                            "key": {"description": "The checkpoint's seq.", "type": "string"},
                            "bindingVersion": KAFKA_BINDING,
                        }
                    },
                },
            },
        },
    }
