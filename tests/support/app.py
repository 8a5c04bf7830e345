"""Building and driving an App on the test database: settings with fast retries, syncing a
day of the sandbox, reading the current snapshot back."""

from __future__ import annotations

from pathlib import Path

from soredi_sync.bootstrap import App
from soredi_sync.config import RetrySettings, Settings
from soredi_sync.domain.audit import AuditView
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.sync import sync_source


def make_settings(database_url: str, **overrides: object) -> Settings:
    # Fast retries: the policy is under test, not the patience of the test run.
    retry = RetrySettings(attempts=3, initial_wait=0.01, max_wait=0.05)
    return Settings(database_url=database_url, retry=retry, **overrides)


def sync_day(app: App, sandbox: Path, day: int) -> None:
    """Sync ``day`` of the sandbox folder ``sandbox`` from disk; it must succeed."""
    outcome = sync_source(
        app.uow_factory, app.files_client(from_dir=sandbox / f"day-{day:03d}"), app.sync_config()
    )
    assert outcome.ok, outcome.error


def sync_days(app: App, sandbox: Path, *days: int) -> None:
    for day in days:
        sync_day(app, sandbox, day)


def plan_uow(app: App) -> UnitOfWork:
    return app.uow()


def current_view(app: App) -> AuditView:
    """The audit's view of the current snapshot."""
    with app.uow() as uow:
        snapshot = uow.registry.current_snapshot()
        assert snapshot is not None
        registry = uow.registry.load_registry(snapshot.id)
    return AuditView(registry, app.reference.audit_context, snapshot.effective_date)


def carrier(app: App, gln: str) -> str:
    """The SOR-ID of the unit that carries ``gln`` on the current snapshot."""
    return app.routing().resolver().index.owners_by_gln[gln][0]
