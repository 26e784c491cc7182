"""The FastAPI application: GraphQL over HTTP and WebSocket, health, readiness and metrics."""

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.middleware.cors import CORSMiddleware
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from api.api_key_verifier import ApiKeyVerifier
from api.browser_session import CSRF_HEADER, session_router
from api.context import ParleyContext
from api.documents_http import FORM_OVERHEAD, documents_router
from api.documents_http import PATH as DOCUMENTS_PATH
from api.graphql_over_http import GraphQLOverHttpRouter
from api.hardening import (
    BodySizeLimit,
    GuardedTransportWS,
    SecurityHeaders,
    TransportLimits,
    WebSocketMessageLimit,
)
from api.oidc_sign_in import oidc_router
from api.runtime import Runtime
from api.schema import schema
from api.services import Services
from api.topology import (
    InstanceHeader,
    die_with_supervisor,
    leave_metrics,
    settle_garbage_collector,
)
from api.web_client import WebClient, web_client_router
from domain.errors import NotAuthenticated
from infra.audit.chain import public_key_pem
from infra.settings import Settings

log = logging.getLogger(__name__)


class ParleyGraphQLRouter(GraphQLOverHttpRouter):
    graphql_transport_ws_handler_class = GuardedTransportWS
    limits: TransportLimits
    web: WebClient

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from Parley's own build (strawberry's page loads its scripts from a CDN)."""
        return self.web.page("graphiql.html")

    async def on_ws_connect(self, context: ParleyContext) -> Any:
        """Authenticate WebSockets once, from the `connection_init` payload."""
        try:
            context.actor()
        except NotAuthenticated as e:
            raise ConnectionRejectionError({"code": e.code, "message": e.message}) from None
        return None


class _Started:
    """The process's ports once the lifespan has started it (routes are built before)."""

    services: Services | None = None
    api_keys: ApiKeyVerifier | None = None

    def ports(self) -> Services:
        if self.services is None:
            raise RuntimeError("Parley has not started yet")
        return self.services


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = runtime or Runtime(settings)
    web = WebClient(settings.web_dir)

    started = _Started()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An API-only process shares its state with the worker process and other API processes.
        await asyncio.to_thread(
            functools.partial(
                runtime.start, workers=settings.run_workers, shared=not settings.run_workers
            )
        )
        await runtime.open_read_side()
        started.services = runtime.services()
        started.api_keys = ApiKeyVerifier(started.services.aggregates, settings.api_key_cache_size)
        settle_garbage_collector()
        log.info("Parley ready (database: %s)", "embedded" if settings.embedded else "external")
        try:
            yield
        finally:
            await runtime.close_read_side()
            await asyncio.to_thread(runtime.stop)
            leave_metrics()
            log.info("Parley stopped")

    app = FastAPI(title="Parley", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime

    async def get_context() -> ParleyContext:
        return ParleyContext(started.ports(), started.api_keys)

    graphql = ParleyGraphQLRouter(
        schema,
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        max_subscriptions_per_connection=None,  # GuardedTransportWS applies Parley's, typed
        # Browsers' WebSockets from these origins (and the API's own) only: 403 at handshake.
        allowed_origins=settings.cors_allowed_origins
        if settings.ws_allowed_origins is None
        else settings.ws_allowed_origins,
    )
    graphql.limits = TransportLimits(settings)
    graphql.web = web
    app.state.transport_limits = graphql.limits
    app.include_router(graphql, prefix="/graphql")
    app.include_router(oidc_router(settings, started.ports))
    app.include_router(session_router(settings, started.ports))
    app.include_router(documents_router(settings, started.ports, lambda: started.api_keys))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        # The followers first, the head last: a reply a follower had finished by then is in the
        # head, so "every position equals the head, nothing in flight" means settled (read the
        # other way round, a reply saved between the two reads went unseen).
        try:
            services = started.ports()
            followers = services.follower_status()
            # An API-only process runs none: the deployment's, from the database, tell
            # operators how far the worker process is.
            deployment = (
                None if followers else await services.run_blocking(services.deployment_followers)
            )
            position = await services.read_models.position()
            head = await services.run_blocking(services.aggregates.head)
        except Exception:
            log.exception("readiness check failed")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        body = {
            "status": "ok",
            "log_head": head,
            "read_models_position": position,
            "followers": followers,
        }
        if deployment is not None:
            body["deployment_followers"] = deployment
        return JSONResponse(body)

    @app.get("/audit/public-key", include_in_schema=False)
    async def audit_public_keys() -> dict[str, Any]:
        """Every Ed25519 key that signed audit checkpoints, for independent verification."""
        services = started.ports()
        keys = await services.run_blocking(services.audit_public_keys)
        return {
            "algorithm": "Ed25519",
            "keys": [
                {"key_id": key_id, "public_key_pem": public_key_pem(raw)}
                for key_id, raw in sorted(keys.items())
            ],
        }

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks() -> Response:
        """The public keys that verify Parley's tokens: every key that may still have valid
        tokens out (JWK Set, RFC 7517; Ed25519 as OKP, RFC 8037)."""
        services = started.ports()
        keys = await services.run_blocking(services.signing_keys.jwks)
        max_age = int(settings.signing_key_cache_seconds)
        return JSONResponse(keys, headers={"Cache-Control": f"public, max-age={max_age}"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)

    # Last: the client's own routes are every GET for HTML that no API route answered.
    app.include_router(web_client_router(web))

    # Added innermost first: security headers wrap everything, 413s and CORS answers included.
    app.add_middleware(WebSocketMessageLimit, max_bytes=settings.ws_max_message_bytes)
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-api-key", CSRF_HEADER.lower()],
            max_age=600,
        )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.http_max_body_bytes,
        # Documents are files: their own limit (and the command checks the file itself).
        paths={DOCUMENTS_PATH: settings.document_max_bytes + FORM_OVERHEAD},
    )
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(InstanceHeader)

    return app


def metrics_registry() -> CollectorRegistry:
    """This process's metrics; under `parley serve`'s supervisor (PROMETHEUS_MULTIPROC_DIR set),
    those of every process it runs, API processes and worker: one scrape sees the deployment."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def app_from_environment() -> FastAPI:
    """The app of one API process of `parley serve` (uvicorn's factory): settings from the
    environment the supervisor prepared."""
    die_with_supervisor()
    return create_app(Settings())
