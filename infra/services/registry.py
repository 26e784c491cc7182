"""The local services Parley can run, in start order."""

from infra.postgres import PostgresTarget
from infra.services.base import LocalService, port_in_use
from infra.services.elasticsearch import ElasticsearchService
from infra.services.kafka import KafkaService
from infra.services.postgres import ExternalPostgres, PostgresService
from infra.services.redis import RedisService
from infra.settings import Settings

SERVICE_NAMES = ("postgres", "redis", "kafka", "elasticsearch")

LOOPBACK = ("127.0.0.1", "localhost")


def _postgres(settings: Settings) -> LocalService:
    """Ours, or the server `PARLEY_DATABASE_URL` names.

    `up` tells people to export a URL naming our server, so a URL is ours when it names the
    address where `up` started a server that still runs, or where `up` would start one and no
    one else listens; any other server is external: used, never started or stopped.
    """
    root = settings.services_dir
    if not settings.database_url:
        return PostgresService(root, settings.services_postgres_port)
    target = PostgresTarget.from_url(settings.database_url)
    if target.host in LOOPBACK:
        ours = PostgresService(root, target.port)
        if ours.started_here() or (
            target.port == settings.services_postgres_port and not port_in_use(target.port)
        ):
            return ours
    return ExternalPostgres(root, settings.database_url)


def build_services(settings: Settings) -> dict[str, LocalService]:
    root = settings.services_dir
    services: dict[str, LocalService] = {
        "postgres": _postgres(settings),
        "redis": RedisService(root, settings.services_redis_port),
        "kafka": KafkaService(
            root,
            settings.services_kafka_version,
            settings.services_kafka_port,
            settings.services_kafka_controller_port,
        ),
        "elasticsearch": ElasticsearchService(
            root, settings.services_elasticsearch_version, settings.services_elasticsearch_port
        ),
    }
    return services


def select(settings: Settings, names: list[str]) -> list[LocalService]:
    services = build_services(settings)
    unknown = [n for n in names if n not in services]
    if unknown:
        raise ValueError(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(services)}")
    return [services[n] for n in (names or list(services))]
