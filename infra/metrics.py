"""Prometheus metrics. Names are a public interface: change them only with a migration note."""

from prometheus_client import Counter, Gauge, Histogram

GRAPHQL_OPERATIONS = Counter(
    "parley_graphql_operations_total",
    "GraphQL operations by type, name and outcome.",
    ["operation_type", "operation_name", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "parley_graphql_operation_duration_seconds",
    "GraphQL operation duration.",
    ["operation_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
COMMANDS = Counter(
    "parley_commands_total", "Commands handled, by command and outcome.", ["command", "outcome"]
)
COMMAND_DURATION = Histogram(
    "parley_command_duration_seconds",
    "Command handling time including retries.",
    ["command"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2),
)
COMMAND_CONFLICTS = Counter(
    "parley_command_conflicts_total",
    "Optimistic-concurrency conflicts retried, by command.",
    ["command"],
)
FOLLOWER_EVENTS = Counter(
    "parley_follower_events_processed_total", "Log events processed per follower.", ["follower"]
)
FOLLOWER_POSITION = Gauge(
    "parley_follower_position",
    "Last log position processed per follower.",
    ["follower"],
    multiprocess_mode="livemax",
)
FOLLOWER_LAG_EVENTS = Gauge(
    "parley_follower_lag_events",
    "Log head minus the follower's position.",
    ["follower"],
    multiprocess_mode="livemax",
)
FOLLOWER_LAG_SECONDS = Gauge(
    "parley_follower_lag_seconds",
    "Age of the oldest log event the follower has not processed (0 when caught up).",
    ["follower"],
    multiprocess_mode="livemax",
)
FOLLOWER_BATCH_DURATION = Histogram(
    "parley_follower_batch_duration_seconds",
    "Time to process one batch of log events.",
    ["follower"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
FOLLOWER_ERRORS = Counter(
    "parley_follower_errors_total", "Failed batches per follower (retried).", ["follower"]
)
PERIODIC_TASK_LAST_SUCCESS = Gauge(
    "parley_periodic_task_last_success_timestamp_seconds",
    "When the periodic task last ran to completion (its start before the first time), Unix "
    "seconds; `time() - this` is normally below its interval.",
    ["task"],
    multiprocess_mode="livemax",
)
PERIODIC_TASK_ERRORS = Counter(
    "parley_periodic_task_errors_total",
    "Failed runs per periodic task (tried again at the next interval).",
    ["task"],
)
REPLIES = Counter(
    "parley_replies_total",
    "Assistant replies produced, by model and outcome.",
    ["model", "outcome"],
)
REPLY_FIRST_DELTA = Histogram(
    "parley_reply_time_to_first_delta_seconds",
    "From picking up a user message to the first streamed delta.",
    ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
LIVE_SUBSCRIBERS = Gauge(
    "parley_live_subscribers",
    "Open chatEvents subscriptions (of every API process).",
    multiprocess_mode="livesum",
)
LIVE_DROPPED = Counter(
    "parley_live_subscribers_dropped_total", "Subscribers disconnected for falling behind."
)
RELAY_RECORDS = Counter(
    "parley_relay_records_total",
    "Records the Kafka relay had acknowledged by the broker, by kind (events, checkpoints).",
    ["kind"],
)
AUDIT_CHECKPOINTS = Counter(
    "parley_audit_checkpoints_total", "Signed audit checkpoints sealed by this process."
)

# The model gateway, named after the OpenTelemetry GenAI semantic conventions where they fit.
_GENAI = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]
GEN_AI_DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of a model call as the gateway saw it (retries and fallbacks included).",
    [*_GENAI, "error_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80),
)
GEN_AI_TTFT = Histogram(
    "gen_ai_client_time_to_first_token_seconds",
    "Time from the request to the first streamed token.",
    _GENAI,
    buckets=(0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10),
)
GEN_AI_TOKENS = Histogram(
    "gen_ai_client_token_usage",
    "Tokens per model call, by gen_ai_token_type (input, output).",
    [*_GENAI, "gen_ai_token_type"],
    buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144),
)
GEN_AI_REQUESTS = Counter(
    "parley_gen_ai_requests_total",
    "Replies by the model that answered and their finish reason (error: no model answered).",
    ["gen_ai_provider_name", "gen_ai_request_model", "finish_reason"],
)
GEN_AI_ATTEMPTS = Counter(
    "parley_gen_ai_attempts_total",
    "Provider calls (retries included), by the deployment the reply finally came from.",
    ["gen_ai_provider_name", "gen_ai_request_model"],
)
GEN_AI_FALLBACKS = Counter(
    "parley_gen_ai_fallbacks_total",
    "Replies that needed a fallback model, by the model that answered.",
    ["gen_ai_provider_name", "gen_ai_request_model"],
)
GROUP_COMMIT_BATCH = Histogram(
    "parley_group_commit_batch_saves",
    "Saves (commands) committed together in one transaction by the group committer.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
GROUP_COMMIT_FALLBACKS = Counter(
    "parley_group_commit_fallbacks_total",
    "Batches that failed as a whole and were saved again one by one (a conflict inside).",
)
CHATS_EXPIRED = Counter(
    "parley_retention_chats_erased_total",
    "Chats erased because they were idle beyond their tenant's retention period.",
)
USERS_ERASED = Counter("parley_users_erased_total", "Users erased on request (GDPR art. 17).")
GEN_AI_SPEND = Counter(
    "parley_gen_ai_spend_usd_total",
    "Spend on model calls from the price table, by tenant (no user or chat ids).",
    ["tenant_id"],
)
OIDC_SIGN_INS = Counter(
    "parley_oidc_sign_ins_total",
    "OIDC sign-in steps (start, callback, exchange) by outcome (ok or an error code).",
    ["step", "outcome"],
)
READER_POOL_EXHAUSTED = Counter(
    "parley_reader_pool_exhausted_total",
    "Queries answered UNAVAILABLE because no read connection freed up in time "
    "(PARLEY_READ_POOL_TIMEOUT_SECONDS; raise PARLEY_READ_POOL_SIZE or add API processes).",
)
HISTORY_TAMPERED = Counter(
    "parley_history_tampered_total",
    "Stored events that no longer decode (bytes altered behind the append-only guard), each "
    "time a read met one; alert on any increase and run `parley audit verify`.",
)
KNOWLEDGE_DOCUMENTS = Counter(
    "parley_knowledge_documents_total",
    "Document revisions the knowledge projection processed, by outcome (processed, failed).",
    ["outcome"],
)
KNOWLEDGE_CHUNKS = Counter(
    "parley_knowledge_chunks_total", "Passages the knowledge projection embedded and indexed."
)
KNOWLEDGE_SECONDS = Histogram(
    "parley_knowledge_processing_seconds",
    "Time to extract, chunk, embed and index one document revision.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
KNOWLEDGE_SEARCH_SECONDS = Histogram(
    "parley_knowledge_search_seconds",
    "Knowledge retrieval time (embedding the question and searching), by engine and mode.",
    ["engine", "mode"],
)
