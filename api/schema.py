"""The GraphQL schema: queries and subscriptions from `queries/`, mutations from `api/`."""

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ValidationCache
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.api_keys import ApiKeyMutations, ApiKeyQueries
from api.auth import AuthMutations
from api.chat_mutations import ChatMutations
from api.compiled_execution import CompiledListExecution
from api.document_mutations import DocumentMutations
from api.errors import ParleyErrors
from api.gdpr import GdprMutations
from api.graphql_metrics import OperationMetrics
from api.oidc_settings import OidcMutations, OidcQueries
from api.operation_limits import OperationLimits
from api.provider_keys import ProviderKeyMutations, ProviderKeyQueries
from api.tenant_mutations import TenantMutations
from queries.audit_schema import AuditQueries
from queries.knowledge_schema import KnowledgeQueries
from queries.schema import Query, Subscription
from queries.search_schema import SearchQueries

log = logging.getLogger("parley.api.graphql")


class ParleySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors the client caused (typed codes) are routine: DEBUG, not a traceback at ERROR
        each. Internal errors were already logged with their traceback and errorId by
        `ParleyErrors` (api/errors.py)."""
        for error in errors:
            log.debug("graphql error: %s (%s)", error.message, (error.extensions or {}).get("code"))


def build_schema(*, compiled_lists: bool = True) -> ParleySchema:
    """The schema. List fields are completed by compiled plans (api/compiled_execution.py);
    `compiled_lists=False` leaves every item to graphql-core, the reference the compiled
    execution is tested and measured against."""
    return ParleySchema(
        query=merge_types(
            "Query",
            (
                Query,
                SearchQueries,
                AuditQueries,
                ProviderKeyQueries,
                ApiKeyQueries,
                OidcQueries,
                KnowledgeQueries,
            ),
        ),
        mutation=merge_types(
            "Mutation",
            (
                AuthMutations,
                TenantMutations,
                ChatMutations,
                ProviderKeyMutations,
                ApiKeyMutations,
                OidcMutations,
                GdprMutations,
                DocumentMutations,
            ),
        ),
        subscription=Subscription,
        extensions=[
            ParleyErrors,
            OperationMetrics,
            OperationLimits,
            # Clients send the same few documents again and again: validate each once (a
            # bounded LRU keyed by the document; variables and the cost limit are checked per
            # request).
            lambda: ValidationCache(maxsize=512),
        ],
        execution_context_class=CompiledListExecution if compiled_lists else None,
    )


schema = build_schema()

OperationMetrics.root_fields = frozenset(
    name
    for root in (
        schema._schema.query_type,
        schema._schema.mutation_type,
        schema._schema.subscription_type,
    )
    if root is not None
    for name in root.fields
)


def sdl() -> str:
    """The schema as SDL, exactly as checked in at queries/schema.graphql."""
    return schema.as_str() + "\n"
