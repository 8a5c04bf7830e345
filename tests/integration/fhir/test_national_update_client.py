"""An mCSD update client against the national sandbox (about 73,000 units and 21,000 GLNs), on
each engine, over HTTP from a served API: it pages through every Organization and Endpoint,
the next sync comes, it follows ``_history?_since=`` from the bookmark its first page gave
(``Bundle.meta.lastUpdated``), applies it oldest first (FHIR lists it newest first), and what
it holds is then exactly a fresh ``export fhir`` of the new snapshot (so nothing was missed by
the paging either: most resources do not change on day 1)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.observability.metrics import Metrics
from soredi_sync.services.after_sync import after_sync
from soredi_sync.services.fhir_directory import RESOURCE_TYPES, ensure_versions, export_ndjson
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import Scope, create_token
from tests.support.api import QUIET_LOG, bearer
from tests.support.app import make_settings
from tests.support.live_server import uvicorn_in_thread
from tests.support.national import empty_database

pytestmark = pytest.mark.slow

Mirror = dict[str, dict[str, str]]  # type -> id -> digest of the resource


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external_service)],
)
def national_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    url = empty_database(request.param, request, tmp_path_factory.mktemp("fhir-national"))
    with bootstrap(make_settings(url)) as app:
        yield app


def _sync(app: App, sandbox: Path, day: int) -> None:
    """A sync of ``day`` and its follow-up steps, as ``soredi-sync sync`` and the daemon run
    them (the FHIR versions are one)."""
    client = app.files_client(from_dir=sandbox / f"day-{day:03d}")
    outcome = sync_source(app.uow_factory, client, app.sync_config())
    assert outcome.ok, outcome.error
    follow_up = after_sync(
        app.uow_factory,
        app.reference.audit_context,
        outcome,
        directory_context=app.reference.directory_context,
    )
    assert not follow_up.failures, follow_up.failures


def _digest(resource: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()


def _pages(client: httpx.Client, url: str) -> Iterator[dict[str, Any]]:
    """Every Bundle from ``url`` on, following the absolute ``next`` links the server gives."""
    next_url: str | None = url
    pages = 0
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.text[:500]
        assert response.headers["content-type"].startswith("application/fhir+json")
        bundle: dict[str, Any] = response.json()
        yield bundle
        next_url = next((k["url"] for k in bundle["link"] if k["relation"] == "next"), None)
        pages += 1
        assert pages < 1000, "the next links do not end"


def _export(app: App, out: Path) -> Mirror:
    with app.uow() as uow:
        snapshot = ensure_versions(uow, app.reference.directory_context)
        export_ndjson(uow, out, at_snapshot=snapshot.id)
    exported: Mirror = {}
    for resource_type in RESOURCE_TYPES:
        with (out / f"{resource_type}.ndjson").open(encoding="utf-8") as lines:
            resources = (json.loads(line) for line in lines)
            exported[resource_type] = {r["id"]: _digest(r) for r in resources}
    return exported


def test_an_update_client_mirrors_the_national_directory_and_follows_its_history_to_the_export(
    national_app: App, national_sandbox: Path, tmp_path: Path
) -> None:
    app = national_app
    _sync(app, national_sandbox, 0)
    token = create_token(app.uow, (Scope.REGISTRY_READ,), (), "mCSD update client").token
    asgi = create_app(
        app, ApiSettings(warm_seconds=0), QUIET_LOG, Metrics(process_collectors=False)
    )
    with (
        uvicorn_in_thread(asgi) as (host, port),
        httpx.Client(headers=bearer(token), timeout=120) as client,
    ):
        base = f"http://{host}:{port}/fhir"
        mirror: Mirror = {resource_type: {} for resource_type in RESOURCE_TYPES}
        since = None
        for resource_type in RESOURCE_TYPES:
            totals = set()
            for bundle in _pages(client, f"{base}/{resource_type}?_count=1000"):
                # The directory as of the first page: where the client's history starts.
                since = since or bundle["meta"]["lastUpdated"]
                totals.add(bundle["total"])
                for entry in bundle.get("entry", ()):
                    resource = entry["resource"]
                    assert resource["id"] not in mirror[resource_type], "given twice"
                    assert entry["fullUrl"] == f"{base}/{resource_type}/{resource['id']}"
                    mirror[resource_type][resource["id"]] = _digest(resource)
            assert totals == {len(mirror[resource_type])}, resource_type
        assert len(mirror["Organization"]) > 70_000 and len(mirror["Endpoint"]) > 20_000

        _sync(app, national_sandbox, 1)
        changes = [
            entry
            for bundle in _pages(client, f"{base}/_history?_since={since}&_count=1000")
            for entry in bundle.get("entry", ())
        ]
    assert changes, "day 1 changes the directory"
    for entry in reversed(changes):  # newest first, as FHIR lists a history
        resource_type, rid = entry["request"]["url"].split("/")
        if entry["request"]["method"] == "DELETE":
            mirror[resource_type].pop(rid, None)  # day 0's versions come again: at or after
        else:
            assert entry["request"]["method"] == "PUT"
            mirror[resource_type][rid] = _digest(entry["resource"])
    assert mirror == _export(app, tmp_path / "day-1")
