"""A tenant's OpenID Connect sign-in as the Tenant aggregate keeps it (`OidcConfig`), what its
client secret is sealed to, and the rules its settings follow (roles an OIDC sign-in may create
users with, e-mail domain names, web URLs for the issuer and redirect URIs)."""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

from domain.base import check_length
from domain.errors import InvalidInput

OIDC_PROVISION_ROLES = frozenset({"member", "auditor"})
"""Roles an OIDC sign-in may create users with; admins are always promoted explicitly."""
DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class OidcConfig:
    """A tenant's OpenID Connect sign-in: the issuer it trusts and Parley's client there."""

    issuer: str
    client_id: str
    sealed_client_secret: str | None
    """Sealed under the master key, bound to tenant, issuer and client; None: a public client."""
    allowed_domains: tuple[str, ...]
    """E-mail domains that may sign in this way (empty: any existing user)."""
    auto_provision_role: str | None
    """Unknown users of an allowed domain are created with this role (None: refused)."""
    redirect_uris: tuple[str, ...]
    """Where a finished sign-in may send the browser (exact match)."""


def oidc_secret_context(tenant_id: UUID, issuer: str, client_id: str) -> str:
    """What a tenant's OIDC client secret is sealed to: it opens for that issuer and client only."""
    return f"{tenant_id}:oidc:{issuer}:{client_id}"


def check_web_url(value: str, *, field: str) -> str:
    """An absolute https URL, or http on a loopback address (local development and tests)."""
    url = check_length(value, field=field, low=1, high=2000)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidInput(f"{field} is not a valid URL") from None
    if parts.username is not None or parts.password is not None or parts.fragment or not host:
        raise InvalidInput(f"{field} must be an absolute URL without credentials or fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return url
    raise InvalidInput(f"{field} must use https (http only on a loopback address)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
