"""Every table, index, function, trigger, role and policy Parley creates, and `migrate`, which
creates them (idempotent, under an advisory lock, one transaction for everything but the event
store's own table). The modules that use a table name it; only this one defines it. Rebuilds
create the next read-model schema with `read_model_ddl` and `security_ddl`.

Two exceptions, both made by `open_event_store(create_tables=True)` at the start of `migrate`:
the event table (eventsourcing's recorder creates it) and the group committer's insert function,
which mirrors the recorder's own insert and is built from its table names."""

import hashlib
import logging
import os
from typing import Any

import psycopg
from psycopg import sql

from infra.eventstore.data_keys import DataKeys
from infra.eventstore.event_store import EVENTS_TABLE, open_event_store
from infra.eventstore.follower_positions import delete_position
from infra.identity.master_key import MasterKey
from infra.postgres import PostgresTarget, open_pool
from infra.read_model_schema import (
    PROJECTION_NAME,
    READ_SCHEMA,
    READER_ROLE,
    TENANT_DIRECTORY,
    TENANT_SETTING,
    TENANT_TABLES,
)

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x5041524C  # "PARL": one migrator at a time


class SchemaMissing(RuntimeError):
    """The database has no Parley tables (run `parley migrate`)."""


# -- the event log's guards and the audit ledger ----------------------------------------------

_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION parley_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA,
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def append_only_ddl(table: str) -> str:
    trigger = f"{table}_append_only"
    return f"""
DROP TRIGGER IF EXISTS {trigger} ON {table};
CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION parley_refuse_change();
DROP TRIGGER IF EXISTS {trigger}_truncate ON {table};
CREATE TRIGGER {trigger}_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION parley_refuse_change();
"""


