"""The composition root: builds every adapter from settings and wires the workers.

One place decides which adapters run (embedded PostgreSQL or a URL, which followers run in this
process); the rest of the code receives what it needs (the API its ports, `Services`; the CLI
the runtime itself). It is one file on purpose, and longer than our usual modules: the point of a
composition root is that every construction and every wire is read in one place, in the order
the process starts them; split, the order and the sharing (one store, one bus, one pool per
purpose) would have to be reassembled by the reader.
"""

import asyncio
import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar
from uuid import UUID

from elastic_transport import HttpxAsyncHttpNode
from elasticsearch import AsyncElasticsearch, Elasticsearch
from kafka.errors import KafkaError

from api.services import Services
from commands.admission import Admission
from commands.authentication import Authentication
from commands.bus import MessageBus
from commands.login_throttle import LoginThrottle
from commands.messages import RecordDocumentFailed, RecordDocumentProcessed
from commands.responder import FOLLOWER_NAME as RESPONDER
from commands.responder import (
    ModelPolicy,
    Responder,
    Streaming,
)
from commands.retention import FIRST_SWEEP_WITHIN, sweep
from domain.errors import RateLimited
from infra.audit.chain import load_or_create_signing_key
from infra.audit.store import NOTIFY_CHANNEL as AUDIT_CHANNEL
from infra.audit.store import public_keys
from infra.eventstore.data_keys import DataKeys
from infra.eventstore.event_store import EventStore, open_event_store
from infra.eventstore.follower_positions import (
    all_followers,
    read_position,
    store_position,
    wait_for_position,
)
from infra.identity.master_key import MasterKey
from infra.identity.oidc_sign_ins import (
    MemorySignInStore,
    PostgresSignInStore,
    RedisSignInStore,
    SignInStore,
)
from infra.identity.refresh_tokens import RefreshTokens
from infra.identity.signing_keys import SigningKeys
from infra.identity.tokens import TokenService
from infra.knowledge.blobs import DocumentBlobs
from infra.knowledge.chunking import ChunkSizes
from infra.knowledge.index import knowledge_alias
from infra.knowledge.index_elasticsearch import ElasticsearchKnowledge
from infra.knowledge.index_postgres import PostgresKnowledge
from infra.knowledge.retrieval import Knowledge, LazyEmbedder
from infra.llm.cache import MemoryCache, RedisCache
from infra.llm.catalog import build_providers, keyed_provider
from infra.llm.gateway_report import (
    REPORT_SECONDS,
    GatewayReport,
    load_report,
    report_of,
    store_report,
)
from infra.llm.router import Router, RouterPolicy
from infra.loops.log_follower import LogFollower, Progress
from infra.loops.periodic_task import PeriodicTask
from infra.messaging.kafka_relay import (
    CHECKPOINT_PUBLISH_SECONDS,
    CHECKPOINTS_POSITION,
    KafkaRelay,
    RelaySettings,
)
from infra.messaging.live_feed import LiveFeed
from infra.messaging.live_items import StopRequested
from infra.messaging.pg_fanout import PostgresFanout
from infra.messaging.redis_fanout import RedisFanout
from infra.messaging.reply_buffer import (
    MemoryReplyBuffer,
    PostgresReplyBuffer,
    RedisReplyBuffer,
    ReplyBuffer,
)
from infra.migrations import check_schema, migrate
from infra.postgres import EmbeddedPostgres, PostgresTarget, open_pool
from infra.rate_limits import (
    Buckets,
    LeasedBuckets,
    MemoryBuckets,
    PostgresBuckets,
    RedisBuckets,
)
from infra.read_model_schema import (
    PROJECTION_NAME,
    READER_ROLE,
)
from infra.settings import Settings
from projections.audit_ledger import AuditLedger
from projections.knowledge import PREFIX as KNOWLEDGE_PREFIX
from projections.knowledge import (
    KnowledgeProjection,
    Outcome,
    Processed,
    projection_name,
)
from projections.read_models import ReadModelProjection
from projections.search_index import INDEX_VERSION, IndexSpec, SearchProjection
from queries.read_models import ReadModels, open_reader_pool
from queries.search import SearchIndex
from queries.search_elasticsearch import ElasticsearchSearch
from queries.search_postgres import PostgresSearch
from queries.subscription_checks import SubscriptionChecks
from queries.usage import spent_this_month_usd

log = logging.getLogger(__name__)

