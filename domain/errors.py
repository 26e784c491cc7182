"""Errors a client can cause. Each carries a stable `code` that the API exposes unchanged."""

import math


class ParleyError(Exception):
    """Base of every client-caused error; `code` is part of the public contract."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, object] = {"code": self.code}


class InvalidInput(ParleyError):
    code = "BAD_USER_INPUT"


class WrongPassword(InvalidInput):
    """A password given to confirm an action (e.g. the current one, to change it) is wrong."""


class NotAuthenticated(ParleyError):
    code = "UNAUTHENTICATED"


class NotAllowed(ParleyError):
    code = "FORBIDDEN"


class NotFound(ParleyError):
    code = "NOT_FOUND"


class Conflict(ParleyError):
    code = "CONFLICT"


class Retryable(ParleyError):
    """An error that tells the client when to try again (`retryAfterSeconds`, whole seconds)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.extensions["retryAfterSeconds"] = max(1, math.ceil(retry_after))


class RateLimited(Retryable):
    code = "RATE_LIMITED"


class QuotaExceeded(ParleyError):
    """The tenant's monthly model budget is spent."""

    code = "QUOTA_EXCEEDED"


class SearchUnavailable(ParleyError):
    """The search index cannot answer now (Elasticsearch down or failing); retry later."""

    code = "UNAVAILABLE"


class ReadModelsBusy(Retryable):
    """Every read connection stayed busy for longer than a query may wait; retry shortly."""

    code = "UNAVAILABLE"


class ReadModelTimeout(ParleyError):
    """The read models did not reach the requested log position in time."""

    code = "CONFLICT"
