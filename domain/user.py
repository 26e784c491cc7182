"""The User aggregate: a person (or later a service) acting inside one tenant."""

import re
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import TenantScopedAggregate, check_length, check_text, stable_id
from domain.erased import ERASED
from domain.errors import InvalidInput, NotAllowed

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{1,63}$")


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    MEMBER = "member"
    AUDITOR = "auditor"


def normalize_email(email: str) -> str:
    email = check_text(email, field="email").strip().lower()
    if len(email) > 320 or not EMAIL_PATTERN.match(email):
        raise InvalidInput("email is not a valid address")
    return email


def user_id_for(tenant_id: UUID, email: str) -> UUID:
    """Ids derive from (tenant, e-mail): the event store enforces unique e-mails per tenant."""
    return stable_id("user", tenant_id, normalize_email(email))


class User(TenantScopedAggregate):
    TOPIC = "parley.User"

    class Event(TenantScopedAggregate.Event):
        TOPIC = "parley.User.Event"
        tenant_id: UUID

    @staticmethod
    def create_id(tenant_id: UUID, email: str, **_: object) -> UUID:  # type: ignore[override]
        return user_id_for(tenant_id, email)

    @classmethod
    def register(
        cls, *, tenant_id: UUID, email: str, display_name: str, role: Role, password_hash: str
    ) -> "User":
        return cls(
            tenant_id=tenant_id,
            email=normalize_email(email),
            display_name=check_length(display_name, field="display name", low=1, high=200),
            role=Role(role).value,
            password_hash=password_hash,
        )

    @event("Registered", topic="parley.User.Registered")
    def __init__(
        self, tenant_id: UUID, email: str, display_name: str, role: str, password_hash: str
    ) -> None:
        self.tenant_id = tenant_id
        self.email = email
        self.display_name = display_name
        self.role = Role(role)
        self.password_hash = password_hash
        """argon2id hash; never leaves the write side."""
        self.active = True
        self.erased = False

    def change_role(self, role: Role) -> None:
        self.ensure_active()
        if Role(role) != self.role:
            self._role_changed(role=Role(role).value)

    @event("RoleChanged", topic="parley.User.RoleChanged")
    def _role_changed(self, role: str) -> None:
        self.role = Role(role)

    def change_password_hash(self, password_hash: str) -> None:
        self.ensure_active()
        self._password_changed(password_hash=password_hash)

    @event("PasswordChanged", topic="parley.User.PasswordChanged")
    def _password_changed(self, password_hash: str) -> None:
        self.password_hash = password_hash

    def deactivate(self) -> None:
        if self.active:
            self._deactivated()

    @event("Deactivated", topic="parley.User.Deactivated")
    def _deactivated(self) -> None:
        self.active = False

    def erase(self, keys_destroyed: int) -> None:
        """Record the erasure of the user's personal data (their data keys were destroyed just
        before: what the events held is unreadable from now on)."""
        if not getattr(self, "erased", False):
            self._erased(keys_destroyed=keys_destroyed)

    @event("Erased", topic="parley.User.Erased")
    def _erased(self, keys_destroyed: int) -> None:
        self.active = False
        self.erased = True
        self.email = self.display_name = ERASED
        self.password_hash = ""

    def ensure_active(self) -> None:
        """No action by a deactivated user."""
        if not self.active:
            raise NotAllowed("user is deactivated")
