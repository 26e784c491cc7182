"""Tenant commands: create (with its first admin), the platform tenant's bootstrap, rename,
deactivate, and the tenant's model, retention, rate and budget settings."""

from dataclasses import replace

from eventsourcing.persistence import IntegrityError

from commands.messages import (
    ChangeTenantSettings,
    CreatePlatformAdmin,
    CreateTenant,
    DeactivateTenant,
    RenameTenant,
)
from commands.results import TenantCreated, Written
from commands.unit_of_work import UnitOfWork
from commands.users import new_user
from domain.errors import Conflict, InvalidInput
from domain.limits import Limits
from domain.policy import ADMINISTER, PLATFORM, require_role, target_tenant
from domain.tenant import Tenant, tenant_id_for_slug
from domain.user import Role, User

PLATFORM_SLUG = "platform"


def create_tenant(cmd: CreateTenant, uow: UnitOfWork) -> TenantCreated:
    """Platform operation (a platform admin, or an operator at the command line: no caller): a
    tenant and its first tenant admin."""
    if cmd.slug == PLATFORM_SLUG:
        raise InvalidInput(f"the slug {PLATFORM_SLUG!r} is reserved")
    if uow.caller is not None:  # the events name the platform admin
        require_role(uow.acting(), PLATFORM, "create tenants")
    tenant = Tenant.create(name=cmd.name, slug=cmd.slug)
    admin = new_user(
        tenant.id, cmd.admin_email, cmd.admin_display_name, Role.TENANT_ADMIN, cmd.admin_password
    )
    try:
        position = uow.save(tenant, admin)
    except IntegrityError:
        raise Conflict(f"tenant slug {cmd.slug!r} is taken") from None
    return TenantCreated(tenant_id=tenant.id, admin_user_id=admin.id, position=position)


def create_platform_admin(cmd: CreatePlatformAdmin, uow: UnitOfWork) -> Written:
    """Operator bootstrap: the `platform` tenant (created on first use) and an admin in it."""
    tenant_id = tenant_id_for_slug(PLATFORM_SLUG)
    tenant = uow.get(tenant_id)
    pending: list[Tenant | User] = []
    if tenant is None:
        tenant = Tenant.create(name="Platform", slug=PLATFORM_SLUG)
        pending.append(tenant)
    user = new_user(tenant_id, cmd.email, cmd.display_name, Role.PLATFORM_ADMIN, cmd.password)
    try:
        position = uow.save(*pending, user)
    except IntegrityError:
        if uow.get(user.id) is not None:
            raise Conflict("this platform admin already exists") from None
        raise  # the platform tenant was created concurrently: retry
    return Written(id=user.id, position=position)


def rename_tenant(cmd: RenameTenant, uow: UnitOfWork) -> Written:
    """Tenant admins rename their tenant; platform admins any tenant."""
    me = uow.acting()
    require_role(me, ADMINISTER, "rename the tenant")
    tenant = uow.tenant(target_tenant(me, cmd.tenant_id))
    tenant.rename(cmd.name)
    return Written(id=tenant.id, position=uow.save(tenant))


def deactivate_tenant(cmd: DeactivateTenant, uow: UnitOfWork) -> Written:
    """Platform admins only: the tenant's users can no longer sign in, read or write."""
    me = uow.acting()
    require_role(me, PLATFORM, "deactivate tenants")
    if cmd.tenant_id == me.tenant_id:
        raise InvalidInput("you cannot deactivate your own tenant")
    tenant = uow.tenant(cmd.tenant_id)
    tenant.deactivate()
    return Written(id=tenant.id, position=uow.save(tenant))


def change_tenant_settings(cmd: ChangeTenantSettings, uow: UnitOfWork) -> Written:
    tenant = uow.administered_tenant("change tenant settings")
    tenant.change_settings(
        default_model=cmd.default_model,
        allowed_models=cmd.allowed_models,
        retention_days=cmd.retention_days,
        fallback_models=cmd.fallback_models,
        system_prompt=cmd.system_prompt,
        cache_ttl_seconds=cmd.cache_ttl_seconds,
        limits=_limits(tenant.limits, cmd),
        enabled_providers=cmd.enabled_providers,
        model_max_tokens=cmd.model_max_tokens,
    )
    return Written(id=tenant.id, position=uow.save(tenant))


def _limits(current: Limits, cmd: ChangeTenantSettings) -> Limits | None:
    """The limits after the command: each given field replaces the current one."""
    given = {
        name: getattr(cmd, name)
        for name in (
            "user_requests_per_minute",
            "tenant_requests_per_minute",
            "tenant_tokens_per_minute",
            "monthly_budget_usd",
        )
        if getattr(cmd, name) is not None
    }
    return replace(current, **given) if given else None
