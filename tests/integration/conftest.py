"""Fixtures for end-to-end tests: a generated sandbox and an app on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import RetrySettings, Settings
from soredi_sync.domain.audit import AuditView
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.sandbox.generate import Manifest, generate
from soredi_sync.services.sync import sync_source

SANDBOX_SEED = 11

# GLNs that day 1 of the sandbox switches (adds FDIS91 and/or FCTL, removes XDIS91).
SWITCHED = ("5790000104376", "5790000105090", "5790000111046")


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sandbox, day 0..2, generated once per test session."""
    directory = tmp_path_factory.mktemp("sandbox")
    generate(directory, profile="tiny", seed=SANDBOX_SEED, days=2)
    return directory


@pytest.fixture(scope="session")
def manifest(sandbox_dir: Path) -> Manifest:
    return Manifest.load(sandbox_dir)


def make_settings(database_url: str, **overrides: object) -> Settings:
    # Fast retries: the policy is under test, not the patience of the test run.
    retry = RetrySettings(attempts=3, initial_wait=0.01, max_wait=0.05)
    return Settings(database_url=database_url, retry=retry, **overrides)


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    with bootstrap(make_settings(database_url)) as application:
        yield application


def sync_day(app: App, sandbox: Path, day: int) -> None:
    outcome = sync_source(
        app.uow_factory, app.files_client(from_dir=sandbox / f"day-{day:03d}"), app.sync_config()
    )
    assert outcome.ok, outcome.error


def plan_uow(app: App) -> UnitOfWork:
    return app.uow()


def current_view(app: App) -> AuditView:
    with app.uow() as uow:
        snapshot = uow.registry.current_snapshot()
        assert snapshot is not None
        registry = uow.registry.load_registry(snapshot.id)
    return AuditView(registry, app.reference.audit_context, snapshot.effective_date)


@pytest.fixture
def day0(app: App, sandbox_dir: Path) -> App:
    sync_day(app, sandbox_dir, 0)
    return app
