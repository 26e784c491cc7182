"""The event contract for consumers of the Kafka topic: a JSON Schema (draft 2020-12) for every
event type and version, the envelope's schema and the AsyncAPI document (docs/events/).

Schemas are derived from the domain's event classes, not written by hand: the fields and types
are the event class's annotations (built by `@event` from the decorated method's signature), a
field is optional when the decorated method gives its parameter a default (older events of the
same version lack it), and the values are typed as `eventsourcing`'s JSON transcoder stores them,
because the relay embeds the stored payload byte for byte.

Versions: the current `class_version` of each event class is generated; the schema file of an
older version stays in docs/events/schemas unchanged, since the topic keeps its records forever.
Within a version only new optional fields are allowed; `write_contract` refuses anything else.
"""

import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from eventsourcing.domain import Aggregate, CommandMethodDecorator

import domain
from domain.chat import MessageRole
from domain.user import Role
from infra.audit.chain import CHECKPOINT_FORMAT
from infra.eventstore.personal_data import ENCRYPTED_PREFIX, PERSONAL_DATA_FIELDS
from infra.messaging.kafka_relay import TOPIC_CONFIG
from infra.settings import Settings

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
ENVELOPE_VERSION = 1
SCHEMA_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.yaml"
ENVELOPE_FILE = f"envelope.v{ENVELOPE_VERSION}.json"
SCHEMA_FILE = re.compile(r"^(?P<type>.+)\.v(?P<version>[1-9][0-9]*)\.json$")

NOT_PERSONAL_DATA_FIELDS = frozenset(
    {
        "originator_topic",
        "name",  # a tenant's (an organisation's) name
        "slug",
        "role",
        "model",
        "default_model",
        "allowed_models",
        "fallback_models",
        "enabled_providers",  # provider names (openai, anthropic, …)
        "model_max_tokens",  # model reference -> a token count
        "system_prompt",  # the tenant's instructions to the model (an organisation's)
        "finish_reason",
        "provider",  # which provider answered (openai, anthropic, …)
        "sealed_key",  # a tenant's provider API key, AES-GCM-encrypted under the master key
        "fingerprint",  # of that key (SHA-256 prefix)
        "last4",  # of that key, as admins see it
        "client_mutation_id",  # an opaque idempotency key the client chooses
        "key_id",  # a service account API key's public id (pk_<key_id>_…)
        "key_name",  # what a tenant admin says the key is for (an integration)
        "secret_sha256",  # SHA-256 of the key's 256-bit random secret
        "issuer",  # a tenant's OpenID Connect issuer URL
        "client_id",  # Parley's client id at that issuer
        "sealed_client_secret",  # its client secret, AES-GCM-encrypted under the master key
        "allowed_domains",  # e-mail domains (organisations') that may sign in through it
        "auto_provision_role",  # the role new users get at their first OIDC sign-in
        "redirect_uris",  # the tenant's client applications' sign-in landing URLs
    }
)

FIELD_NOTES = {
    "timestamp": "When the event happened (UTC); the envelope's occurred_at is the same instant.",
    "originator_topic": "The aggregate's type; only on the event that creates the aggregate.",
    "tenant_id": "The tenant the aggregate belongs to (on Tenant events: the tenant itself).",
    "actor_id": "The user who caused the event; null when Parley itself did (assistant replies, "
    "operator commands from the CLI). Absent on events recorded before Parley recorded actors.",
    "name": "The tenant's display name.",
    "slug": "The tenant's unique handle (its id derives from it).",
    "default_model": "The model new chats use unless they ask for another allowed one.",
    "retention_days": "How long chats are kept; null: forever.",
    "email": "The user's e-mail address, lowercased (unique per tenant; the user id derives "
    "from it).",
    "password_hash": "The user's password as an argon2id hash in PHC string format ($argon2id$"
    "v=19$m=…,t=…,p=…$salt$hash). It is published as stored: treat the topic as holding "
    "credentials (restrict who may read it); a weak password can be guessed offline from it.",
    "owner_id": "The user who started the chat; only they write to it.",
    "title": "The chat's title.",
    "message_id": "The message's id (an assistant reply's id derives from the message it answers).",
    "content": "The message text as written (user) or generated (assistant).",
    "author_id": "The user who wrote the message; null for assistant and system messages.",
    "input_tokens": "Tokens the model read to write this reply (0 for user messages).",
    "output_tokens": "Tokens the model wrote (0 for user messages).",
    "finish_reason": "Why the model stopped (e.g. stop, length); null for user messages.",
    "latency_ms": "How long the model took for this reply; null for user messages.",
    "reply_to": "For an assistant reply: the user message it answers; otherwise null.",
    "client_mutation_id": "The idempotency key the client sent with the message, if any.",
}
"""Descriptions of fields, by name (a name means the same wherever it appears)."""
KNOWN_VALUES: dict[tuple[str, str], type[Enum]] = {
    ("parley.User.Registered", "role"): Role,
    ("parley.User.RoleChanged", "role"): Role,
    ("parley.ChatSession.MessagePosted", "role"): MessageRole,
}
"""Text fields whose values come from a domain enum: listed in the description, not enforced,
because a new value (a new role) is added within a version and consumers must tolerate it."""

# The records' stored form: eventsourcing's JSONTranscoder wraps these types in
# {"_type_": name, "_data_": value}.
TRANSCODINGS: dict[type, tuple[str, dict[str, Any], str]] = {
    UUID: (
        "uuid_hex",
        {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "A UUID as 32 lowercase hex digits (no hyphens).",
    ),
    datetime: (
        "datetime_iso",
        {"type": "string", "format": "date-time"},
        "A timezone-aware ISO 8601 date-time (Python's isoformat, UTC).",
    ),
    Decimal: ("decimal_str", {"type": "string"}, "A decimal number as a string."),
}
SCALARS: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
UUID_STRING = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$",
}
AGGREGATE_KEY = {"description": "The record key: the aggregate id (UTF-8).", **UUID_STRING}
HEX_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


class ContractError(Exception):
    """The domain's events cannot be described, or a change breaks the rules of versioning."""


@dataclass(frozen=True)
class EventType:
    """One kind of event as it appears on the topic: its type (topic) and schema version."""

    name: str
    """The event's topic, e.g. parley.ChatSession.MessagePosted (the envelope's `type`)."""
    version: int
    cls: type[Any]
    method: Any
    """The decorated command method whose signature defines the event."""

    @property
    def file_name(self) -> str:
        return f"{self.name}.v{self.version}.json"


def event_types() -> list[EventType]:
    """Every event the domain can record (the classes its `@event` methods trigger), by name."""
    found: dict[str, EventType] = {}
    for aggregate in _aggregates():
        for event_type in events_of(aggregate):
            other = found.setdefault(event_type.name, event_type)
            if other.cls is not event_type.cls:
                raise ContractError(f"{event_type.name} names two event classes")
    return sorted(found.values(), key=lambda e: e.name)


def _aggregates() -> Iterator[type[Aggregate]]:
    for module_info in pkgutil.iter_modules(domain.__path__, f"{domain.__name__}."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Aggregate)
                and value.__module__ == module.__name__
            ):
                yield value


def events_of(aggregate: type[Aggregate]) -> Iterator[EventType]:
    """The events an aggregate class's `@event` methods (its own and inherited) trigger."""
    for klass in aggregate.__mro__:
        for value in vars(klass).values():
            if not isinstance(value, CommandMethodDecorator):
                continue
            cls: Any = value.given_event_cls or getattr(aggregate, value.event_cls_name or "")
            topic = vars(cls).get("TOPIC")
            if not topic:
                raise ContractError(
                    f"{cls.__qualname__} needs an explicit topic: @event(..., topic=)"
                )
            yield EventType(
                name=topic,
                version=int(getattr(cls, "class_version", 1)),
                cls=cls,
                method=value.decorated_func,
            )


# -- JSON Schemas ----------------------------------------------------------------------------


