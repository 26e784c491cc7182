"""Personal data inside events, encrypted per data subject (crypto-shredding).

The mapper stores each personal field (PERSONAL_DATA_FIELDS) of an event as
`enc:v1:<key id>:<base64url(nonce ‖ AES-256-GCM ciphertext+tag)>`, under the data key of the
event's aggregate (infra/eventstore/data_keys.py). The associated data binds the ciphertext to its
aggregate, version and field, so it cannot be moved to another event or field. Everything else
(type, ids, times, roles, models, token counts) stays readable for auditors and analytics.

Reading: a field whose key was destroyed reads as ERASED; fields stored before encryption
existed (plain strings) read as they are. An event whose stored bytes do not decode, or whose
ciphertext does not authenticate, raises HistoryTampered naming its position.
"""

import base64
import json
import logging
import os
from collections.abc import Callable
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
    Transcoder,
)

from domain.erased import ERASED
from domain.errors import HistoryTampered
from infra.eventstore.data_keys import DataKeys, Subject
from infra.metrics import HISTORY_TAMPERED

log = logging.getLogger(__name__)

PERSONAL_DATA_FIELDS = frozenset(
    {"email", "display_name", "password_hash", "title", "content", "content_sha256"}
)
"""Text fields holding a data subject's personal data: encrypted per subject in the log (hence
on Kafka). Every text field of an event must be classified here or in
infra/eventstore/event_schemas.py NOT_PERSONAL_DATA_FIELDS, so a new field cannot slip through."""

ENCRYPTED_PREFIX = "enc:v1:"
_NONCE = 12
_TAG = 16

PositionOf = Callable[[UUID, int], int | None]
"""The log position of an aggregate's event (aggregate id, version), None if there is none."""


class PersonalDataMapper(Mapper[UUID]):
    def __init__(self, transcoder: Transcoder, keys: DataKeys, position_of: PositionOf) -> None:
        super().__init__(transcoder=transcoder)
        self.keys = keys
        self.position_of = position_of

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = vars(domain_event)
        personal = [f for f in PERSONAL_DATA_FIELDS if isinstance(state.get(f), str)]
        if not personal:
            return super().to_stored_event(domain_event)
        aggregate_id = domain_event.originator_id
        version = domain_event.originator_version
        key = self.keys.for_writing(subject_of(domain_event))
        aead = AESGCM(key)
        sealed = dict(state)
        for field in personal:
            sealed[field] = encrypt(aead, aggregate_id, version, field, state[field])
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", sealed)
        return super().to_stored_event(copy)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        # Only what proves the bytes are not as written is caught: a master key that does not
        # open a data key, or a topic this version does not know, is not tampering.
        try:
            event = super().to_domain_event(stored_event)
            state = vars(event)
            for field in PERSONAL_DATA_FIELDS:
                value = state.get(field)
                if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX):
                    state[field] = self.decrypt(
                        value, event.originator_id, event.originator_version, field
                    )
        except (MapperDeserialisationError, InvalidTag) as e:
            raise self.tampered(stored_event) from e
        return event

    def decrypt(self, value: str, aggregate_id: UUID, version: int, field: str) -> str:
        """The field's plaintext; ERASED once its key was destroyed. Raises InvalidTag when the
        value is not what was sealed (its encoding mangled counts as a wrong tag)."""
        key_id, _, body = value[len(ENCRYPTED_PREFIX) :].partition(":")
        try:
            subject, raw = UUID(key_id), base64.urlsafe_b64decode(body)
        except ValueError:  # binascii.Error is one
            raise InvalidTag from None
        if len(raw) < _NONCE + _TAG:
            raise InvalidTag
        key = self.keys.get(subject)
        if key is None:
            return ERASED
        plain = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(aggregate_id, version, field))
        return str(json.loads(plain))

    def tampered(self, stored: StoredEvent) -> HistoryTampered:
        """The error naming an event that does not decode, by its log position."""
        aggregate_id, version = stored.originator_id, stored.originator_version
        assert isinstance(aggregate_id, UUID), aggregate_id
        # Followers hand in notifications (which carry it); the repository, bare stored events.
        position = (
            stored.id
            if isinstance(stored, Notification)
            else self.position_of(aggregate_id, version)
        )
        HISTORY_TAMPERED.inc()
        log.error(
            "history altered: the stored event at position %s (aggregate %s, version %s) does not "
            "decode; run `parley audit verify`",
            position,
            aggregate_id,
            version,
        )
        return HistoryTampered(aggregate_id, version, position)


def subject_of(event: Any) -> Subject:
    """Whose data the event holds: its aggregate, owned by the chat's owner or the user."""
    aggregate_id: UUID = event.originator_id
    kind = type(event).__qualname__.split(".")[0].lower()  # "ChatSession.MessagePosted" → …
    owner = getattr(event, "owner_id", None)
    if kind == "user":
        owner = aggregate_id
    return Subject(aggregate_id, event.tenant_id, owner, kind)


def encrypt(aead: AESGCM, aggregate_id: UUID, version: int, field: str, value: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = aead.encrypt(nonce, json.dumps(value).encode(), _aad(aggregate_id, version, field))
    body = base64.urlsafe_b64encode(nonce + sealed).decode()
    return f"{ENCRYPTED_PREFIX}{aggregate_id}:{body}"


def _aad(aggregate_id: UUID, version: int, field: str) -> bytes:
    return f"{aggregate_id}|{version}|{field}".encode()
