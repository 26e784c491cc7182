"""Errors a client can cause. Each carries a stable `code` that the API exposes unchanged."""

import math
from uuid import UUID


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


class HistoryTampered(ParleyError):
    """A stored event cannot be decoded: its bytes are not what Parley wrote, so someone got past
    the append-only guard. Not the client's doing, but an auditor must be told which event it is
    (not INTERNAL_SERVER_ERROR); `parley audit verify` finds the rest."""

    code = "HISTORY_TAMPERED"

    def __init__(self, aggregate_id: UUID, version: int, position: int | None) -> None:
        where = f"position {position}" if position is not None else "an unknown position"
        super().__init__(
            f"history was altered: the event at {where} (aggregate {aggregate_id}, version "
            f"{version}) cannot be decoded, its stored bytes do not match what was written; run "
            "`parley audit verify` to find every altered event"
        )
        self.aggregate_id = aggregate_id
        self.version = version
        self.position = position
        self.extensions.update(
            position=position, aggregateId=str(aggregate_id), aggregateVersion=version
        )
