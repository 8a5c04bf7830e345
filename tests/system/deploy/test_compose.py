"""deploy/compose.yaml: PostgreSQL, a one-shot migration, two daemon replicas on one database
and the sandbox as their source, started in that order."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.deploy import DEPLOY, SYSTEMD, is_known_setting, read_unit

REPLICAS = ("soredi-a", "soredi-b")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    with (DEPLOY / "compose.yaml").open(encoding="utf-8") as fh:
        document = yaml.safe_load(fh)  # resolves the << merge keys as compose does
    result: dict[str, Any] = document["services"]
    return result


def depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_services_are_the_database_the_migration_the_sandbox_and_two_replicas(
    services: dict[str, Any],
) -> None:
    assert set(services) == {"postgres", "migrate", "sandbox-data", "sandbox", *REPLICAS}


def test_postgres_reports_healthy_only_when_it_accepts_connections(
    services: dict[str, Any],
) -> None:
    test = services["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]


def test_the_migration_runs_once_when_postgres_is_healthy(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert depends(migrate) == {"postgres": "service_healthy"}


def test_each_replica_runs_the_daemon_after_the_migration_and_once_the_source_answers(
    services: dict[str, Any],
) -> None:
    for name in REPLICAS:
        replica = services[name]
        assert replica["command"] == ["run"]
        assert depends(replica) == {
            "migrate": "service_completed_successfully",
            "sandbox": "service_healthy",
        }


def test_the_replicas_share_the_database_of_the_migration(services: dict[str, Any]) -> None:
    urls = {services[n]["environment"]["SOREDI_DATABASE_URL"] for n in ("migrate", *REPLICAS)}
    assert len(urls) == 1
    assert urlsplit(urls.pop().replace("${POSTGRES_PASSWORD:-soredi-trial}", "x")).hostname == (
        "postgres"
    )


def test_the_replicas_sync_from_the_sandbox_they_share_a_network_with(
    services: dict[str, Any],
) -> None:
    serve = services["sandbox"]["command"]
    assert serve[:2] == ["sandbox", "serve"]
    # The sandbox binds loopback only, so the replicas join its network namespace.
    address = f"http://{option(serve, '--host')}:{option(serve, '--port')}/"
    for name in REPLICAS:
        replica = services[name]
        assert replica["network_mode"] == "service:sandbox"
        assert replica["environment"]["SOREDI_SOURCES__BASE_URL"] == address
    generated = option(services["sandbox-data"]["command"], "--out")
    assert option(serve, "--dir") == generated
    assert services["sandbox-data"]["volumes"] == services["sandbox"]["volumes"]
    assert depends(services["sandbox"]) == {"sandbox-data": "service_completed_successfully"}


def test_each_replica_has_its_own_api_port_published_through_the_sandbox(
    services: dict[str, Any],
) -> None:
    ports = [services[n]["environment"]["SOREDI_API__PORT"] for n in REPLICAS]
    assert len(set(ports)) == len(REPLICAS)
    published = [entry.rsplit(":", 1)[1] for entry in services["sandbox"]["ports"]]
    assert sorted(published) == sorted(ports)


def test_the_replicas_stop_like_the_systemd_unit(services: dict[str, Any]) -> None:
    timeout = read_unit(SYSTEMD / "soredi-sync.service")["Service"]["TimeoutStopSec"][0]
    for name in REPLICAS:
        assert services[name]["stop_signal"] == "SIGTERM"
        assert services[name]["stop_grace_period"] == f"{timeout}s"


def test_the_services_that_end_or_have_no_api_do_not_use_the_images_healthcheck(
    services: dict[str, Any],
) -> None:
    for name in ("migrate", "sandbox-data"):
        assert services[name]["healthcheck"] == {"disable": True}
    assert "/_sandbox/state" in " ".join(services["sandbox"]["healthcheck"]["test"])


def test_every_soredi_variable_in_the_file_is_a_setting_the_application_reads(
    services: dict[str, Any],
) -> None:
    names = {
        name
        for service in services.values()
        for name in service.get("environment", {})
        if name.startswith("SOREDI_")
    }
    assert names
    assert sorted(n for n in names if not is_known_setting(n)) == []
