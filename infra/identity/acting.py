"""The caller as the event store has them now, for commands and queries alike (the decision is
`domain/policy.py`'s: `acting_user`, `acting_service_account`)."""

from domain.actor import Actor
from domain.policy import acting_service_account, acting_user
from infra.eventstore.event_store import EventStore


def acting_now(store: EventStore, actor: Actor) -> Actor:
    """The caller with their current role; refused when their user (or API key) or tenant no
    longer may act. The token's role claim may be up to one token lifetime old; authorization
    must not be."""
    if actor.api_key_id is not None:
        return acting_service_account(actor, store.get_or_none(actor.tenant_id, readonly=True))
    user, tenant = store.load((actor.user_id, True), (actor.tenant_id, True))
    return acting_user(actor, user, tenant)
