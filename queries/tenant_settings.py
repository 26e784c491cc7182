"""A tenant's settings as its admins see them (provider keys, API keys, the OIDC sign-in), and
the OIDC client the sign-in flow needs before anyone is signed in.

Read from the tenant aggregate in the event store, not a read model: an admin sees what they
just changed. Synchronous (the event store is): run off the event loop."""

import logging
from dataclasses import dataclass
from uuid import UUID

from domain.actor import Actor
from domain.api_keys import ApiKey
from domain.errors import InvalidInput, NotAllowed, NotFound
from domain.model_settings import ProviderKey
from domain.oidc import OidcConfig, oidc_secret_context
from domain.policy import ADMINISTER, require_role
from domain.tenant import Tenant, tenant_id_for_slug, validate_slug
from infra.eventstore.event_store import EventStore
from infra.identity.acting import acting_now
from infra.identity.master_key import MasterKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OidcClient:
    """What the sign-in flow needs of a tenant's OIDC configuration, the secret opened."""

    tenant_id: UUID
    config: OidcConfig
    client_secret: str | None


def provider_keys(store: EventStore, actor: Actor) -> list[ProviderKey]:
    """Tenant admins: the tenant's own provider keys (only how to recognise them)."""
    keys = _administered_tenant(store, actor, "see provider keys").provider_keys.values()
    return sorted(keys, key=lambda k: k.provider)


def api_keys(store: EventStore, actor: Actor) -> list[ApiKey]:
    """Tenant admins: the tenant's API keys, revoked ones included, oldest first."""
    keys = _administered_tenant(store, actor, "see API keys").api_keys.values()
    return sorted(keys, key=lambda k: k.created_at)


def oidc_config(store: EventStore, actor: Actor) -> OidcConfig | None:
    """Tenant admins: the tenant's OIDC sign-in, if configured."""
    return _administered_tenant(store, actor, "see the OIDC configuration").oidc


def oidc_client(store: EventStore, master_key: MasterKey | None, tenant_slug: str) -> OidcClient:
    """For the sign-in flow, before anyone is signed in: the tenant's OIDC client."""
    try:
        tenant = store.get_or_none(tenant_id_for_slug(validate_slug(tenant_slug)), readonly=True)
    except InvalidInput:
        tenant = None
    if not isinstance(tenant, Tenant) or not tenant.active or tenant.oidc is None:
        raise NotFound("this tenant has no OIDC sign-in")
    config, secret = tenant.oidc, None
    if config.sealed_client_secret is not None:
        if master_key is None:
            raise NotAllowed("this deployment has no master key for client secrets")
        context = oidc_secret_context(tenant.id, config.issuer, config.client_id)
        try:
            secret = master_key.open(config.sealed_client_secret, context)
        except ValueError:
            # E.g. sealed under a master key that is no longer configured.
            log.exception("cannot open the OIDC client secret of tenant %s", tenant.id)
            raise NotAllowed(
                "this tenant's OIDC client secret cannot be decrypted: an admin must set it again"
            ) from None
    return OidcClient(tenant_id=tenant.id, config=config, client_secret=secret)


def _administered_tenant(store: EventStore, actor: Actor, action: str) -> Tenant:
    """The caller's tenant, when the caller (as they are now) administers it."""
    me = acting_now(store, actor)
    require_role(me, ADMINISTER, action)
    tenant = store.get_or_none(me.tenant_id, readonly=True)
    if not isinstance(tenant, Tenant):
        raise NotFound("tenant not found")
    return tenant
