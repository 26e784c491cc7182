"""Limits on each GraphQL operation, from settings: document size (tokens), depth, aliases and
estimated cost, then the caller's rate limits. Refusals are typed: QUERY_TOO_COMPLEX,
RATE_LIMITED (with `retryAfterSeconds`)."""

import functools
import logging
import math
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    value_from_ast,
)
from graphql.language import OperationType as AstOperationType
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from api.context import ParleyContext
from domain.errors import NotAuthenticated, ParleyError, RateLimited
from infra.lru import Lru
from infra.settings import Settings

log = logging.getLogger(__name__)

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


class QueryTooComplex(ParleyError):
    code = TOO_COMPLEX


class _Coded:
    """A validation context whose reported errors carry a code (strawberry's limiters report
    plain errors)."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)


@functools.lru_cache(maxsize=8)
def _rules(
    base: tuple[type[ValidationRule], ...], max_depth: int, max_aliases: int
) -> tuple[type[ValidationRule], ...]:
    """The same rule objects for the same limits on every request, so that validation results
    can be cached per query text (strawberry's ValidationCache keys on the rules too)."""
    return (
        *base,
        _coded(depth_validator(max_depth, None, None)),
        _coded(aliases_validator(max_aliases)),
    )


def _coded(rule: type[ValidationRule]) -> type[ValidationRule]:
    class Coded(rule):  # type: ignore[valid-type, misc]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(_Coded(context, TOO_COMPLEX))

    return Coded


_PARSED: Lru[tuple[str | None, int | None], DocumentNode] = Lru(512)
"""Parsed documents by query text (and token limit): clients send the same few documents again
and again, and parsing one costs more than running it. Only successful parses are kept, so a
document over the limits gets its coded error every time."""


class OperationLimits(SchemaExtension):
    """Every operation over HTTP or WebSocket passes here before it runs."""

    def _settings(self) -> Settings | None:
        context = self.execution_context.context
        return context.services.settings if isinstance(context, ParleyContext) else None

    def on_operation(self) -> Iterator[None]:
        s = self._settings()
        if s is not None:
            self.execution_context.parse_options["max_tokens"] = s.graphql_max_tokens
            self.execution_context.validation_rules = _rules(
                tuple(self.execution_context.validation_rules),
                s.graphql_max_depth,
                s.graphql_max_aliases,
            )
        yield

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        s = self._settings()
        key = (ec.query, s.graphql_max_tokens if s is not None else None)
        if ec.graphql_document is None and ec.query is not None:
            ec.graphql_document = _PARSED.get(key)  # strawberry parses only when None
        yield
        if ec.graphql_document is not None and not ec.pre_execution_errors:
            _PARSED.put(key, ec.graphql_document)
        for error in ec.pre_execution_errors or ():
            # graphql-core's own message for its max_tokens parse option.
            if s is not None and f"more than {s.graphql_max_tokens} tokens" in error.message:
                error.extensions = {**(error.extensions or {}), "code": TOO_COMPLEX}

    async def on_execute(self) -> Any:
        context = self.execution_context.context
        if isinstance(context, ParleyContext):
            await context.authenticate()
            await take_operation(context)
            self._check_cost(context.services.settings)
        yield

    def _check_cost(self, s: Settings) -> None:
        document = self.execution_context.graphql_document
        if document is None:
            return
        schema = self.execution_context.schema._schema
        cost = operation_cost(
            schema,
            document.definitions,
            self.execution_context.operation_name,
            self.execution_context.variables or {},
            s.graphql_list_cost,
        )
        if cost > s.graphql_max_cost:
            raise QueryTooComplex(
                f"the operation's estimated cost {cost} is above the limit of {s.graphql_max_cost}"
                "; ask for fewer items (`first`) or fewer nested lists"
            )


async def take_operation(context: ParleyContext) -> None:
    """The caller's per-minute operation budgets: user (or API key) and tenant, or client IP
    without valid credentials."""
    s = context.services.settings
    try:
        actor = context.actor()
    except NotAuthenticated:
        actor = None
    if actor is not None:
        checks = [
            (s.user_operations_per_minute, f"ops-user:{actor.user_id}", "your"),
            (s.tenant_operations_per_minute, f"ops-tenant:{actor.tenant_id}", "the tenant's"),
        ]
    else:
        client = context.request.client if context.request is not None else None
        ip = client.host if client is not None else "unknown"
        checks = [(s.anonymous_operations_per_minute, f"ops-ip:{ip}", "this address's")]
    for capacity, key, whose in checks:
        if capacity <= 0:
            continue
        verdict = await context.services.run_blocking(
            context.services.operation_buckets.take, key, capacity, 60.0, 1
        )
        if not verdict.allowed:
            retry = max(1, math.ceil(verdict.retry_after))
            error = RateLimited(
                f"{whose} limit of {capacity} operations per minute is reached; retry in {retry} s"
            )
            error.extensions["retryAfterSeconds"] = retry  # type: ignore[assignment,unused-ignore]
            raise error


def operation_cost(
    schema: GraphQLSchema,
    definitions: Any,
    operation_name: str | None,
    variables: dict[str, Any],
    list_cost: int,
) -> int:
    """Every field costs 1; a field's selections count once per item it may return: its `first`
    argument (a connection: its `edges`/`nodes` lists are that page), `list_cost` for other
    lists, 1 otherwise. Introspection is bounded by the schema itself and counts once."""
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    operation = next(
        (
            o
            for o in operations
            if operation_name is None or (o.name and o.name.value == operation_name)
        ),
        None,
    )
    if operation is None:
        return 0
    root = {
        AstOperationType.QUERY: schema.query_type,
        AstOperationType.MUTATION: schema.mutation_type,
        AstOperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    if root is None:
        return 0

    def selections_cost(
        selection_set: SelectionSetNode | None, parent: GraphQLNamedType, paged: bool
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += field_cost(selection, parent, paged)
            elif isinstance(selection, InlineFragmentNode):
                on = (
                    schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total += selections_cost(selection.selection_set, on or parent, paged)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    on = schema.get_type(fragment.type_condition.name.value)
                    total += selections_cost(fragment.selection_set, on or parent, paged)
        return total

    def field_cost(node: FieldNode, parent: GraphQLNamedType, paged: bool) -> int:
        if node.selection_set is None:
            return 1
        name = node.name.value
        fields = getattr(parent, "fields", None)  # objects and interfaces
        definition = fields.get(name) if fields and not name.startswith("__") else None
        if definition is None:
            return 1
        items = 1
        has_first = "first" in definition.args
        if has_first:
            items = _first(node, definition.args["first"], variables)
        elif _is_list(definition.type) and not paged:
            items = list_cost
        child = get_named_type(definition.type)
        return 1 + items * selections_cost(node.selection_set, child, has_first)

    return selections_cost(operation.selection_set, root, False)


def _first(node: FieldNode, argument: Any, variables: dict[str, Any]) -> int:
    given = next((a for a in node.arguments or () if a.name.value == "first"), None)
    value = (
        value_from_ast(given.value, argument.type, variables)
        if given is not None
        else argument.default_value
    )
    return value if isinstance(value, int) and value > 0 else 1


def _is_list(type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)
