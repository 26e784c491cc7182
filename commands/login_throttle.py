"""Brute-force protection for password checks (sign-in, password change).

Failed checks are counted per account and per client address in token buckets (Redis: shared by
every API process). A bucket holds `limit` failures and refills over `window_seconds`; once one
is empty, further attempts from that address, or on that account, are answered RATE_LIMITED
before any password is hashed. Successes take nothing and reset nothing: a sign-in from one
address never frees another address's budget.
"""

import hashlib

from domain.errors import InvalidInput, RateLimited
from domain.tenant import tenant_id_for_slug, validate_slug
from domain.user import user_id_for
from infra.rate_limits import Buckets


class LoginThrottle:
    def __init__(
        self,
        buckets: Buckets,
        *,
        per_account: int,
        per_address: int,
        window_seconds: float,
    ) -> None:
        self._buckets = buckets
        self._per_account = per_account
        self._per_address = per_address
        self._window = window_seconds

    def check(self, account: str, address: str | None) -> None:
        """RATE_LIMITED (with a retry hint) when the account or address has no attempts left."""
        for key, limit in self._buckets_of(account, address):
            verdict = self._buckets.peek(key, limit, self._window, 1)
            if not verdict.allowed:
                raise RateLimited(
                    f"too many failed sign-ins; retry in {max(1, round(verdict.retry_after))} s",
                    retry_after=verdict.retry_after,
                )

    def failed(self, account: str, address: str | None) -> None:
        for key, limit in self._buckets_of(account, address):
            self._buckets.debit(key, limit, self._window, 1)

    def _buckets_of(self, account: str, address: str | None) -> list[tuple[str, int]]:
        keys = []
        if self._per_account > 0:
            keys.append((f"login-account:{account}", self._per_account))
        if self._per_address > 0 and address:
            keys.append((f"login-address:{address}", self._per_address))
        return keys


def account_key(tenant_slug: str, email: str) -> str:
    """One key per account however it is spelled: the id of the user the (tenant, e-mail)
    maps to, so a password change (which knows only the user) counts against the same bucket."""
    try:
        return str(user_id_for(tenant_id_for_slug(validate_slug(tenant_slug)), email))
    except InvalidInput:
        # No such account can exist; the attempts are still counted, per spelling tried.
        raw = f"{tenant_slug.strip().lower()}\0{email.strip().lower()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]
