"""Service accounts' API keys as the Tenant aggregate keeps them (`ApiKey`: only a hash of the
secret), the roles and number a tenant may have, and the user id a key acts as."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.base import stable_id

API_KEY_ROLES = frozenset({"member", "auditor", "tenant_admin"})
"""Roles a service account may have: never platform_admin (keys are bound to one tenant)."""
MAX_API_KEYS = 100
"""Unrevoked keys per tenant."""


@dataclass(frozen=True)
class ApiKey:
    """A service account's key: only the SHA-256 of its secret is kept."""

    key_id: str
    name: str
    role: str
    secret_sha256: str
    last4: str
    created_at: datetime
    revoked_at: datetime | None = None


def service_account_id(tenant_id: UUID, key_id: str) -> UUID:
    """The user id an API key acts as: stable, so its events and chats stay attributable."""
    return stable_id("service-account", tenant_id, key_id)
