"""A serving process prepares each new snapshot in the background (``[api] warm_seconds``):
the routing index and the snapshot's audit findings are ready before the first request asks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from soredi_sync.api.warmup import DEFAULT_JOBS, CacheWarmer
from soredi_sync.bootstrap import App
from soredi_sync.db.registry_repository import SqlAlchemyRegistryRepository
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.services import fhir_search
from soredi_sync.services.fhir_directory import record_fhir_versions
from soredi_sync.services.routing import RoutingService
from soredi_sync.services.tokens import Scope, create_token
from tests.support.api import bearer, make_client
from tests.support.app import sync_day
from tests.support.waiting import wait_until


def _current(app: App) -> SnapshotInfo:
    with app.uow() as uow:
        current = uow.registry.current_snapshot()
    assert current is not None
    return current


def _sync_with_versions(app: App, sandbox: Path, day: int) -> None:
    """``day`` synced and its FHIR versions stored, as the sync's follow-up step does."""
    sync_day(app, sandbox, day)
    with app.uow() as uow:
        record_fhir_versions(uow, app.reference.directory_context)


def _refuse_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, neither cache may load a snapshot: what they answer was prepared."""

    def refuse(*_args: object) -> None:
        raise AssertionError("loaded a snapshot on request")

    monkeypatch.setattr(RoutingService, "_build", refuse)
    monkeypatch.setattr(SqlAlchemyRegistryRepository, "load_registry", refuse)


class TestServedProcess:
    def test_each_new_snapshot_is_prepared_before_any_request_asks_for_it(
        self, app: App, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with make_client(app, warm_seconds=0.1) as client:
            warmer = client.app.state.warmer  # type: ignore[attr-defined]
            for day in (0, 1):
                sync_day(app, sandbox_dir, day)
                current = _current(app)
                wait_until(
                    lambda c=current: warmer.warmed == (c.id, c.taken_at),  # type: ignore[misc]
                    timeout=30,
                    what=f"day {day} prepared",
                )
            _refuse_loading(monkeypatch)
            assert app.routing().resolver().index.snapshot.id == current.id
            with app.uow() as uow:
                findings = app.audit_cache.findings(uow, app.reference.audit_context, current)
            assert findings

    def test_with_warm_seconds_0_nothing_is_prepared_in_the_background(self, app: App) -> None:
        with make_client(app, warm_seconds=0) as client:
            assert client.app.state.warmer is None  # type: ignore[attr-defined]


class TestWarmer:
    def test_the_jobs_run_once_per_snapshot(self, app: App, sandbox_dir: Path) -> None:
        ran: list[int] = []
        warmer = CacheWarmer(app, 60, [lambda _app, snapshot: ran.append(snapshot.id)])
        assert warmer.warm_once() is False  # nothing synced yet
        sync_day(app, sandbox_dir, 0)
        assert warmer.warm_once() is True
        assert warmer.warm_once() is False
        sync_day(app, sandbox_dir, 1)
        assert warmer.warm_once() is True
        assert ran == [1, 2]

    def test_a_failing_job_is_logged_and_the_others_still_run(
        self, app: App, sandbox_dir: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(_app: App, _snapshot: SnapshotInfo) -> None:
            raise RuntimeError("no room")

        sync_day(app, sandbox_dir, 0)
        warmer = CacheWarmer(app, 60, [broken, *DEFAULT_JOBS])
        with caplog.at_level(logging.INFO, logger="soredi_sync.api.warmup"):
            assert warmer.warm_once() is True
        assert "broken failed" in caplog.text
        assert "(1 of 3 jobs failed)" in caplog.text
        with app.uow() as uow:
            assert app.audit_cache.findings(uow, app.reference.audit_context, _current(app))


class TestFhirDirectory:
    def test_new_versions_are_indexed_in_the_background_and_the_first_request_finds_them(
        self, app: App, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _sync_with_versions(app, sandbox_dir, 0)
        with make_client(app, warm_seconds=0.1) as client:
            for day in (0, 1):
                if day:
                    _sync_with_versions(app, sandbox_dir, day)
                with app.uow() as uow:
                    newest = max(
                        v.id for v in uow.fhir.history("Endpoint", since=None, limit=10**6)
                    )
                wait_until(
                    lambda n=newest: (  # type: ignore[misc]
                        (held := app.fhir_directory().held) is not None
                        and held.marks.version_id >= n
                    ),
                    timeout=30,
                    what=f"day {day}'s versions indexed",
                )
            monkeypatch.setattr(
                fhir_search.index, "build_index", lambda _uow: pytest.fail("built on request")
            )
            token = create_token(app.uow, [Scope.REGISTRY_READ], (), None).token
            response = client.get("/fhir/Organization?_count=1", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["total"] > 0

    def test_a_failing_refresh_is_logged_and_tried_again_on_the_next_round(
        self, app: App, caplog: pytest.LogCaptureFixture
    ) -> None:
        rounds: list[int] = []

        def flaky(_app: App) -> None:
            rounds.append(1)
            if len(rounds) == 1:
                raise RuntimeError("database restarting")

        warmer = CacheWarmer(app, 60, [], refreshers=[flaky])
        with caplog.at_level(logging.ERROR, logger="soredi_sync.api.warmup"):
            warmer.refresh()
            warmer.refresh()
        assert len(rounds) == 2
        assert "flaky failed" in caplog.text
