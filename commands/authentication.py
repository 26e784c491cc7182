"""Sign-in: a password (the same error, and the same argon2 work, for every way it can fail), an
OIDC issuer's word for an e-mail address, and whether a signed-in caller may still act.

Brute-force throttling wraps `authenticate` at the API (`commands/login_throttle.py`)."""

import logging
import secrets
from dataclasses import dataclass
from typing import cast

from eventsourcing.persistence import IntegrityError

from commands.messages import SignInWithOidc
from commands.unit_of_work import UnitOfWork
from domain.actor import Actor
from domain.errors import InvalidInput, NotAllowed, NotAuthenticated, NotFound
from domain.policy import acting_user, own_user
from domain.tenant import Tenant, tenant_id_for_slug, validate_slug
from domain.user import Role, User, normalize_email, user_id_for
from infra.eventstore.data_keys import SubjectErased
from infra.eventstore.event_store import EventStore
from infra.identity.acting import acting_now
from infra.identity.passwords import hash_password, needs_rehash, verify_password

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Authenticated:
    user: User
    tenant: Tenant


class Authentication:
    """Password sign-in against one event store; OIDC sign-in may provision the user, so it is a
    command (`sign_in_with_oidc`, on the bus)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def authenticate(self, tenant_slug: str, email: str, password: str) -> Authenticated:
        """Check a password sign-in; the same error for every way it can fail."""
        failure = NotAuthenticated("invalid tenant, email or password")
        try:
            tenant_id = tenant_id_for_slug(validate_slug(tenant_slug))
            user_id = user_id_for(tenant_id, normalize_email(email))
        except InvalidInput:
            verify_password(None, password)
            raise failure from None
        user = self.store.get_or_none(user_id)
        tenant = self.store.get_or_none(tenant_id)
        ok = verify_password(user.password_hash if user else None, password)
        if not ok or user is None or tenant is None or not user.active or not tenant.active:
            raise failure
        if needs_rehash(user.password_hash):
            user.change_password_hash(hash_password(password))
            self._save_quietly(user)
        return Authenticated(user=user, tenant=tenant)

    def check_can_act(self, actor: Actor) -> None:
        """For work done on the caller's behalf outside a command (signing out everywhere): a
        deactivated user's token must not do it."""
        try:
            acting_now(self.store, actor)
        except SubjectErased:
            raise NotFound("not found: its data was erased") from None

    def signed_in_user(self, actor: Actor) -> User:
        """The caller's own user, once they may still act (active, in an active tenant): both
        read in one load, for a token refresh."""
        try:
            user, tenant = self.store.load((actor.user_id, True), (actor.tenant_id, True))
        except SubjectErased:
            raise NotFound("not found: its data was erased") from None
        acting_user(actor, user, tenant)
        return cast(User, user)

    def active_user(self, actor: Actor) -> User:
        """The caller's own aggregate; no deactivated (or vanished) user."""
        return own_user(actor, self.store.get_or_none(actor.user_id, readonly=True))

    def _save_quietly(self, user: User) -> None:
        """The user's own rehashed password, saved by them; losing a race is harmless."""
        try:
            self.store.save_all(user, actor=user.id)
        except IntegrityError:
            log.info("skipped an opportunistic write that lost a race")


def sign_in_with_oidc(cmd: SignInWithOidc, uow: UnitOfWork) -> Authenticated:
    """After the tenant's issuer vouched for a verified e-mail address: that user of the
    tenant, created with the auto-provisioning role when the tenant allows it for the domain."""
    tenant = uow.get(cmd.tenant_id)
    if not isinstance(tenant, Tenant) or not tenant.active or tenant.oidc is None:
        raise NotAuthenticated("this tenant has no OIDC sign-in")
    config = tenant.oidc
    try:
        address = normalize_email(cmd.email)
    except InvalidInput:
        raise NotAuthenticated("the issuer's e-mail address is not valid") from None
    domain = address.rsplit("@", 1)[1]
    if config.allowed_domains and domain not in config.allowed_domains:
        raise NotAllowed(f"users of {domain} may not sign in to this tenant")
    user = uow.get(user_id_for(tenant.id, address))
    if user is None:
        if config.auto_provision_role is None:
            raise NotAuthenticated("no user with this e-mail address in the tenant")
        name = (cmd.display_name or "").strip()[:200] or address.split("@", 1)[0]
        user = User.register(
            tenant_id=tenant.id,
            email=address,
            display_name=name,
            role=Role(config.auto_provision_role),
            # Nobody knows this password: the user signs in through the issuer.
            password_hash=hash_password(secrets.token_urlsafe(32)),
        )
        uow.actor_id = user.id  # the new user signs themself up
        uow.save(user)  # a concurrent first sign-in: retried, found
    if not isinstance(user, User) or not user.active:
        raise NotAuthenticated("this user cannot sign in")
    return Authenticated(user=user, tenant=tenant)
