"""What commands answer: the aggregate they touched and the log position a reader waits for
(`afterPosition`), plus what only the command can tell (a new key's secret, shown once)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.api_keys import ApiKey


@dataclass(frozen=True)
class Written:
    """What a command produced: the aggregate it touched and the log position to wait for."""

    id: UUID
    position: int
    duplicate: bool = False


@dataclass(frozen=True)
class TenantCreated:
    tenant_id: UUID
    admin_user_id: UUID
    position: int


@dataclass(frozen=True)
class MessageSent:
    chat_id: UUID
    message_id: UUID
    content: str
    model: str | None
    created_at: datetime | None
    position: int
    duplicate: bool


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    token: str
    """`pk_<key id>_<secret>`: shown to the tenant admin once, never stored."""
    position: int