def event_schema(event: EventType) -> dict[str, Any]:
    """The JSON Schema of one event type's payload (the stored state the record embeds)."""
    hints = typing.get_type_hints(event.cls)
    parameters = inspect.signature(event.method).parameters
    names = [f.name for f in dataclasses.fields(event.cls)]
    names = [n for n in names if n not in ("originator_id", "originator_version")]
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name in names:
        properties[name] = _field_schema(event, name, hints[name], defs)
        parameter = parameters.get(name)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            required.append(name)
    # Stamped on every event by infra.eventstore.event_store.EventStore.save_all, not a class
    # field; not required, because events recorded before Parley stamped actors lack it.
    properties["actor_id"] = _field_schema(event, "actor_id", UUID | None, defs)
    if event.version > 1:
        # eventsourcing adds it to the stored state of events whose class_version exceeds 1.
        properties["class_version"] = {"const": event.version}
        required.append("class_version")
    return {
        "$schema": DIALECT,
        "$id": f"urn:parley:event:{event.name}:v{event.version}",
        "title": f"{event.name} v{event.version}",
        "description": f"Payload of {event.name} events, schema version {event.version}: the "
        "event's state as Parley stored it (eventsourcing's JSON transcoding). Unknown "
        "properties may appear within a version (new optional fields): ignore them.",
        "x-event-type": event.name,
        "x-schema-version": event.version,
        "type": "object",
        "properties": properties,
        "required": required,
        "$defs": defs,
    }


ENCRYPTED_NOTE = (
    f"Personal data, encrypted per data subject: `{ENCRYPTED_PREFIX}<key id>:<base64url(nonce "
    "‖ AES-256-GCM ciphertext+tag)>` (events recorded before encryption existed: plain text). "
    "Unreadable for good once the data subject is erased (docs/gdpr.md)."
)


def _field_schema(event: EventType, name: str, hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = _type_schema(hint, defs, where=f"{event.name}.{name}")
    notes = [FIELD_NOTES[name]] if name in FIELD_NOTES else []
    if (event.name, name) in KNOWN_VALUES:
        values = ", ".join(m.value for m in KNOWN_VALUES[(event.name, name)])
        notes.append(f"Known values: {values} (others may be added).")
    if notes:
        schema = {"description": " ".join(notes), **schema}
    if _is_text(hint):
        if name in PERSONAL_DATA_FIELDS:
            schema.pop("description", None)
            schema = {"description": " ".join([*notes, ENCRYPTED_NOTE]), **schema}
            schema["x-personal-data"] = True
        elif name not in NOT_PERSONAL_DATA_FIELDS:
            raise ContractError(
                f"classify the text field {event.name}.{name}: add it to PERSONAL_DATA_FIELDS "
                "(infra/eventstore/personal_data.py) or NOT_PERSONAL_DATA_FIELDS in "
                "infra/eventstore/event_contract.py"
            )
    return schema


def _is_text(hint: Any) -> bool:
    return hint is str or any(_is_text(arg) for arg in typing.get_args(hint))


def _type_schema(hint: Any, defs: dict[str, Any], *, where: str) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = (
            _type_schema(options[0], defs, where=where)
            if len(options) == 1
            else {"anyOf": [_type_schema(a, defs, where=where) for a in options]}
        )
        if len(options) == len(args):
            return inner
        if list(inner) == ["type"] and isinstance(inner["type"], str):
            return {"type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, tuple, set, frozenset) and args:
        return {"type": "array", "items": _type_schema(args[0], defs, where=where)}
    if origin is dict and args and args[0] is str:
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs, where=where)}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"enum": [member.value for member in hint]}
    if hint in TRANSCODINGS:
        name, data, description = TRANSCODINGS[hint]
        defs[name] = {
            "description": f"{description} (eventsourcing's '{name}' transcoding)",
            "type": "object",
            "properties": {"_type_": {"const": name}, "_data_": data},
            "required": ["_type_", "_data_"],
            "additionalProperties": False,
        }
        return {"$ref": f"#/$defs/{name}"}
    if hint in SCALARS:
        return {"type": SCALARS[hint]}
    raise ContractError(f"{where}: no JSON Schema for the type {hint!r}")


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


# -- versioning rules ------------------------------------------------------------------------

