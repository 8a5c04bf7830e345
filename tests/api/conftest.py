"""Fixtures for the HTTP API: the API over a synced tiny sandbox, tokens, and who owns what.

Every test gets a fresh database from ``database_url`` (SQLite, and PostgreSQL when
``TEST_DATABASE_URL`` is set) with day 0 and day 1 of the sandbox synced. The sync runs once
per session and engine; each test gets a copy of its result (the SQLite file, or the rows of
every table from a template schema on PostgreSQL), which costs milliseconds instead of a sync.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient  # noqa: E402 (after the project imports above)
from sqlalchemy import create_engine, make_url, text

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings, DecisionLogSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.db.models import Base
from soredi_sync.domain.model import GlnMode
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import Scope, create_token, revoke_token
from tests.integration.conftest import make_settings, manifest, sandbox_dir  # noqa: F401
from tests.parsing.test_bundle import care_communication, json_to_xml, organization

PROBLEM = "application/problem+json"
ALL_SCOPES = tuple(Scope)


def sync_days(app: App, sandbox: Path, *days: int) -> None:
    for day in days:
        outcome = sync_source(
            app.uow_factory,
            app.files_client(from_dir=sandbox / f"day-{day:03d}"),
            app.sync_config(),
        )
        assert outcome.ok, outcome.error


_TEMPLATE_SCHEMA = "synced_template"


@pytest.fixture(scope="session")
def synced_sqlite_template(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    sandbox_dir: Path,  # noqa: F811
) -> Path:
    """A SQLite file with days 0 and 1 synced, made once per session."""
    path = tmp_path_factory.mktemp("synced-template") / "synced.db"
    shutil.copyfile(sqlite_template, path)
    with bootstrap(make_settings(f"sqlite:///{path}")) as application:
        sync_days(application, sandbox_dir, 0, 1)
    connection = sqlite3.connect(path)  # everything in the one file, so a copy is complete
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode=DELETE")
    finally:
        connection.close()
    return path


@pytest.fixture(scope="session")
def synced_postgres_template(postgres_url: str, sandbox_dir: Path) -> str:  # noqa: F811
    """Days 0 and 1 synced once per session, their rows kept in a schema of their own; the
    public tables are left empty, as ``database_url`` leaves them."""
    _copy_rows(postgres_url, source=None, empty_first=True)
    with bootstrap(make_settings(postgres_url)) as application:
        sync_days(application, sandbox_dir, 0, 1)
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {_TEMPLATE_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {_TEMPLATE_SCHEMA}"))
            for table in Base.metadata.sorted_tables:
                conn.execute(
                    text(
                        f'CREATE TABLE {_TEMPLATE_SCHEMA}."{table.name}" '
                        f'AS SELECT * FROM public."{table.name}"'
                    )
                )
    finally:
        engine.dispose()
    _copy_rows(postgres_url, source=None, empty_first=True)
    return _TEMPLATE_SCHEMA


def _copy_rows(url: str, *, source: str | None, empty_first: bool = False) -> None:
    """Fill every table of ``url`` from ``source``'s copies and move each id sequence past the
    copied ids; ``empty_first`` empties the tables before (alone, with no ``source``)."""
    engine = create_engine(url)
    tables = Base.metadata.sorted_tables
    try:
        with engine.begin() as conn:
            if empty_first:
                names = ", ".join(f'public."{t.name}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            if source is None:
                return
            for table in tables:
                conn.execute(
                    text(f'INSERT INTO public."{table.name}" SELECT * FROM {source}."{table.name}"')
                )
            for table in tables:
                for column in table.primary_key.columns:
                    if column.autoincrement is True or (
                        column.autoincrement == "auto"
                        and len(table.primary_key.columns) == 1
                        and column.type.python_type is int
                    ):
                        conn.execute(
                            text(
                                "SELECT setval(pg_get_serial_sequence(:t, :c), "
                                f'coalesce(max("{column.name}"), 1), max("{column.name}") '
                                f'IS NOT NULL) FROM public."{table.name}"'
                            ),
                            {"t": f'public."{table.name}"', "c": column.name},
                        )
    finally:
        engine.dispose()


def restore_synced(database_url: str, request: pytest.FixtureRequest) -> None:
    """Put the session's synced days 0 and 1 into the (migrated, empty) ``database_url``."""
    if database_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("synced_sqlite_template")
        path = make_url(database_url).database
        assert path is not None
        shutil.copyfile(template, path)
        return
    schema: str = request.getfixturevalue("synced_postgres_template")
    _copy_rows(database_url, source=schema)  # database_url has just emptied the tables


@pytest.fixture
def synced_app(database_url: str, request: pytest.FixtureRequest) -> Iterator[App]:
    restore_synced(database_url, request)
    with bootstrap(make_settings(database_url)) as application:
        yield application


@pytest.fixture
def empty_app(database_url: str) -> Iterator[App]:
    with bootstrap(make_settings(database_url)) as application:
        yield application


def api_uow(app: App) -> Callable[[], UnitOfWork]:
    return lambda: app.uow()


# A flush interval far longer than any test, so only flush() and shutdown write the log.
QUIET_LOG = DecisionLogSettings(flush_seconds=3600)


def make_client(app: App, **api_settings: Any) -> TestClient:
    return TestClient(create_app(app, ApiSettings(**api_settings), QUIET_LOG))


@pytest.fixture
def client(synced_app: App) -> Iterator[TestClient]:
    with make_client(synced_app) as test_client:
        yield test_client


@pytest.fixture
def issue(synced_app: App) -> Callable[..., str]:
    """Make a token: ``issue("route:read", owners=[...], revoked=False, name=...)``."""

    def make(
        *scopes: str, owners: tuple[str, ...] = (), revoked: bool = False, name: str | None = None
    ) -> str:
        issued = create_token(api_uow(synced_app), scopes, owners, name)
        if revoked:
            revoke_token(api_uow(synced_app), issued.record.id)
        return issued.token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class World:
    """Two institution owners of the synced snapshot and, for each, a unit and a GLN."""

    owner_in: str
    unit_in: str
    gln_in: str
    owner_out: str
    unit_out: str
    gln_out: str


@pytest.fixture
def world(synced_app: App) -> World:
    index = synced_app.routing().resolver().index
    units = index.registry.units
    carried: list[tuple[str, str, str]] = []  # (owner, unit, gln)
    for gln, carriers in sorted(index.owners_by_gln.items()):
        unit = units[carriers[0]]
        if unit.gln_mode is GlnMode.OWN and index.registry.glns[gln].active:
            carried.append((unit.owner_sor_id, unit.sor_id, gln))
    first = carried[0]
    other = next(c for c in carried if c[0] != first[0])
    return World(*first, *other)


def route_body(gln: str | None = None, sor_id: str | None = None, **fields: Any) -> dict[str, Any]:
    receiver = {k: v for k, v in {"gln": gln, "sor_id": sor_id}.items() if v is not None}
    return {
        "receiver": receiver,
        "business_message": "correspondence",
        "sender_syntax": "fhir",
        **fields,
    }


def bundle_json(gln: str | None, sor_id: str | None = None, **kwargs: Any) -> bytes:
    bundle = care_communication(receiver=organization("rcv", gln, sor_id), **kwargs)
    return json.dumps(bundle).encode()


def bundle_xml(gln: str | None, sor_id: str | None = None, **kwargs: Any) -> bytes:
    return json_to_xml(care_communication(receiver=organization("rcv", gln, sor_id), **kwargs))


def assert_problem(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and ``type`` ending in ``kind``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if kind is not None:
        assert body["type"] == f"urn:soredi-sync:problem:{kind}"
    return body
