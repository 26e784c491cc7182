"""The ports the API's resolvers and routes may use: one bundle, built by the composition root
(`api/runtime.py`, `Runtime.services`) once the process has started. Resolvers see these, never
the runtime that built them (its pools, workers and life cycle are not theirs to touch)."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from commands.authentication import Authentication
from commands.bus import MessageBus
from commands.login_throttle import LoginThrottle
from infra.eventstore.event_store import EventStore
from infra.identity.master_key import MasterKey
from infra.identity.oidc_sign_ins import SignInStore
from infra.identity.refresh_tokens import RefreshTokens
from infra.identity.signing_keys import SigningKeys
from infra.identity.tokens import TokenService
from infra.knowledge.blobs import DocumentBlobs
from infra.knowledge.retrieval import Knowledge
from infra.llm.gateway_report import GatewayReport
from infra.messaging.live_feed import LiveFeed
from infra.messaging.reply_buffer import ReplyBuffer
from infra.rate_limits import Buckets
from infra.settings import Settings
from queries.read_models import ReadModels
from queries.search import SearchIndex
from queries.subscription_checks import SubscriptionChecks

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    settings: Settings
    bus: MessageBus
    """Every command (mutations, sign-in through an issuer)."""
    authentication: Authentication
    login_throttle: LoginThrottle
    tokens: TokenService
    refresh_tokens: RefreshTokens
    signing_keys: SigningKeys
    aggregates: EventStore
    """Aggregates as they are now, for the few reads that must not lag (keys, settings)."""
    master_key: MasterKey
    """Opens the tenants' sealed OIDC client secrets for the sign-in flow."""
    read_models: ReadModels
    search: SearchIndex
    live_feed: LiveFeed
    publish_live: Callable[[UUID, Any], None]
    """A live item for a chat's subscribers in every API process (stop requests)."""
    partial_replies: ReplyBuffer
    sign_ins: SignInStore
    """OIDC sign-ins in progress (the callback may reach another process than the start)."""
    subscription_checks: SubscriptionChecks
    subscription_reads: asyncio.Semaphore
    buckets: Buckets
    operation_buckets: Buckets
    """The per-minute operation limits' buckets (shared ones spent in leases)."""
    model_status: Callable[[], Awaitable[GatewayReport | None]]
    run_blocking: Callable[..., Awaitable[Any]]
    """The one thread hop of a request: blocking work (the event store, Redis) off the loop."""
    run_password_work: Callable[..., Awaitable[Any]]
    """Argon2 on its own small pool; refuses when too many sign-ins wait."""
    follower_status: Callable[[], dict[str, dict[str, Any]]]
    """This process's followers."""
    deployment_followers: Callable[[], dict[str, dict[str, Any]]]
    """Every follower of the deployment, as the database has them (blocking)."""
    audit_public_keys: Callable[[], dict[str, bytes]]
    knowledge: Knowledge
    """Documents' passages: `searchKnowledge` and citations (blocking: run_blocking)."""
    blobs: DocumentBlobs
    """Documents' files (blocking)."""
