"""Where the benchmarks find the servers they use: the `PARLEY_*` setting when it is set, else
the server `parley services up` runs."""

from infra.services.elasticsearch import ElasticsearchService
from infra.services.kafka import KafkaService
from infra.services.postgres import PostgresService
from infra.settings import Settings


def postgres_url(settings: Settings) -> str:
    """PARLEY_DATABASE_URL, else the local PostgreSQL server."""
    if settings.database_url:
        return settings.database_url
    return PostgresService(settings.services_dir, settings.services_postgres_port).url()


def elasticsearch_url(settings: Settings) -> str:
    """PARLEY_ELASTICSEARCH_URL, else the local Elasticsearch."""
    if settings.elasticsearch_url:
        return settings.elasticsearch_url
    return ElasticsearchService(
        settings.services_dir,
        settings.services_elasticsearch_version,
        settings.services_elasticsearch_port,
    ).url()


def kafka_bootstrap(settings: Settings) -> str:
    """PARLEY_KAFKA_BOOTSTRAP_SERVERS, else the local broker."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    return local_kafka(settings).address


def local_kafka(settings: Settings) -> KafkaService:
    return KafkaService(
        settings.services_dir,
        settings.services_kafka_version,
        settings.services_kafka_port,
        settings.services_kafka_controller_port,
    )
