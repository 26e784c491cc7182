"""The local services Parley can run, in start order."""

from infra.services.base import LocalService
from infra.services.elasticsearch import ElasticsearchService
from infra.services.kafka import KafkaService
from infra.services.postgres import ExternalPostgres, PostgresService
from infra.services.redis import RedisService
from infra.settings import Settings

SERVICE_NAMES = ("postgres", "redis", "kafka", "elasticsearch")


def build_services(settings: Settings) -> dict[str, LocalService]:
    root = settings.services_dir
    services: dict[str, LocalService] = {
        "postgres": (
            ExternalPostgres(root, settings.database_url)
            if settings.database_url
            else PostgresService(root, settings.services_postgres_port)
        ),
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
