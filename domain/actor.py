"""Who is acting: the authenticated caller, as the access token names them."""

from dataclasses import dataclass
from uuid import UUID

from domain.user import Role


@dataclass(frozen=True)
class Actor:
    user_id: UUID
    tenant_id: UUID
    role: Role
    expires_at: float | None = None
    """When the credential that authenticated this actor expires (Unix time)."""
    api_key_id: str | None = None
    """Set when a service account's API key authenticated this actor."""

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN
