"""A tenant's usage limits: request and token rates and a monthly budget (`Limits`), part of the
Tenant aggregate's settings and checked by admission before any provider is called."""

from dataclasses import dataclass

from domain.errors import InvalidInput


@dataclass(frozen=True)
class Limits:
    """Checked before any provider is called (None: no limit)."""

    user_requests_per_minute: int | None = None
    tenant_requests_per_minute: int | None = None
    tenant_tokens_per_minute: int | None = None
    """Estimated prompt tokens at send time, then the reply's real usage."""
    monthly_budget_usd: float | None = None
    """Spend per calendar month (UTC) from the price table."""

    def checked(self) -> "Limits":
        rates = (
            self.user_requests_per_minute,
            self.tenant_requests_per_minute,
            self.tenant_tokens_per_minute,
        )
        if any(r is not None and not 0 <= r <= 10_000_000 for r in rates):
            raise InvalidInput("rate limits must be 0..10000000 per minute (0 removes one)")
        if self.monthly_budget_usd is not None and not 0 <= self.monthly_budget_usd <= 1e9:
            raise InvalidInput("the monthly budget must be 0..1e9 USD (0 removes it)")
        user, tenant, tokens = (r or None for r in rates)
        return Limits(user, tenant, tokens, self.monthly_budget_usd or None)
