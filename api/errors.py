"""One error shape: every GraphQL error carries `extensions.code`; internals never leak.

An error the client did not cause answers INTERNAL_SERVER_ERROR, a fixed message and an
`errorId`; the traceback is logged under that id, so an operator can find it from a report."""

import logging
import uuid

from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import MaskErrors

from domain.errors import ParleyError
from infra.messaging.live_feed import SubscriberTooSlow

log = logging.getLogger("parley.api.errors")

INTERNAL = "INTERNAL_SERVER_ERROR"


def _code_of(error: GraphQLError) -> str | None:
    original = error.original_error
    if isinstance(original, ParleyError):
        return original.code
    if isinstance(original, SubscriberTooSlow):
        return "RATE_LIMITED"
    if isinstance(original, StrawberryInputCoercionError | GraphQLError):
        # A variable a scalar or enum cannot parse (e.g. a DateTime that is not ISO 8601).
        return "BAD_USER_INPUT"
    if original is None:
        # Parse and validation errors: the client sent a bad document or bad variables (the
        # operation limits tag theirs with their own code).
        code = (error.extensions or {}).get("code")
        return code if isinstance(code, str) else "BAD_USER_INPUT"
    return None


class ParleyErrors(MaskErrors):
    """Typed errors pass with their code; anything else is INTERNAL_SERVER_ERROR (logged)."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            code = _code_of(error)
            if code is None:
                error_id = uuid.uuid4().hex
                log.error(
                    "internal error %s in %s",
                    error_id,
                    error.path,
                    exc_info=error.original_error,
                )
                processed.append(
                    GraphQLError(
                        f"Internal server error (error id {error_id}).",
                        nodes=error.nodes,
                        source=error.source,
                        positions=error.positions,
                        path=error.path,
                        extensions={"code": INTERNAL, "errorId": error_id},
                    )
                )
            else:
                error.extensions = {**(error.extensions or {}), "code": code}
                processed.append(error)
        return processed
