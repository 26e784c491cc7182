"""A tenant's credentials: provider keys and the OIDC client secret (sealed under the master key,
bound to what they are for; re-sealed when the master key rotates) and service accounts' API
keys. Tenant admins only; people only, for API keys (a leaked key must not mint others)."""

from uuid import UUID

from commands.messages import (
    ConfigureOidc,
    CreateApiKey,
    RemoveOidc,
    RemoveProviderKey,
    ResealOidcSecret,
    ResealProviderKeys,
    RevokeApiKey,
    SetProviderKey,
)
from commands.results import IssuedApiKey, Written
from commands.unit_of_work import UnitOfWork
from domain.actor import Actor
from domain.errors import InvalidInput, NotAllowed
from domain.oidc import oidc_secret_context
from domain.policy import ADMINISTER, require_role
from domain.tenant import Tenant
from domain.user import Role
from infra.identity.api_keys import issue_api_key
from infra.identity.master_key import MasterKey, fingerprint


def set_provider_key(cmd: SetProviderKey, uow: UnitOfWork, master_key: MasterKey | None) -> Written:
    """The tenant's own key for a provider, sealed under the master key (bound to the tenant
    and provider); the plaintext is never stored or returned."""
    api_key = cmd.api_key.strip()
    if not 8 <= len(api_key) <= 1000:
        raise InvalidInput("apiKey must be 8..1000 characters")
    if master_key is None:
        raise NotAllowed("this deployment has no master key for tenant keys")
    tenant = uow.administered_tenant("set provider keys")
    tenant.set_provider_key(
        provider=cmd.provider,
        sealed=master_key.seal(api_key, f"{tenant.id}:{cmd.provider}"),
        fingerprint=fingerprint(api_key),
        last4=api_key[-4:],
    )
    return Written(id=tenant.id, position=uow.save(tenant))


def remove_provider_key(cmd: RemoveProviderKey, uow: UnitOfWork) -> Written:
    tenant = uow.administered_tenant("remove provider keys")
    tenant.remove_provider_key(cmd.provider)
    return Written(id=tenant.id, position=uow.save(tenant))


def configure_oidc(cmd: ConfigureOidc, uow: UnitOfWork, master_key: MasterKey | None) -> Written:
    """Sign-in through an OpenID Connect issuer. The client secret is sealed under the master
    key (bound to tenant, issuer and client) and never returned."""
    secret = None if cmd.client_secret is None else cmd.client_secret.strip()
    if secret and len(secret) > 1000:
        raise InvalidInput("clientSecret must be at most 1000 characters")
    if secret and master_key is None:
        raise NotAllowed("this deployment has no master key for client secrets")
    tenant = uow.administered_tenant("configure OIDC sign-in")
    issuer, client_id = cmd.issuer.strip(), cmd.client_id.strip()
    current = tenant.oidc
    same_client = current is not None and (current.issuer, current.client_id) == (
        issuer,
        client_id,
    )
    sealed: str | None = None
    if secret:
        assert master_key is not None
        sealed = master_key.seal(secret, oidc_secret_context(tenant.id, issuer, client_id))
    elif secret is None and current is not None and same_client:
        # Kept only for the same issuer and client: never sent to another token endpoint.
        sealed = current.sealed_client_secret
    tenant.configure_oidc(
        issuer=issuer,
        client_id=client_id,
        sealed_client_secret=sealed,
        allowed_domains=cmd.allowed_domains,
        auto_provision_role=cmd.auto_provision_role.value if cmd.auto_provision_role else None,
        redirect_uris=cmd.redirect_uris,
    )
    return Written(id=tenant.id, position=uow.save(tenant))


def remove_oidc(cmd: RemoveOidc, uow: UnitOfWork) -> Written:
    tenant = uow.administered_tenant("remove OIDC sign-in")
    tenant.remove_oidc()
    return Written(id=tenant.id, position=uow.save(tenant))


def reseal_provider_keys(
    cmd: ResealProviderKeys, uow: UnitOfWork, master_key: MasterKey | None
) -> int:
    """Re-record every provider key of the tenant not sealed under the current master key,
    sealed under it (the recorded ones are immutable). How many were re-sealed."""
    tenant = _resealable(uow, cmd.tenant_id, master_key)
    if tenant is None or master_key is None:
        return 0
    stale = [k for k in tenant.provider_keys.values() if not master_key.is_current(k.sealed)]
    for key in stale:
        tenant.set_provider_key(
            provider=key.provider,
            sealed=master_key.reseal(key.sealed, f"{tenant.id}:{key.provider}"),
            fingerprint=key.fingerprint,
            last4=key.last4,
        )
    if stale:
        uow.save(tenant)
    return len(stale)


def reseal_oidc_secret(cmd: ResealOidcSecret, uow: UnitOfWork, master_key: MasterKey | None) -> int:
    """Re-record the tenant's OIDC client secret sealed under the current master key, if it is
    not. 1 if it was re-sealed."""
    tenant = _resealable(uow, cmd.tenant_id, master_key)
    config = tenant.oidc if tenant is not None else None
    if tenant is None or master_key is None or config is None:
        return 0
    if config.sealed_client_secret is None or master_key.is_current(config.sealed_client_secret):
        return 0
    context = oidc_secret_context(tenant.id, config.issuer, config.client_id)
    tenant.configure_oidc(
        issuer=config.issuer,
        client_id=config.client_id,
        sealed_client_secret=master_key.reseal(config.sealed_client_secret, context),
        allowed_domains=list(config.allowed_domains),
        auto_provision_role=config.auto_provision_role,
        redirect_uris=list(config.redirect_uris),
    )
    uow.save(tenant)
    return 1


def create_api_key(cmd: CreateApiKey, uow: UnitOfWork) -> IssuedApiKey:
    """A service account's key. Its secret is returned here only; the tenant keeps its
    SHA-256."""
    me = _managing_api_keys(uow, "create API keys")
    tenant = uow.tenant(me.tenant_id)
    issued = issue_api_key(tenant.id)
    tenant.create_api_key(
        key_id=issued.key_id,
        name=cmd.name,
        role=Role(cmd.role).value,
        secret_sha256=issued.secret_sha256,
        last4=issued.last4,
    )
    position = uow.save(tenant)
    return IssuedApiKey(tenant.api_keys[issued.key_id], issued.token, position)


def revoke_api_key(cmd: RevokeApiKey, uow: UnitOfWork) -> Written:
    me = _managing_api_keys(uow, "revoke API keys")
    tenant = uow.tenant(me.tenant_id)
    tenant.revoke_api_key(cmd.key_id)
    return Written(id=tenant.id, position=uow.save(tenant))


def _resealable(uow: UnitOfWork, tenant_id: UUID, master_key: MasterKey | None) -> Tenant | None:
    """The tenant whose secrets to re-seal; none without a master key, or for a deactivated
    tenant (its secrets are never used again)."""
    if master_key is None:
        return None
    tenant = uow.tenant(tenant_id)
    return tenant if tenant.active else None


def _managing_api_keys(uow: UnitOfWork, action: str) -> Actor:
    """Only people manage keys: a leaked key must not be able to mint or keep others."""
    me = uow.acting()
    require_role(me, ADMINISTER, action)
    if me.api_key_id is not None:
        raise NotAllowed(f"API keys may not {action}; a tenant admin signs in for that")
    return me
