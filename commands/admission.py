"""Admission of a user message, and the debit of its reply: one policy for the API (before a
message is recorded) and the responder (after its reply), so the rate keys exist once.

Before: the tenant's monthly model budget, then the user's and the tenant's request rates and
the tenant's token rate (the message's estimated tokens). After: the reply's real token use,
less the estimate already taken, from the tenant's token rate. Nothing is written when a message
is refused (QUOTA_EXCEEDED, RATE_LIMITED)."""

from collections.abc import Callable
from uuid import UUID

from domain.actor import Actor
from domain.errors import QuotaExceeded, RateLimited
from domain.limits import Limits
from domain.tenant import Tenant
from infra.llm.context import estimate_tokens
from infra.rate_limits import Buckets

WINDOW_SECONDS = 60.0
"""The rates are per minute."""


def tenant_tokens_key(tenant_id: UUID) -> str:
    return f"tenant-tpm:{tenant_id}"


class Admission:
    """Synchronous: the send-message handler admits inside its command, over the tenant it has
    already loaded (no second load, no thread hop of its own)."""

    def __init__(self, buckets: Buckets, *, spent_this_month_usd: Callable[[UUID], float]) -> None:
        self._buckets = buckets
        self._spent = spent_this_month_usd

    def admit(self, actor: Actor, tenant: Tenant, content: str) -> None:
        """Raises QUOTA_EXCEEDED or RATE_LIMITED, or lets the message through."""
        limits = tenant.limits
        if limits.monthly_budget_usd:
            spent = self._spent(tenant.id)
            if spent >= limits.monthly_budget_usd:
                raise QuotaExceeded(
                    f"this month's model budget of {limits.monthly_budget_usd:.2f} USD is spent"
                    f" ({spent:.2f} USD); a tenant admin can raise it"
                )
        self._take_rates(actor, limits, content)

    def _take_rates(self, actor: Actor, limits: Limits, content: str) -> None:
        checks = (
            (limits.user_requests_per_minute, f"user-rpm:{actor.user_id}", 1, "your"),
            (limits.tenant_requests_per_minute, f"tenant-rpm:{actor.tenant_id}", 1, "the tenant's"),
            (
                limits.tenant_tokens_per_minute,
                tenant_tokens_key(actor.tenant_id),
                estimate_tokens(content),
                "the tenant's token",
            ),
        )
        for capacity, key, cost, whose in checks:
            if capacity:
                verdict = self._buckets.take(key, capacity, WINDOW_SECONDS, cost)
                if not verdict.allowed:
                    raise RateLimited(
                        f"{whose} rate limit of {capacity} per minute is reached; retry in"
                        f" {max(1, round(verdict.retry_after))} s"
                    )


def debit_reply_tokens(
    buckets: Buckets, tenant: Tenant, asked: str, input_tokens: int, output_tokens: int
) -> None:
    """A reply's real token use, less the estimate its message took at admission, from the
    tenant's token rate (a reply may take it below zero: the next messages wait)."""
    limit = tenant.limits.tenant_tokens_per_minute
    if not limit:
        return
    used = input_tokens + output_tokens - estimate_tokens(asked)
    buckets.debit(tenant_tokens_key(tenant.id), limit, WINDOW_SECONDS, max(0, used))
