"""One attempt of a command: who asks, what it reads, what it saves, and who it is by.

The caller is explicit (`caller`, from the bus): a handler establishes once that they may act
(`acting`, `acting_on`), and from then on every event the attempt saves is stamped with them
(`actor_id`, for auditors). An attempt that names nobody is the system's own work (retention,
an operator's bootstrap), and its events say so (None). The bus gives every attempt a new unit
of work, so a retry never inherits what a failed attempt established."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.actor import Actor
from domain.errors import NotAuthenticated, NotFound
from domain.policy import ADMINISTER, acting_service_account, acting_user, require_role
from domain.tenant import Tenant
from domain.user import User
from infra.eventstore.data_keys import DataKeys
from infra.eventstore.event_store import EventStore
from infra.identity.acting import acting_now


@dataclass
class UnitOfWork:
    store: EventStore
    actor_id: UUID | None = None
    caller: Actor | None = None
    """Who sent the command (as their token or API key has them); None: Parley or an operator."""
    attempt: int = 1
    """1 for the first try; work that must happen once per command (debiting a rate limit)
    happens on the first attempt only."""

    def acting(self) -> Actor:
        """The caller as they are now (`acting_now`: active, in an active tenant, with their
        current role); from here on, the one the attempt's events name."""
        me = acting_now(self.store, self._caller())
        self.actor_id = me.user_id
        return me

    def acting_on(self, aggregate_id: UUID) -> tuple[Actor, Tenant, Any]:
        """`acting`, the caller's tenant (read-only) and the aggregate the command changes (or
        None): read together, one round trip for all three when they are cached."""
        caller = self._caller()
        if caller.api_key_id is not None:  # a service account: its key lives on the tenant
            tenant, target = self.store.load((caller.tenant_id, True), (aggregate_id, False))
            me = acting_service_account(caller, tenant)
        else:
            user, tenant, target = self.store.load(
                (caller.user_id, True), (caller.tenant_id, True), (aggregate_id, False)
            )
            me = acting_user(caller, user, tenant)
        assert isinstance(tenant, Tenant)  # acting_* refuse a caller without one
        self.actor_id = me.user_id
        return me, tenant, target

    def get(self, aggregate_id: UUID) -> Any | None:
        """An aggregate to change (a private copy), or None."""
        return self.store.get_or_none(aggregate_id)

    def administered_tenant(self, action: str) -> Tenant:
        """The caller's own tenant, to change, once they may administer it."""
        me = self.acting()
        require_role(me, ADMINISTER, action)
        return self.tenant(me.tenant_id)

    def tenant(self, tenant_id: UUID) -> Tenant:
        tenant = self.get(tenant_id)
        if not isinstance(tenant, Tenant):
            raise NotFound("tenant not found")
        return tenant

    def user_in_tenant(self, user_id: UUID, me: Actor) -> User:
        """A user of the caller's tenant (of any, for a platform admin); others are not found."""
        user = self.get(user_id)
        if not isinstance(user, User) or (
            user.tenant_id != me.tenant_id and not me.is_platform_admin
        ):
            raise NotFound("user not found")
        return user

    @property
    def data_keys(self) -> DataKeys:
        return self.store.data_keys

    def head(self) -> int:
        """The log position a reader waits for when the command wrote nothing new."""
        return self.store.head()

    def save(self, *aggregates: Aggregate) -> int:
        """Save the aggregates' pending events atomically, stamped with the actor; the last log
        position written."""
        return self.store.save_all(*aggregates, actor=self.actor_id)

    def _caller(self) -> Actor:
        if self.caller is None:
            raise NotAuthenticated("this command needs a signed-in caller")
        return self.caller
