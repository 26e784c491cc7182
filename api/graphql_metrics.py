"""Per-operation Prometheus metrics (the HTTP layer only sees `POST /graphql 200`)."""

import time
from collections.abc import Iterator

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from infra.metrics import GRAPHQL_DURATION, GRAPHQL_OPERATIONS


class OperationMetrics(SchemaExtension):
    root_fields: frozenset[str] = frozenset()  # set by the schema module; others count as "other"

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        doc = ctx.graphql_document
        op_type = ctx.operation_type.value if doc is not None else "invalid"
        # Label by root field (bounded by the schema), never by the client-chosen operation name.
        root = "unknown"
        if doc is not None:
            for definition in doc.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    selections = definition.selection_set.selections
                    if selections and hasattr(selections[0], "name"):
                        name = selections[0].name.value  # type: ignore[attr-defined]
                        root = name if name in self.root_fields else "other"
                    break
        result = ctx.result
        outcome = "error" if getattr(result, "errors", None) else "ok"
        GRAPHQL_OPERATIONS.labels(op_type, root, outcome).inc()
        GRAPHQL_DURATION.labels(op_type).observe(time.perf_counter() - started)
