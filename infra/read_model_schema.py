"""The read models' names, shared by the projection that writes them (`projections/read_models`)
and the queries that read them (`queries/read_models`): the schema, the reader role, the
per-transaction tenant setting that row-level security checks, the tenant-isolated tables."""

PROJECTION_NAME = "read_models"
READER_ROLE = "parley_reader"
TENANT_SETTING = "parley.tenant_id"
TENANT_TABLES = (
    "rm_tenants",
    "rm_users",
    "rm_chats",
    "rm_messages",
    "rm_usage",
    "rm_documents",
)

# The live read models live in this schema; a rebuild fills READ_SCHEMA_NEXT and swaps the two
# by renaming schemas in one transaction (readers resolve names per query: never half-built).
READ_SCHEMA = "readmodels"
READ_SCHEMA_NEXT = "readmodels_next"

TENANT_DIRECTORY = "parley_tenant_directory"
"""The one function the reader role may call across tenants: every tenant's name, slug and state
(the platform admins' list of tenants); row-level security keeps every other read in one
tenant."""
