"""One error shape: every GraphQL error carries `extensions.code`; internals never leak."""

import logging

from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import MaskErrors

from domain.errors import ParleyError
from infra.live_feed import SubscriberTooSlow

log = logging.getLogger("parley.api.errors")


def _code_of(error: GraphQLError) -> str | None:
    original = error.original_error
    if isinstance(original, ParleyError):
        return original.code
    if isinstance(original, SubscriberTooSlow):
        return "RATE_LIMITED"
    if isinstance(original, StrawberryInputCoercionError):
        # A variable a scalar cannot parse (e.g. a DateTime that is not ISO 8601).
        return "BAD_USER_INPUT"
    if original is None:
        # Parse and validation errors: the client sent a bad document or bad variables.
        return "BAD_USER_INPUT"
    return None


class ParleyErrors(MaskErrors):
    """Typed errors pass with their code; anything else becomes INTERNAL and is logged."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            code = _code_of(error)
            if code is None:
                log.error("internal error in %s", error.path, exc_info=error.original_error)
                processed.append(
                    GraphQLError(
                        "Internal server error.",
                        nodes=error.nodes,
                        source=error.source,
                        positions=error.positions,
                        path=error.path,
                        extensions={"code": "INTERNAL"},
                    )
                )
            else:
                error.extensions = {**(error.extensions or {}), "code": code}
                processed.append(error)
        return processed
