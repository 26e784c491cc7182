"""Errors a client can cause. Each carries a stable `code` that the API exposes unchanged."""


class ParleyError(Exception):
    """Base of every client-caused error; `code` is part of the public contract."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = {"code": self.code}


class InvalidInput(ParleyError):
    code = "BAD_USER_INPUT"


class NotAuthenticated(ParleyError):
    code = "UNAUTHENTICATED"


class NotAllowed(ParleyError):
    code = "FORBIDDEN"


class NotFound(ParleyError):
    code = "NOT_FOUND"


class Conflict(ParleyError):
    code = "CONFLICT"


class RateLimited(ParleyError):
    code = "RATE_LIMITED"


class QuotaExceeded(ParleyError):
    """The tenant's monthly model budget is spent."""

    code = "QUOTA_EXCEEDED"


class SearchUnavailable(ParleyError):
    """The search index cannot answer now (Elasticsearch down or failing); retry later."""

    code = "UNAVAILABLE"


class ReadModelTimeout(ParleyError):
    """The read models did not reach the requested log position in time."""

    code = "CONFLICT"