T = TypeVar("T")
WORKER_KINDS = ("projections", "responder", "audit", "relay", "retention", "knowledge")
"""Followers a process can run. `audit` is the ledger (hash chain + signed checkpoints);
`relay` publishes to Kafka and needs PARLEY_KAFKA_BOOTSTRAP_SERVERS; `knowledge` processes
documents into the knowledge index."""


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedded: EmbeddedPostgres | None = None
        self._followers: list[LogFollower] = []
        self._tasks: list[PeriodicTask] = []
        self._relay: KafkaRelay | None = None
        self._router: Router | None = None
        self._responder: Responder | None = None
        self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="command")
        # Password hashing gets its own small pool: a burst of sign-ins (or an attack on them)
        # must not take the threads and memory that commands need.
        self._password_executor = ThreadPoolExecutor(
            max_workers=settings.password_hash_concurrency, thread_name_prefix="password"
        )
        self._pending_sign_ins = 0
        self.live_feed = LiveFeed(settings.subscriber_queue_size)
        # Half the read pool at most for subscriptions' queries; the rest stays for queries.
        self.subscription_reads = asyncio.Semaphore(max(1, settings.read_pool_size // 2))
        self.subscription_checks = SubscriptionChecks(settings.subscription_recheck_seconds)
        self._fanout: RedisFanout | PostgresFanout | None = None
        self.publish_live: Callable[[UUID, Any], None] = self.live_feed.publish
        self._publish_live_many: Callable[[Sequence[tuple[UUID, Any]]], None] = (
            self.live_feed.publish_many
        )
        """Where live items go: the local feed, or Redis or PostgreSQL (which feed every
        process's feed)."""
        self.live_feed.control = self._control
        self.buckets: Buckets
        self.partial_replies: ReplyBuffer
        self.sign_ins: SignInStore
        self.read_models: ReadModels = None  # type: ignore[assignment]  # set by open_read_side
        self.search: SearchIndex = None  # type: ignore[assignment]  # set by open_read_side
        self._es: Elasticsearch | None = None
        self._knowledge_es: Elasticsearch | None = None
        self._es_async: AsyncElasticsearch | None = None
        self.target: PostgresTarget
        self.store: EventStore
        self.bus: MessageBus
        self.authentication: Authentication
        self.tokens: TokenService
        self.refresh_tokens: RefreshTokens

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, *, workers: bool | Collection[str], shared: bool = False) -> None:
        """Connect everything; `workers` runs followers here: True for all, or a subset of
        WORKER_KINDS ("projections", "responder"). `shared`: other processes serve the same
        deployment (API processes beside a worker process), so rate limits, replies in
        progress, sign-ins in progress and live events are shared: through Redis when it is
        configured, through PostgreSQL otherwise (in process when nothing is shared)."""
        s = self.settings
        if s.database_url is None:
            self._embedded = EmbeddedPostgres(s.data_dir)
            self.target = self._embedded.start()
            migrate(self.target)  # embedded default: zero setup, one server, no migration race
        else:
            self.target = PostgresTarget.from_url(s.database_url)
            # eventsourcing opens its own connections from host/port/user only: hand the URL's
            # TLS options to libpq through its environment, so they are never silently dropped.
            os.environ.update(self.target.libpq_env())
            check_schema(self.target)
        self._share_state(shared)
        self.master_key = MasterKey.from_setting(
            s.master_key.get_secret_value() if s.master_key else None,
            s.data_dir,
            s.master_key_previous.get_secret_value() if s.master_key_previous else None,
        )
        self.keys_pool = open_pool(self.target.conninfo(), size=4, name="data-keys")
        self.data_keys = DataKeys(
            self.keys_pool,
            self.master_key,
            cache_size=s.data_key_cache_size,
            ttl=s.data_key_cache_seconds,
        )
        self.data_keys.check_master()
        self.store = open_event_store(
            self.target,
            create_tables=False,
            pool_size=s.db_pool_size,
            keys=self.data_keys,
            group_commit=s.group_commit,
            group_commit_max_events=s.group_commit_max_events,
            group_commit_window_ms=s.group_commit_window_ms,
            aggregate_cache=s.aggregate_cache_size,
        )
        self.admission = Admission(self.buckets, spent_this_month_usd=self._spent_this_month_usd)
        self.knowledge_pool = open_pool(self.target.conninfo(), size=4, name="knowledge")
        self.blobs = DocumentBlobs(self.knowledge_pool, self.data_keys)
        self.bus = MessageBus(
            self.store,
            max_attempts=s.command_max_attempts,
            master_key=self.master_key,
            admission=self.admission,
            blobs=self.blobs,
            max_bytes=s.document_max_bytes,
        )
        self.knowledge = self.open_knowledge(s)
        self.authentication = Authentication(self.store)
        self.auth_pool = open_pool(self.target.conninfo(), size=4, name="auth")
        self.signing_keys = SigningKeys(
            self.auth_pool,
            self.master_key,
            max_token_seconds=max(s.access_token_ttl_seconds, s.refresh_token_ttl_seconds)
            + s.jwt_leeway_seconds,
            cache_seconds=s.signing_key_cache_seconds,
        )
        self.signing_keys.ensure()
        self.tokens = TokenService(
            self.signing_keys,
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            access_ttl=s.access_token_ttl_seconds,
            refresh_ttl=s.refresh_token_ttl_seconds,
            leeway=s.jwt_leeway_seconds,
        )
        self.refresh_tokens = RefreshTokens(
            self.auth_pool,
            ttl_seconds=s.refresh_token_ttl_seconds,
            reuse_grace_seconds=s.refresh_reuse_grace_seconds,
        )
        self.login_throttle = LoginThrottle(
            self.buckets,
            per_account=s.login_failures_per_account,
            per_address=s.login_failures_per_address,
            window_seconds=s.login_failure_window_seconds,
        )
        self.writer_pool = open_pool(self.target.conninfo(), size=4, name="followers")
        if self._fanout is not None:
            self._fanout.start()
            self.publish_live = self._fanout.publish
            self._publish_live_many = self._fanout.publish_many
        if workers is True:
            kinds = set(WORKER_KINDS) - (set() if s.kafka_bootstrap_servers else {"relay"})
        else:
            kinds = set(workers or ())
        unknown = kinds - set(WORKER_KINDS)
        if unknown:
            raise ValueError(f"unknown workers: {', '.join(sorted(unknown))}")
        if "relay" in kinds and not s.kafka_bootstrap_servers:
            raise ValueError("the relay needs PARLEY_KAFKA_BOOTSTRAP_SERVERS")
        if kinds:
            self._start_workers(kinds)

    def _share_state(self, shared: bool) -> None:
        """The adapters of state that processes of one deployment must share (or not)."""
        s = self.settings
        if s.redis_url is not None:
            self.buckets = RedisBuckets(s.redis_url)
            self.partial_replies = RedisReplyBuffer(s.redis_url)
            self.sign_ins = RedisSignInStore(s.redis_url)
            self._fanout = RedisFanout(s.redis_url, self.live_feed)
        elif shared:
            self.shared_pool = open_pool(self.target.conninfo(), size=4, name="shared-state")
            self.buckets = PostgresBuckets(self.shared_pool)
            self.partial_replies = PostgresReplyBuffer(self.shared_pool)
            self.sign_ins = PostgresSignInStore(self.shared_pool)
            self._fanout = PostgresFanout(self.target.conninfo(), self.live_feed)
        else:
            self.buckets = MemoryBuckets()
            self.partial_replies = MemoryReplyBuffer()
            self.sign_ins = MemorySignInStore()
        # Every operation takes its caller's and tenant's per-minute buckets: shared ones are
        # spent in leases, so a burst does not queue on one row (docs/performance.md).
        self.operation_buckets: Buckets = (
            self.buckets if isinstance(self.buckets, MemoryBuckets) else LeasedBuckets(self.buckets)
        )

    def open_knowledge(self, s: Settings) -> Knowledge:
        """The knowledge index of the embedding model `s` names: Elasticsearch's when it is
        configured (one index per model), PostgreSQL's otherwise."""
        embedder = LazyEmbedder(s)
        if s.elasticsearch_url is not None:
            if self._knowledge_es is None:
                self._knowledge_es = Elasticsearch(s.elasticsearch_url, request_timeout=30)
            es_index = ElasticsearchKnowledge(
                self._knowledge_es,
                knowledge_alias(s.elasticsearch_index, embedder.model),
                embedder.model,
                embedder.dimensions,
                deletes_across=f"{s.elasticsearch_index}-knowledge-*",
            )
            try:
                es_index.ensure(shards=s.elasticsearch_shards, replicas=s.elasticsearch_replicas)
            except Exception as e:  # Elasticsearch down: the projection creates it later
                log.warning("could not create the knowledge index yet: %s", e)
            return Knowledge(es_index, embedder, "elasticsearch", self.data_keys.destroyed_among)
        pg_index = PostgresKnowledge(
            self.knowledge_pool, self.knowledge_pool, embedder.model, embedder.dimensions
        )
        return Knowledge(pg_index, embedder, "postgres", self.data_keys.destroyed_among)

    def _record_document_outcome(self, outcome: Outcome) -> None:
        if isinstance(outcome, Processed):
            self.bus.handle(RecordDocumentProcessed(**dataclasses.asdict(outcome)))
        else:
            self.bus.handle(RecordDocumentFailed(**dataclasses.asdict(outcome)))

    def _start_workers(self, kinds: set[str]) -> None:
        """Every loop this process runs, built here: log followers and periodic tasks
        (`infra/loops/`); the components give only their unit of work."""
        s = self.settings
        followers: list[tuple[str, Callable[[], int], Callable[[Any], None]]] = []
        tasks: list[PeriodicTask] = []
        options: dict[str, dict[str, Any]] = {}
        """Per follower: LogFollower options (the relay stays behind the ledger, Kafka down is
        an outage, not a poison event)."""
        reached: Callable[[int, float], bool] = self._read_models_reached_in_db
        if "projections" in kinds:
            projection = ReadModelProjection(self.store, self.writer_pool, self._publish_committed)
            self._read_model_progress = Progress(projection.position())
            reached = self._read_model_progress.reached
            followers.append((projection.name, projection.position, projection.handle))
            if s.elasticsearch_url is not None:
                self._es = Elasticsearch(s.elasticsearch_url, request_timeout=30)
                search = SearchProjection(
                    self.store,
                    self.writer_pool,
                    self._es,
                    s.elasticsearch_index,
                    create=IndexSpec(
                        INDEX_VERSION, s.elasticsearch_shards, s.elasticsearch_replicas
                    ),
                )
                followers.append((search.name, search.position, search.handle))
        if "responder" in kinds:
            with self.writer_pool.connection() as conn:
                responder_start = read_position(conn, RESPONDER)
            self._responder = Responder(
                store=self.store,
                bus=self.bus,
                router=self.model_router(),
                cache=RedisCache(s.redis_url) if s.redis_url else MemoryCache(),
                buckets=self.buckets,
                partials=self.partial_replies,
                keyed=lambda name, key: keyed_provider(name, key, s),
                master_key=self.master_key,
                models=ModelPolicy(
                    prices=s.llm_prices,
                    context_windows=s.llm_context_windows,
                    default_context_window=s.llm_default_context_window,
                    max_output_tokens=s.llm_max_output_tokens,
                ),
                publish=self._publish_live_many,
                save_position=self._store_responder_position,
                start_position=responder_start,
                concurrency=s.responder_concurrency,
                blocking_threads=s.responder_blocking_threads,
                streaming=Streaming(
                    s.responder_coalesce_ms / 1000,
                    s.responder_flush_chars,
                    s.responder_max_reply_chars,
                ),
                read_models_reached=reached,
                knowledge=self.knowledge,
                knowledge_passages=s.knowledge_passages,
            )
            followers.append((RESPONDER, self._responder.position, self._responder.handle))
            tasks.append(PeriodicTask("gateway-report", REPORT_SECONDS, self._report_gateway))
        if "knowledge" in kinds:
            knowledge = KnowledgeProjection(
                self.store,
                self.writer_pool,
                self.knowledge.index,
                self.blobs,
                self.knowledge.embedder,
                self._record_document_outcome,
                sizes=ChunkSizes(s.knowledge_chunk_chars, s.knowledge_overlap_chars),
                prepare=getattr(self.knowledge.index, "ensure", None),
            )
            followers.append((knowledge.name, knowledge.position, knowledge.handle))
            # A document takes seconds to embed: small batches keep the position moving.
            options[knowledge.name] = {"batch_size": 50}
        if "retention" in kinds:
            interval = s.retention_interval_seconds
            sweep_stop = threading.Event()  # a long sweep ends at the next chat on stop()
            tasks.append(
                PeriodicTask(
                    "retention",
                    interval,
                    functools.partial(sweep, self.bus, self.writer_pool, stop=sweep_stop),
                    stop=sweep_stop,
                    first_delay=min(interval, FIRST_SWEEP_WITHIN),
                )
            )
        if "audit" in kinds:
            ledger = AuditLedger(
                self.store,
                self.writer_pool,
                load_or_create_signing_key(s.signing_key_path),
                checkpoint_events=s.audit_checkpoint_events,
                checkpoint_seconds=s.audit_checkpoint_seconds,
            )
            followers.append((ledger.name, ledger.position, ledger.handle))
            tasks.append(PeriodicTask("audit-seal", ledger.seal_interval, ledger.seal_when_due))
        if "relay" in kinds:
            assert s.kafka_bootstrap_servers is not None
            self._relay = KafkaRelay(self.store, self.writer_pool, self.relay_settings())
            followers.append((self._relay.name, self._relay.position, self._relay.handle))
            tasks.append(
                PeriodicTask(
                    "relay-checkpoints",
                    CHECKPOINT_PUBLISH_SECONDS,
                    self._relay.publish_checkpoints,
                    outages=(KafkaError,),
                )
            )
            options[self._relay.name] = {
                "upto": self._relay.ledger_position,
                "channel": AUDIT_CHANNEL,
                "outages": (KafkaError,),
            }
        for name, position, handle in followers:
            follower = LogFollower(
                name=name,
                store=self.store,
                conninfo=self.target.conninfo(),
                position=position,
                handle=handle,
                poll_seconds=s.follower_poll_seconds,
                **options.get(name, {}),
            )
            follower.start()
            self._followers.append(follower)
        for task in tasks:
            task.start()
            self._tasks.append(task)

    async def open_read_side(self) -> None:
        s = self.settings
        set_role = False
        if s.reader_database_url is not None:
            conninfo = PostgresTarget.from_url(s.reader_database_url).conninfo()
        elif self._embedded is not None:
            # The embedded server trusts local connections: log in as the reader role itself.
            conninfo = replace(self.target, user=READER_ROLE, password="").conninfo()
        else:
            log.warning(
                "PARLEY_READER_DATABASE_URL is unset: queries use the main login with SET ROLE %s",
                READER_ROLE,
            )
            conninfo, set_role = self.target.conninfo(), True
        pool = await open_reader_pool(conninfo, size=s.read_pool_size, set_role=set_role)
        self._reader_pool = pool
        self.read_models = ReadModels(
            pool,
            wait_timeout=s.read_wait_timeout_seconds,
            checkout_timeout=s.read_pool_timeout_seconds,
        )
        if s.elasticsearch_url is not None:
            self._es_async = AsyncElasticsearch(
                s.elasticsearch_url, node_class=HttpxAsyncHttpNode, request_timeout=10
            )
            self.search = ElasticsearchSearch(
                self._es_async, s.elasticsearch_index, snapshot_seconds=s.search_cursor_seconds
            )
        else:
            self.search = PostgresSearch(self.read_models)

    async def close_read_side(self) -> None:
        if self._es_async is not None:
            await self._es_async.close()
        if self.read_models is not None:
            await self._reader_pool.close()

    async def model_status(self) -> GatewayReport | None:
        """The model gateway as the replying process sees it: this one's router, or the last
        report of the worker process's (None before it has reported)."""
        if self._router is not None:
            return report_of(self._router)
        return await self.run_blocking(self._stored_gateway_report)

    def _stored_gateway_report(self) -> GatewayReport | None:
        with self.writer_pool.connection() as conn:
            return load_report(conn)

    def _report_gateway(self) -> None:
        assert self._router is not None
        with self.writer_pool.connection() as conn:
            store_report(conn, report_of(self._router))

    def model_router(self) -> Router:
        s = self.settings
        self._router = Router(
            build_providers(s),
            RouterPolicy(
                max_attempts=s.llm_max_attempts,
                max_retry_wait=s.llm_max_retry_wait_seconds,
                breaker_threshold=s.llm_breaker_threshold,
                cooldown_seconds=s.llm_breaker_cooldown_seconds,
            ),
        )
        return self._router

    def audit_public_keys(self) -> dict[str, bytes]:
        with self.writer_pool.connection() as conn:
            return public_keys(conn)

    def relay_settings(self) -> RelaySettings:
        s = self.settings
        assert s.kafka_bootstrap_servers is not None
        return RelaySettings(
            bootstrap_servers=s.kafka_bootstrap_servers,
            topic=s.kafka_topic,
            checkpoint_topic=s.kafka_checkpoint_topic,
            partitions=s.kafka_partitions,
            replication_factor=s.kafka_replication_factor,
            timeout_seconds=s.kafka_timeout_seconds,
        )

    def stop(self) -> None:
        for follower in self._followers:
            follower.stop()
        for task in self._tasks:
            task.stop()
        if self._relay is not None:
            self._relay.stop()
        if self._responder is not None:
            self._responder.close()
        if self._fanout is not None:
            self._fanout.stop()
        if self._es is not None:
            self._es.close()
        if self._knowledge_es is not None:
            self._knowledge_es.close()
        self._executor.shutdown(wait=True)
        self._password_executor.shutdown(wait=True)
        if hasattr(self, "writer_pool"):
            self.writer_pool.close()
        if hasattr(self, "store"):
            self.store.close()
        if hasattr(self, "auth_pool"):
            self.auth_pool.close()
        if hasattr(self, "keys_pool"):
            self.keys_pool.close()
        if hasattr(self, "knowledge_pool"):
            self.knowledge_pool.close()
        if hasattr(self, "shared_pool"):
            self.shared_pool.close()
        if self._embedded is not None:
            self._embedded.stop()

    # -- services --------------------------------------------------------------------------------

    def services(self) -> Services:
        """The ports for the API's resolvers and routes, once started and the read side open."""
        return Services(
            settings=self.settings,
            bus=self.bus,
            authentication=self.authentication,
            login_throttle=self.login_throttle,
            tokens=self.tokens,
            refresh_tokens=self.refresh_tokens,
            signing_keys=self.signing_keys,
            aggregates=self.store,
            master_key=self.master_key,
            read_models=self.read_models,
            search=self.search,
            live_feed=self.live_feed,
            publish_live=self.publish_live,
            partial_replies=self.partial_replies,
            sign_ins=self.sign_ins,
            subscription_checks=self.subscription_checks,
            subscription_reads=self.subscription_reads,
            buckets=self.buckets,
            operation_buckets=self.operation_buckets,
            model_status=self.model_status,
            run_blocking=self.run_blocking,
            run_password_work=self.run_password_work,
            follower_status=self.follower_status,
            deployment_followers=self.deployment_followers,
            audit_public_keys=self.audit_public_keys,
            knowledge=self.knowledge,
            blobs=self.blobs,
        )

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def run_password_work(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a sign-in (argon2) on the password pool; refuse when too many are waiting."""
        if self._pending_sign_ins >= self.settings.max_pending_sign_ins:
            raise RateLimited("too many sign-ins at once; retry in a moment")
        self._pending_sign_ins += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._password_executor, functools.partial(fn, *args))
        finally:
            self._pending_sign_ins -= 1

    def deployment_followers(self) -> dict[str, dict[str, Any]]:
        """Every follower's durable position and failure, wherever it runs (for an API-only
        process's /readyz: its followers are in the worker process)."""
        with self.writer_pool.connection() as conn:
            records = all_followers(conn)
        # The relay's count of audit checkpoints published shares the table; it is no log
        # position. Another embedding model's knowledge projection (built by `parley knowledge
        # rebuild` for a switch, or left by one) is not followed by this deployment: it waits
        # for the switch, so it is not a follower the deployment is behind on.
        serving = projection_name(self.knowledge.index.model)
        return {
            r.name: {"position": r.position, "error": r.error}
            for r in records
            if r.name != CHECKPOINTS_POSITION
            and (not r.name.startswith(KNOWLEDGE_PREFIX) or r.name == serving)
        }

    def follower_status(self) -> dict[str, dict[str, Any]]:
        """Each in-process follower's position and last error (for /readyz and operators)."""
        status: dict[str, dict[str, Any]] = {}
        for follower in self._followers:
            status[follower.name] = {"position": follower.position(), "error": follower.last_error}
        if self._responder is not None:
            status[RESPONDER]["replies_in_flight"] = self._responder.in_flight
        return status

    def _spent_this_month_usd(self, tenant_id: UUID) -> float:
        with self.writer_pool.connection() as conn:
            return spent_this_month_usd(conn, tenant_id)

    def _control(self, chat_id: UUID, item: Any) -> bool:
        if isinstance(item, StopRequested):
            if self._responder is not None and self._responder.stop_generation(chat_id):
                log.info("stopped the reply being generated in chat %s", chat_id)
            return True
        return False

    def _publish_committed(self, position: int, items: list[Any]) -> None:
        # MessageRow or ChatRemoved, both keyed by chat: the batch in one round trip.
        self._publish_live_many([(item.chat_id, item) for item in items])
        self._read_model_progress.advance(position)

    def _read_models_reached_in_db(self, position: int, timeout: float) -> bool:
        """For a responder whose projection runs in another process."""
        return wait_for_position(self.writer_pool, PROJECTION_NAME, position, timeout)

    def _store_responder_position(self, position: int) -> None:
        with self.writer_pool.connection() as conn:
            store_position(conn, RESPONDER, position)
