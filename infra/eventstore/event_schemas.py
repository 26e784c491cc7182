"""The JSON Schema (draft 2020-12) of every event type's payload, and the rules of versioning.

Schemas are derived from the domain's event classes, not written by hand: the fields and types
are the event class's annotations (built by `@event` from the decorated method's signature), a
field is optional when the decorated method gives its parameter a default (older events of the
same version lack it), and the values are typed as `eventsourcing`'s JSON transcoder stores them,
because the relay embeds the stored payload byte for byte. Every text field is classified as
personal data or not, so a new one cannot reach the topic unexamined.

Within a version only new optional fields are allowed (`breaking_changes`). The records these
payloads travel in are `record_schemas`; the files under docs/events are `event_contract`.
"""

import dataclasses
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import typing_extensions
from eventsourcing.domain import Aggregate, CommandMethodDecorator

import domain
from domain.chat import MessageRole
from domain.user import Role
from infra.eventstore.personal_data import ENCRYPTED_PREFIX, PERSONAL_DATA_FIELDS

DIALECT = "https://json-schema.org/draft/2020-12/schema"

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
        "collection",  # a document's collection: personal or tenant
        "media_type",  # a document's type as sniffed from its bytes (application/pdf, …)
        "embedding_model",  # the embedding model that embedded a document's passages
        "code",  # why a document's processing failed, as a stable code
        "reason",  # the same for people: what Parley found in the bytes, never their text
        "document_id",  # in a citation: a document's id
        "chunk_id",  # in a citation: a passage's id
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
    "owner_id": "The user who started the chat (only they write to it), or who uploaded a "
    "personal document (null for a document of the tenant's collection).",
    "title": "The chat's title, or the document's file name.",
    "message_id": "The message's id (an assistant reply's id derives from the message it answers).",
    "content": "The message text as written (user) or generated (assistant).",
    "author_id": "The user who wrote the message; null for assistant and system messages.",
    "input_tokens": "Tokens the model read to write this reply (0 for user messages).",
    "output_tokens": "Tokens the model wrote (0 for user messages).",
    "finish_reason": "Why the model stopped (e.g. stop, length); null for user messages.",
    "latency_ms": "How long the model took for this reply; null for user messages.",
    "reply_to": "For an assistant reply: the user message it answers; otherwise null.",
    "client_mutation_id": "The idempotency key the client sent with the message, if any.",
    "collection": "Whose document: `personal` (its owner's) or `tenant` (the tenant's "
    "collection, which admins manage; owner_id is null).",
    "media_type": "The document's type, sniffed from its bytes (not the uploader's claim).",
    "size_bytes": "The document's size in bytes.",
    "content_sha256": "SHA-256 of the document's bytes, hex (personal: it confirms a guess of a "
    "small file's contents).",
    "revision": "Which processing of the document: 1 for the upload, one more for each "
    "ProcessingRequested. Passages (and citations) are per revision.",
    "chunks": "How many passages the revision was cut into.",
    "characters": "Characters of text extracted from the document.",
    "pages": "Pages of a PDF; null for other types.",
    "embedding_model": "The model that embedded the passages (provider/model).",
    "code": "Why processing failed, as a stable code (UNSUPPORTED_DOCUMENT, DOCUMENT_TOO_LARGE, "
    "UNREADABLE_DOCUMENT, DOCUMENT_MISSING).",
    "reason": "The same for people: what Parley found in the bytes, never their text.",
    "document_ids": "The documents the chat's replies are grounded in.",
    "tenant_collection": "Whether the tenant's whole collection grounds the chat's replies too.",
    "citations": "For an assistant reply grounded in documents: every passage it was given, "
    "best first (`rank`), and whether the reply cited it. The passage's text is not in the "
    "event: read it by chunk_id through the API (`Message.citations`), where it shows as erased "
    "once the document was deleted or its owner erased.",
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
                "infra/eventstore/event_schemas.py"
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
    if typing_extensions.is_typeddict(hint):
        fields = typing.get_type_hints(hint)
        for field, field_hint in fields.items():
            if _is_text(field_hint) and field not in NOT_PERSONAL_DATA_FIELDS:
                raise ContractError(f"classify the text field {where}.{field}")
        return {
            "type": "object",
            "properties": {
                field: _type_schema(field_hint, defs, where=f"{where}.{field}")
                for field, field_hint in fields.items()
            },
            "required": sorted(hint.__required_keys__),
        }
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