AUDIT_DDL = (
    """
CREATE TABLE IF NOT EXISTS audit_chain (
    position bigint PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    tenant_id uuid,
    topic text NOT NULL,
    leaf bytea NOT NULL,
    chain bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_chain_aggregate ON audit_chain (originator_id, originator_version);
CREATE INDEX IF NOT EXISTS audit_chain_tenant ON audit_chain (tenant_id, position);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq bigint PRIMARY KEY,
    from_position bigint NOT NULL,
    to_position bigint NOT NULL UNIQUE,
    count integer NOT NULL,
    merkle_root bytea NOT NULL,
    chain_hash bytea NOT NULL,
    previous bytea NOT NULL,
    created_at timestamptz NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_keys (
    key_id text PRIMARY KEY,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
    + _APPEND_ONLY
    + "".join(
        append_only_ddl(t) for t in (EVENTS_TABLE, "audit_chain", "audit_checkpoints", "audit_keys")
    )
)


# -- follower positions, identity, data keys -----------------------------------------------------

FOLLOWER_POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS follower_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE follower_positions ADD COLUMN IF NOT EXISTS error text;
ALTER TABLE follower_positions ADD COLUMN IF NOT EXISTS error_position bigint;
ALTER TABLE follower_positions ADD COLUMN IF NOT EXISTS error_topic text;
ALTER TABLE follower_positions ADD COLUMN IF NOT EXISTS error_attempts integer;
ALTER TABLE follower_positions ADD COLUMN IF NOT EXISTS error_since timestamptz;
"""


SIGNING_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS auth_signing_keys (
    kid text PRIMARY KEY,
    public_key bytea NOT NULL,
    sealed_private_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    superseded_at timestamptz,
    retire_after timestamptz,
    retired_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS auth_signing_keys_one_signer
    ON auth_signing_keys ((true)) WHERE superseded_at IS NULL;
"""
"""`superseded_at IS NULL` marks the signer; the unique index allows only one."""


REFRESH_TOKENS_DDL = """
CREATE TABLE IF NOT EXISTS auth_refresh_families (
    family_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    user_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX IF NOT EXISTS auth_refresh_families_user
    ON auth_refresh_families (user_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS auth_refresh_families_tenant
    ON auth_refresh_families (tenant_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS auth_refresh_families_expiry ON auth_refresh_families (expires_at);
CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id uuid NOT NULL REFERENCES auth_refresh_families ON DELETE CASCADE,
    issued_at timestamptz NOT NULL DEFAULT now(),
    used_at timestamptz
);
CREATE INDEX IF NOT EXISTS auth_refresh_tokens_family ON auth_refresh_tokens (family_id);
-- The token that replaced this one: a refresh whose answer was lost is retried with its successor
-- still unused (RefreshTokens.rotate).
ALTER TABLE auth_refresh_tokens ADD COLUMN IF NOT EXISTS successor_hash bytea;
"""


DATA_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS data_keys (
    key_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    owner_id uuid,
    kind text NOT NULL,
    wrapped text,
    master_key_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    destroyed_reason text,
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS data_keys_owner ON data_keys (tenant_id, owner_id);
"""


# -- read models (blue/green: the live schema and the one a rebuild fills) ---------------------


def read_model_ddl(schema: str) -> str:
    """Tables of one generation of the read models, inside `schema`."""
    return f"""
CREATE SCHEMA IF NOT EXISTS {schema};
SET LOCAL search_path TO {schema}, public;
CREATE TABLE IF NOT EXISTS rm_tenants (
    tenant_id uuid PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    default_model text NOT NULL,
    allowed_models text[] NOT NULL,
    retention_days integer,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_users (
    user_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    email text NOT NULL,
    display_name text NOT NULL,
    role text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_users_tenant ON rm_users (tenant_id, email);
CREATE TABLE IF NOT EXISTS rm_chats (
    chat_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    title text NOT NULL,
    model text NOT NULL,
    status text NOT NULL,
    message_count integer NOT NULL DEFAULT 0,
    seq bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_message_at timestamptz,
    title_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED
);
CREATE INDEX IF NOT EXISTS rm_chats_owner ON rm_chats (tenant_id, owner_id, seq DESC);
CREATE INDEX IF NOT EXISTS rm_chats_tenant ON rm_chats (tenant_id, seq DESC);
CREATE INDEX IF NOT EXISTS rm_chats_title_tsv ON rm_chats USING gin (title_tsv);
CREATE TABLE IF NOT EXISTS rm_messages (
    message_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    chat_id uuid NOT NULL,
    seq bigint NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    model text,
    author_id uuid,
    reply_to uuid,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    finish_reason text,
    latency_ms integer,
    created_at timestamptz NOT NULL,
    search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED
);
-- How assistant replies were produced (the model gateway); null on user messages.
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS provider text;
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS attempts integer;
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS fallbacks integer;
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS time_to_first_token_ms integer;
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS cost_nanos bigint;
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS cached boolean;
CREATE INDEX IF NOT EXISTS rm_messages_chat ON rm_messages (tenant_id, chat_id, seq);
CREATE INDEX IF NOT EXISTS rm_messages_search_tsv ON rm_messages USING gin (search_tsv);
CREATE TABLE IF NOT EXISTS rm_usage (
    tenant_id uuid NOT NULL,
    day date NOT NULL,
    user_id uuid NOT NULL,
    model text NOT NULL,
    user_messages integer NOT NULL DEFAULT 0,
    assistant_messages integer NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    latency_ms_sum bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, user_id, model)
);
ALTER TABLE rm_usage ADD COLUMN IF NOT EXISTS cost_nanos bigint NOT NULL DEFAULT 0;
-- The model gateway's settings of a tenant, as its last SettingsChanged recorded them.
ALTER TABLE rm_tenants ADD COLUMN IF NOT EXISTS model_settings jsonb NOT NULL DEFAULT '{{}}';
-- Knowledge: the passages a grounded reply was given, what a chat is grounded in, documents.
ALTER TABLE rm_messages ADD COLUMN IF NOT EXISTS citations jsonb;
ALTER TABLE rm_chats ADD COLUMN IF NOT EXISTS knowledge_documents uuid[] NOT NULL DEFAULT '{{}}';
ALTER TABLE rm_chats ADD COLUMN IF NOT EXISTS knowledge_collection boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS rm_documents (
    document_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    owner_id uuid,
    collection text NOT NULL,
    title text NOT NULL,
    media_type text NOT NULL,
    size_bytes bigint NOT NULL,
    content_sha256 text NOT NULL,
    status text NOT NULL,
    revision integer NOT NULL,
    chunks integer,
    characters integer,
    pages integer,
    embedding_model text,
    failure_code text,
    failure_reason text,
    seq bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_documents_owner ON rm_documents (tenant_id, owner_id, seq DESC);
"""


def reader_role_ddl(owner: str) -> list[str]:
    """The query side's role: LOGIN, no BYPASSRLS, resolving read-model names in READ_SCHEMA."""
    return [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
                CREATE ROLE {READER_ROLE} LOGIN NOINHERIT NOBYPASSRLS;
            END IF;
        END $$""",
        f'GRANT {READER_ROLE} TO "{owner}"',
        f"GRANT SELECT ON follower_positions TO {READER_ROLE}",
        # For direct reader logins (psql, tools); the API's pool sets it on every connection.
        f"""DO $$ BEGIN
            ALTER ROLE {READER_ROLE} SET search_path TO {READ_SCHEMA}, public;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot set the search_path of {READER_ROLE}';
        END $$""",
    ]


def security_ddl(schema: str, tables: tuple[str, ...] = TENANT_TABLES) -> list[str]:
    """Row-level security: the reader role sees only rows of the tenant set for its transaction."""
    statements = [f"GRANT USAGE ON SCHEMA {schema} TO {READER_ROLE}"]
    for name in tables:
        table = f"{schema}.{name}"
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
            # A transaction that sets no tenant sees nothing (NULL never equals a tenant id).
            f"""CREATE POLICY tenant_isolation ON {table} FOR SELECT TO {READER_ROLE}
                USING (tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid)""",
            f"GRANT SELECT ON {table} TO {READER_ROLE}",
        ]
    return statements


def tenant_directory_ddl() -> list[str]:
    """`TENANT_DIRECTORY`: the tenants' directory columns (never their settings), a page by
    slug. Owned by the migrating role, which row-level security does not restrict, so that the
    reader role reads across tenants here and nowhere else; who may ask is domain/policy.py's
    decision (`Query.tenants`). The live schema's name resolves at each call (a rebuild swaps
    schemas under it)."""
    signature = f"public.{TENANT_DIRECTORY}(text, integer)"
    return [
        f"""CREATE OR REPLACE FUNCTION public.{TENANT_DIRECTORY}(after_slug text, how_many integer)
            RETURNS TABLE (tenant_id uuid, name text, slug text, default_model text,
                           allowed_models text[], retention_days integer, active boolean,
                           created_at timestamptz)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $fn$
                SELECT t.tenant_id, t.name, t.slug, t.default_model, t.allowed_models,
                       t.retention_days, t.active, t.created_at
                FROM {READ_SCHEMA}.rm_tenants t
                WHERE after_slug IS NULL OR t.slug > after_slug
                ORDER BY t.slug LIMIT how_many
            $fn$""",
        f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {signature} TO {READER_ROLE}",
    ]


# -- documents' bytes (infra/knowledge/blobs.py) -----------------------------------------------

DOCUMENT_BLOBS_DDL = """
CREATE TABLE IF NOT EXISTS document_blobs (
    document_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


# -- the knowledge index (infra/knowledge/index_postgres.py) -------------------------------------

# Its own schema, not the read models' (a rebuild swaps theirs): the index has its own followers.
KNOWLEDGE_SCHEMA = "knowledge"
KNOWLEDGE_TABLES = ("chunks", "tenant_changes")
KNOWLEDGE_DDL = """
CREATE SCHEMA IF NOT EXISTS knowledge;
-- Passages of every revision of every document, a row per embedding model (a passage's id is
-- the same for every model). Only current rows are searched; the others answer old citations.
CREATE TABLE IF NOT EXISTS knowledge.chunks (
    chunk_id uuid NOT NULL,
    model text NOT NULL,
    tenant_id uuid NOT NULL,
    document_id uuid NOT NULL,
    owner_id uuid,
    revision integer NOT NULL,
    chunk_index integer NOT NULL,
    current boolean NOT NULL,
    title text NOT NULL,
    location text NOT NULL,
    start_offset integer NOT NULL,
    end_offset integer NOT NULL,
    text text NOT NULL,
    vector bytea NOT NULL,
    position bigint NOT NULL,
    -- 'english' (stop words dropped, stems): ts_rank has no IDF, so a question's "how do I" would
    -- otherwise weigh as much as its subject.
    text_tsv tsvector GENERATED ALWAYS AS (
        to_tsvector('english', title) || to_tsvector('english', text)
    ) STORED,
    PRIMARY KEY (chunk_id, model)
);
CREATE INDEX IF NOT EXISTS chunks_searched ON knowledge.chunks (tenant_id, model, current);
CREATE INDEX IF NOT EXISTS chunks_document ON knowledge.chunks (tenant_id, document_id);
CREATE INDEX IF NOT EXISTS chunks_owner ON knowledge.chunks (tenant_id, owner_id);
CREATE INDEX IF NOT EXISTS chunks_text_tsv ON knowledge.chunks USING gin (text_tsv);
-- Bumped by every write of a tenant's passages: searchers reload their vectors when it moved.
CREATE TABLE IF NOT EXISTS knowledge.tenant_changes (
    tenant_id uuid NOT NULL,
    model text NOT NULL,
    changed bigint NOT NULL,
    PRIMARY KEY (tenant_id, model)
);
"""


# -- state processes share without Redis -------------------------------------------------------

SHARED_STATE_DDL = """
-- Transient, so unlogged (not in WAL, emptied by a crash): what Redis holds when it is there.
CREATE UNLOGGED TABLE IF NOT EXISTS live_spill (
    id bigserial PRIMARY KEY,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNLOGGED TABLE IF NOT EXISTS partial_replies (
    chat_id uuid NOT NULL,
    reply_id uuid NOT NULL,
    text text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, reply_id)
);
CREATE UNLOGGED TABLE IF NOT EXISTS rate_buckets (
    key text PRIMARY KEY,
    level double precision NOT NULL,
    at double precision NOT NULL
);
CREATE UNLOGGED TABLE IF NOT EXISTS sign_ins_in_progress (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_ins_in_progress_expiry ON sign_ins_in_progress (expires_at);
-- The replying process's providers and circuit breakers, for `modelGateway` on API processes.
CREATE UNLOGGED TABLE IF NOT EXISTS model_gateway_reports (
    reporter text PRIMARY KEY,
    providers jsonb NOT NULL,
    deployments jsonb NOT NULL,
    reported_at timestamptz NOT NULL
);
-- A token bucket, atomically (the row lock serialises takers; one clock, the server's).
-- mode 0 take, 1 debit (always takes), 2 peek (takes nothing).
CREATE OR REPLACE FUNCTION parley_bucket(
    p_key text, p_capacity double precision, p_rate double precision,
    p_cost double precision, p_mode int,
    OUT allowed boolean, OUT remaining double precision
) LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision := extract(epoch FROM clock_timestamp());
    v_at double precision;
BEGIN
    INSERT INTO rate_buckets (key, level, at) VALUES (p_key, p_capacity, v_now)
        ON CONFLICT (key) DO NOTHING;
    SELECT b.level, b.at INTO remaining, v_at FROM rate_buckets b WHERE b.key = p_key FOR UPDATE;
    remaining := least(p_capacity, remaining + (v_now - v_at) * p_rate);
    allowed := p_mode = 1 OR remaining >= p_cost;
    IF allowed AND p_mode <> 2 THEN
        remaining := remaining - p_cost;
    END IF;
    UPDATE rate_buckets SET level = remaining, at = v_now WHERE key = p_key;
END $$;
"""


# -- migrate -----------------------------------------------------------------------------------


SCHEMA_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS parley_schema (
    id integer PRIMARY KEY CHECK (id = 1),
    fingerprint text NOT NULL,
    migrated_at timestamptz NOT NULL
);
"""


def schema_statements(owner: str) -> list[str]:
    """Everything `migrate` runs, in order (its fingerprint says whether a database has it)."""
    return [
        FOLLOWER_POSITIONS_DDL,
        AUDIT_DDL,
        SIGNING_KEYS_DDL,
        REFRESH_TOKENS_DDL,
        DATA_KEYS_DDL,
        SHARED_STATE_DDL,
        DOCUMENT_BLOBS_DDL,
        read_model_ddl(READ_SCHEMA),
        *reader_role_ddl(owner),
        *security_ddl(READ_SCHEMA),
        *tenant_directory_ddl(),
        KNOWLEDGE_DDL,
        *security_ddl(KNOWLEDGE_SCHEMA, KNOWLEDGE_TABLES),
    ]


def _migrated(conn: psycopg.Connection[Any]) -> str | None:
    """The fingerprint of the schema the database was last migrated to (None: never)."""
    if conn.execute("SELECT to_regclass('parley_schema')").fetchone() in (None, (None,)):
        return None
    row = conn.execute("SELECT fingerprint FROM parley_schema WHERE id = 1").fetchone()
    return str(row[0]) if row else None


def migrate(
    target: PostgresTarget, reader_password: str | None = None, *, force: bool = False
) -> None:
    """Create the event store's tables, the read models, roles and row-level security; nothing
    when the database already has this version's schema (its fingerprint in `parley_schema`),
    unless `force`.

    With `reader_password`, the `parley_reader` login gets that password (for servers that do
    not trust local connections, e.g. the docker-compose stack)."""
    statements = schema_statements(target.user)
    fingerprint = hashlib.sha256("\x1e".join(statements).encode()).hexdigest()
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            if reader_password is None and not force and _migrated(conn) == fingerprint:
                # Nothing to do, and nothing locked: ALTER TABLE … IF NOT EXISTS takes an
                # exclusive lock even when it changes nothing, which deadlocked with queries of
                # processes already serving (each process of `parley serve` migrates at start).
                log.debug("database %s is at schema %s", target.dbname, fingerprint[:12])
                return
            # Creating the tables writes no event: a throwaway key ring is never used.
            with open_pool(target.conninfo(), size=1, name="migrate") as pool:
                keys = DataKeys(pool, MasterKey(os.urandom(32)))
                open_event_store(target, create_tables=True, pool_size=1, keys=keys).close()
            # One transaction: readers never see the moment between DROP and CREATE POLICY.
            with conn.transaction():
                conn.execute(FOLLOWER_POSITIONS_DDL)  # _retire_public_read_models uses it
                _retire_public_read_models(conn)
                for statement in statements:
                    conn.execute(statement)
                conn.execute(SCHEMA_VERSION_DDL)
                conn.execute(
                    """INSERT INTO parley_schema (id, fingerprint, migrated_at)
                       VALUES (1, %s, now())
                       ON CONFLICT (id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                           migrated_at = EXCLUDED.migrated_at""",
                    (fingerprint,),
                )
                if reader_password:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                            sql.Identifier(READER_ROLE), sql.Literal(reader_password)
                        )
                    )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    log.info("migrated database %s on %s", target.dbname, target.host)


def _retire_public_read_models(conn: psycopg.Connection[Any]) -> None:
    """Version 0.1 kept the read models in `public`. They are derived data: drop them and let
    the projection rebuild them from the log into their own schema."""
    old = conn.execute("SELECT to_regclass('public.rm_messages')").fetchone()
    if old is not None and old[0] is not None:
        log.warning(
            "moving read models to schema %s: they will be rebuilt from the log", READ_SCHEMA
        )
        for table in ("rm_messages", "rm_chats", "rm_users", "rm_tenants"):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(table)))
        delete_position(conn, PROJECTION_NAME)


def check_schema(target: PostgresTarget) -> None:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT to_regclass('parley_events'), to_regclass('readmodels.rm_messages'),"
            " to_regclass('data_keys'), to_regclass('model_gateway_reports')"
        ).fetchone()
    if row is None or None in row:
        raise SchemaMissing("the database has no Parley tables: run `parley migrate` first")
