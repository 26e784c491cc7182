"""Usage sums the write side needs synchronously (admission's monthly budget), read from the
usage read model on an owner connection of the command side's pool."""

from datetime import UTC, datetime
from uuid import UUID

from psycopg import Connection, sql

from infra.read_model_schema import READ_SCHEMA


def spent_this_month_usd(conn: Connection, tenant_id: UUID) -> float:
    """The tenant's model spend this calendar month (UTC), as the usage projection has it."""
    today = datetime.now(UTC).date()
    query = sql.SQL(
        """SELECT coalesce(sum(cost_nanos), 0)::bigint FROM {}.rm_usage
           WHERE tenant_id = %s AND day BETWEEN %s AND %s"""
    ).format(sql.Identifier(READ_SCHEMA))
    row = conn.execute(query, (tenant_id, today.replace(day=1), today)).fetchone()
    return (row[0] if row else 0) / 1e9
