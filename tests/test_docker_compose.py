"""docker-compose.yml cannot run here (no Docker engine): check its structure and that it only
uses settings Parley really reads."""

import json
import re
from pathlib import Path

import yaml

from infra.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_full_stack_is_there() -> None:
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "kafka",
        "elasticsearch",
        "migrate",
        "api",
        "worker",
        "prometheus",
        "grafana",
    }
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4")
    assert SERVICES["elasticsearch"]["image"].endswith(":9.5.0")
    assert SERVICES["elasticsearch"]["environment"]["discovery.type"] == "single-node"


def test_servers_have_healthchecks_and_parley_starts_in_order() -> None:
    for name in ("postgres", "redis", "kafka", "elasticsearch", "api", "worker"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        for server in ("redis", "kafka", "elasticsearch"):
            assert depends[server] == {"condition": "service_healthy"}
    assert SERVICES["api"]["environment"]["PARLEY_RUN_WORKERS"] == "false"
    assert SERVICES["worker"]["command"][:2] == ["parley", "worker"]


def test_every_parley_variable_is_a_setting_parley_reads() -> None:
    fields = {f"PARLEY_{name.upper()}" for name in Settings.model_fields}
    for name in ("migrate", "api", "worker"):
        env = SERVICES[name]["environment"]
        parley_vars = {k for k in env if k.startswith("PARLEY_")}
        assert parley_vars <= fields, parley_vars - fields
        for key in (
            "PARLEY_DATABASE_URL",
            "PARLEY_REDIS_URL",
            "PARLEY_KAFKA_BOOTSTRAP_SERVERS",
            "PARLEY_ELASTICSEARCH_URL",
        ):
            assert key in env, (name, key)


def test_ports_are_published_on_loopback_only() -> None:
    for service in SERVICES.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_prometheus_scrapes_the_api_and_the_worker() -> None:
    config = yaml.safe_load((ROOT / "infra/docker/prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {"api:8000", "worker:9100"}


def test_dashboard_queries_only_metrics_parley_exports() -> None:
    from prometheus_client import REGISTRY

    import infra.metrics  # noqa: F401  (registers the metrics)

    exported = {m.name for m in REGISTRY.collect()}
    dashboard = json.loads((ROOT / "infra/docker/grafana/dashboards/parley.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for metric in re.findall(r"\b(parley_[a-z_]+)", target["expr"]):
                base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
                assert base in exported, (panel["title"], metric)
