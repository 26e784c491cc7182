"""List fields completed by a compiled plan instead of graphql-core's field-by-field walk.

graphql-core completes a list of 50 objects with three fields through some 200 calls of its
generic machinery (a resolve info, a resolver, `complete_value` and its type tests per field),
which costs several times what reading the rows does. Most of those fields are plain attribute
reads: a strawberry field without a resolver, extensions, permissions or arguments. For such a
selection the work is known once the document is: for each item, read these attributes and
serialise them with these leaf types. `CompiledListExecution` compiles that into a plan (nested
closures, one per object type of the selection), cached per document node, object type and the
values of the variables its `@skip`/`@include` read, and completes the whole list with it.

The plan reproduces graphql-core's results exactly, or does not answer: selections it does not
handle (resolvers, arguments, abstract types, `is_type_of`, `@defer`/`@stream`, other
directives, field middleware) are never compiled, and an item it cannot complete as graphql-core
would without an error (a null in a non-null field, a value a scalar refuses, an exception or
awaitable as a value, an iterable that is not a list or tuple) makes the whole list go through
graphql-core again, which then reports the error with its usual message and path. Reading plain
attributes twice changes nothing, so the second pass sees what the first did.
"""

from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails, collect_subfields
from graphql.pyutils import Path, Undefined
from graphql.type import (
    GraphQLBoolean,
    GraphQLID,
    GraphQLLeafType,
    GraphQLString,
    GraphQLType,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from infra.lru import Lru

Complete = Callable[[Any], Any]
"""A value as the resolver returned it -> its completed, JSON-ready form."""


class Never:
    """A type no value has: the pass-through type of completions that have none."""


Completion = tuple[type, Complete]
"""How values of one field complete: values of exactly the type (a str for String or ID) are
their own completion, without a call; `complete` does the rest."""

PASS_THROUGH: dict[GraphQLLeafType, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
}
"""Leaf types whose `coerce_output_value` returns a value of exactly this type unchanged."""

SEQUENCES = (list, tuple)
SKIP_INCLUDE = frozenset({"skip", "include"})
MISSING = object()


class Fallback(Exception):
    """graphql-core must complete this list: the plan cannot say what it would answer."""


class PlansForNodes:
    """The plans of one list field (its nodes and item type), by the values of the variables
    that its selection's `@skip`/`@include` read."""

    __slots__ = ("by_values", "nodes", "variables")

    def __init__(self, nodes: tuple[FieldNode, ...], variables: tuple[str, ...]) -> None:
        self.nodes = nodes
        self.variables = variables
        self.by_values: dict[tuple[Any, ...], Completion | None] = {}
        """None: that selection is not one the compiler handles."""


PLANS: Lru[tuple[GraphQLType, tuple[int, ...]], PlansForNodes] = Lru(1024)
"""Per list field of a document: clients send the same few documents again and again (and
`OperationLimits` keeps their parsed nodes), so a plan is compiled once per document and the
variable values its directives read. Entries hold their nodes, so an id is not reused while its
entry lives."""

MAX_PLANS_PER_NODES = 16


class CompiledListExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, completing list fields of plain objects by a plan."""

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) in SEQUENCES and position_context is None and not self._has_middleware():
            plan = self._plan(return_type.of_type, field_details_list)
            if plan is not None:
                exact, complete = plan
                try:
                    return [item if type(item) is exact else complete(item) for item in result]
                except Exception:  # noqa: BLE001 - graphql-core reports it, below
                    pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _has_middleware(self) -> bool:
        """Field middleware (a strawberry extension's `resolve`) must see every field."""
        manager = self.middleware_manager
        return manager is not None and bool(manager.middlewares)

    def _plan(self, item_type: GraphQLOutputType, fields: FieldDetailsList) -> Completion | None:
        if not plain_selection(fields):
            return None  # e.g. @stream: graphql-core's own path streams
        nodes = tuple(d.node for d in fields)
        key = (item_type, tuple(map(id, nodes)))
        plans = PLANS.get(key)
        if plans is None:
            plans = PlansForNodes(nodes, directive_variables(nodes, self.fragments))
            PLANS.put(key, plans)
        coerced = self.variable_values.coerced
        values = tuple(coerced.get(name, MISSING) for name in plans.variables)
        try:
            plan = plans.by_values.get(values, MISSING)
        except TypeError:  # a value that is not hashable: compile for this request only
            return Compiler(self).value(item_type, fields)
        if plan is MISSING:
            plan = Compiler(self).value(item_type, fields)
            if len(plans.by_values) < MAX_PLANS_PER_NODES:
                plans.by_values[values] = plan
        return plan  # type: ignore[return-value]


def plain_selection(fields: FieldDetailsList) -> bool:
    """Fields that are neither deferred nor in a fragment with arguments, and carry no directive
    but `@skip`/`@include` (already applied when they were collected)."""
    return not any(
        f.defer_usage is not None
        or f.fragment_variable_values
        or any(d.name.value not in SKIP_INCLUDE for d in f.node.directives or ())
        for f in fields
    )


def directive_variables(
    nodes: Sequence[FieldNode], fragments: dict[str, FragmentDetails]
) -> tuple[str, ...]:
    """The variables any directive in the selections under `nodes` reads (fragments followed),
    in a stable order: the selection a plan was compiled for depends on their values only."""
    found: dict[str, None] = {}
    seen_fragments: set[str] = set()

    def visit(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        found[argument.value.name.value] = None
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen_fragments and name in fragments:
                    seen_fragments.add(name)
                    visit(fragments[name].definition.selection_set)
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                visit(selection.selection_set)

    for node in nodes:
        visit(node.selection_set)
    return tuple(found)


def is_null(value: Any, non_null: bool, is_awaitable: Callable[[Any], bool]) -> bool:
    """graphql-core's tests before it completes a value: True for a null it answers with null;
    `Fallback` where it reports an error (a null in a non-null field, an exception as the value)
    or awaits the value."""
    if value is None or value is Undefined:
        if non_null:
            raise Fallback
        return True
    if isinstance(value, BaseException) or is_awaitable(value):
        raise Fallback
    return False


class Compiler:
    """Builds the closures of one plan with the request's fragments and variable values."""

    def __init__(self, executor: CompiledListExecution) -> None:
        self.executor = executor
        self.schema: GraphQLSchema = executor.schema
        self.is_awaitable = executor.is_awaitable

    def value(self, type_: GraphQLOutputType, fields: FieldDetailsList) -> Completion | None:
        """`complete_value` for `type_`, or None when it is not compiled."""
        non_null = isinstance(type_, GraphQLNonNull)
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if isinstance(inner, GraphQLList):
            return self.list_of(inner.of_type, fields, non_null)
        if is_leaf_type(inner):
            return self.leaf(inner, non_null)
        if isinstance(inner, GraphQLObjectType):
            return self.object_of(inner, fields, non_null)
        return None  # interfaces and unions: the runtime type needs a resolver

    def list_of(
        self, item_type: GraphQLOutputType, fields: FieldDetailsList, non_null: bool
    ) -> Completion | None:
        item = self.value(item_type, fields)
        if item is None:
            return None
        exact, complete = item
        is_awaitable = self.is_awaitable

        def complete_list(value: Any) -> Any:
            if type(value) in SEQUENCES:
                return [v if type(v) is exact else complete(v) for v in value]
            if is_null(value, non_null, is_awaitable):
                return None
            raise Fallback  # another iterable: graphql-core's checks and errors

        return Never, complete_list

    def leaf(self, leaf_type: GraphQLLeafType, non_null: bool) -> Completion:
        coerce = leaf_type.coerce_output_value
        is_awaitable = self.is_awaitable

        def complete_leaf(value: Any) -> Any:
            if is_null(value, non_null, is_awaitable):
                return None
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                raise Fallback
            return coerced

        members = getattr(leaf_type, "wrapped_cls", None)
        if not isinstance(members, type):
            return PASS_THROUGH.get(leaf_type, Never), complete_leaf
        # Strawberry finds an enum member's name by a loop over the enum's values: remember the
        # names of the members of its class (by identity: they live as long as the class).
        names: dict[int, Any] = {}

        def complete_member(value: Any) -> Any:
            if type(value) is not members:
                return complete_leaf(value)
            name = names.get(id(value))
            if name is None:
                name = names[id(value)] = complete_leaf(value)
            return name

        return Never, complete_member

    def object_of(
        self, object_type: GraphQLObjectType, fields: FieldDetailsList, non_null: bool
    ) -> Completion | None:
        if object_type.is_type_of is not None:
            return None
        executor = self.executor
        collected = collect_subfields(
            self.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            object_type,
            fields,
            executor.hide_suggestions,
        )
        if collected.new_defer_usages:
            return None
        steps: list[tuple[str, str, type, Complete]] = []
        typename: list[str] = []
        for key, sub_fields in collected.grouped_field_set.items():
            if not plain_selection(sub_fields):
                return None
            name = sub_fields[0].node.name.value
            if name == "__typename":
                typename.append(key)
                continue
            step = self.attribute(object_type, name, sub_fields)
            if step is None:
                return None
            steps.append((key, *step))
        order = list(collected.grouped_field_set)
        type_name = object_type.name
        is_awaitable = self.is_awaitable
        trusted = own_class(object_type)
        plain = not typename and [step[0] for step in steps] == order

        def complete_object(value: Any) -> Any:
            if type(value) is not trusted and is_null(value, non_null, is_awaitable):
                return None
            if plain:
                return {
                    key: v if type(v := getattr(value, name)) is exact else complete(v)
                    for key, name, exact, complete in steps
                }
            out = dict.fromkeys(order)
            for key in typename:
                out[key] = type_name
            for key, name, exact, complete in steps:
                v = getattr(value, name)
                out[key] = v if type(v) is exact else complete(v)
            return out

        return Never, complete_object

    def attribute(
        self, object_type: GraphQLObjectType, name: str, fields: FieldDetailsList
    ) -> tuple[str, type, Complete] | None:
        """(python attribute, completion) of a field that strawberry resolves with a plain
        `getattr`; None for any other field."""
        field = object_type.fields.get(name)
        if field is None or field.args or not getattr(field.resolve, "_is_default", False):
            return None
        definition = field.extensions.get("strawberry-definition")
        if definition is None or getattr(definition, "default_resolver", None) is not getattr:
            return None
        completion = self.value(field.type, fields)
        return None if completion is None else (definition.python_name, *completion)


def own_class(object_type: GraphQLObjectType) -> type:
    """The class strawberry defined `object_type` with, when its instances are neither
    exceptions nor awaitable (values of it need not be tested for either); else `Never`."""
    definition = object_type.extensions.get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    if (
        isinstance(origin, type)
        and not issubclass(origin, BaseException)
        and not hasattr(origin, "__await__")
    ):
        return origin
    return Never
