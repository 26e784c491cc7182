"""The model gateway's state as the replying process sees it, for every process that answers
`modelGateway`: the responder (the worker process, or `parley serve --single-process`) stores
its providers and circuit breakers every few seconds; API processes read the last report."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from psycopg import Connection
from psycopg.types.json import Jsonb

from infra.llm.router import BreakerStatus, Router

REPORT_SECONDS = 2.0
"""How often the replying process reports: a report older than a few of these means it is not
running."""

_REPORTER = "responder"


@dataclass(frozen=True)
class GatewayReport:
    providers: list[str]
    deployments: list[BreakerStatus]
    reported_at: datetime


def report_of(router: Router) -> GatewayReport:
    return GatewayReport(sorted(router.providers), router.status(), datetime.now(UTC))


def store_report(conn: Connection, report: GatewayReport) -> None:
    conn.execute(
        """INSERT INTO model_gateway_reports (reporter, providers, deployments, reported_at)
           VALUES (%s, %s, %s, %s)
           ON CONFLICT (reporter) DO UPDATE SET providers = EXCLUDED.providers,
               deployments = EXCLUDED.deployments, reported_at = EXCLUDED.reported_at""",
        (
            _REPORTER,
            Jsonb(report.providers),
            Jsonb([asdict(d) for d in report.deployments]),
            report.reported_at,
        ),
    )


def load_report(conn: Connection) -> GatewayReport | None:
    """The last report (None: no replying process has reported yet)."""
    row = conn.execute(
        "SELECT providers, deployments, reported_at FROM model_gateway_reports WHERE reporter = %s",
        (_REPORTER,),
    ).fetchone()
    if row is None:
        return None
    providers, deployments, reported_at = row
    return GatewayReport(list(providers), [BreakerStatus(**d) for d in deployments], reported_at)