ANNOTATIONS = ("description", "title", "x-personal-data")


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` cannot replace `old` as the same version (empty: it only adds optional fields)."""
    problems = []
    old_properties, new_properties = old["properties"], new["properties"]
    for name, schema in old_properties.items():
        if name not in new_properties:
            problems.append(f"field {name} was removed")
        elif _strip(schema, old) != _strip(new_properties[name], new):
            problems.append(f"field {name} changed its type")
    for name in set(new["required"]) - set(old["required"]):
        problems.append(
            f"field {name} is new and required"
            if name not in old_properties
            else f"field {name} became required"
        )
    for name in set(old["required"]) - set(new["required"]):
        if name in new_properties:
            problems.append(f"field {name} became optional")
    return problems


def _strip(schema: Any, root: dict[str, Any]) -> Any:
    """A schema without its annotations, with local references resolved (for comparing types)."""
    if isinstance(schema, list):
        return [_strip(s, root) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _strip(root["$defs"][schema["$ref"].removeprefix("#/$defs/")], root)
    return {k: _strip(v, root) for k, v in schema.items() if k not in ANNOTATIONS}


# -- the files -------------------------------------------------------------------------------


def contract(out_dir: Path) -> dict[Path, str]:
    """Every generated file of the contract under out_dir (docs/events) and its text.

    Schema files of older versions found in out_dir/schemas are kept as they are and listed in
    the AsyncAPI document; a changed schema of an existing version must only add optional fields.
    """
    schema_dir = out_dir / SCHEMA_DIR
    current = event_types()
    fields = {(e.name, f.name) for e in current for f in dataclasses.fields(e.cls)}
    for unknown in sorted(set(KNOWN_VALUES) - fields):
        raise ContractError(f"KNOWN_VALUES names {'.'.join(unknown)}, which no event has")
    files: dict[Path, str] = {schema_dir / ENVELOPE_FILE: _json(envelope_schema())}
    for event in current:
        schema = event_schema(event)
        path = schema_dir / event.file_name
        if path.exists():
            problems = breaking_changes(json.loads(path.read_text()), schema)
            if problems:
                raise ContractError(
                    f"{event.name} v{event.version} would change incompatibly ("
                    + "; ".join(problems)
                    + f"): raise class_version of {event.cls.__qualname__} to "
                    f"{event.version + 1} and add upcast_v{event.version}_v{event.version + 1} "
                    "(docs/events/README.md, Versions)"
                )
        files[path] = _json(schema)
    versions = {(e.name, e.version) for e in current} | set(older_versions(out_dir))
    files[out_dir / ASYNCAPI_FILE] = _yaml(asyncapi_document(sorted(versions)))
    return files


def older_versions(out_dir: Path) -> list[tuple[str, int]]:
    """(type, version) of the schema files kept from earlier versions of current event types."""
    latest = {e.name: e.version for e in event_types()}
    kept = []
    for path in sorted((out_dir / SCHEMA_DIR).glob("*.json")):
        match = SCHEMA_FILE.match(path.name)
        if match and int(match["version"]) < latest.get(match["type"], 0):
            kept.append((match["type"], int(match["version"])))
    return kept


def stale_files(out_dir: Path) -> list[Path]:
    """Files in out_dir/schemas that describe nothing Parley records (neither current nor kept)."""
    expected = set(contract(out_dir)) | {
        out_dir / SCHEMA_DIR / f"{name}.v{version}.json"
        for name, version in older_versions(out_dir)
    }
    return sorted(p for p in (out_dir / SCHEMA_DIR).glob("*") if p not in expected)


def write_contract(out_dir: Path) -> list[Path]:
    """Write the schemas of every event type's current version, the envelope schema and the
    AsyncAPI document under out_dir (docs/events); return the paths written."""
    files = contract(out_dir)
    (out_dir / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block style for long and multi-line text, so the AsyncAPI document reads like prose."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # repeat shared values instead of writing &anchors


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else ">" if len(value) > 80 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _yaml(value: dict[str, Any]) -> str:
    header = (
        "# Generated from the domain's event classes by infra/eventstore/event_contract.py: "
        "do not edit.\n"
    )
    return header + yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# -- AsyncAPI --------------------------------------------------------------------------------

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


if __name__ == "__main__":
    for written in write_contract(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(written)
