"""The lease, failure streaks, data age and /readyz (both engines, in process)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from soredi_sync.bootstrap import App
from soredi_sync.daemon.leader import Lease
from soredi_sync.daemon.runner import build_daemon
from soredi_sync.observability.metrics import Metrics
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.health import data_age_seconds, data_health, source_health
from tests.support.api import make_client
from tests.support.app import sync_day
from tests.support.observability import scrape, value


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class TestLease:
    def test_one_replica_leads_and_keeps_the_lease_while_it_renews(self, app: App) -> None:
        clock = Clock()
        a = Lease(app.session_factory, holder="a", ttl=10, clock=clock)
        b = Lease(app.session_factory, holder="b", ttl=10, clock=clock)
        assert a.refresh() and not b.refresh()
        for _ in range(5):
            clock.advance(6)  # renewed every 6 s, inside the 10 s lease
            assert a.refresh() and not b.refresh()
        assert a.is_leader and not b.is_leader

    def test_a_replica_takes_over_once_the_leaders_lease_expired(self, app: App) -> None:
        clock = Clock()
        a = Lease(app.session_factory, holder="a", ttl=10, clock=clock)
        b = Lease(app.session_factory, holder="b", ttl=10, clock=clock)
        assert a.refresh()
        clock.advance(9)
        assert not b.refresh()
        clock.advance(2)  # a stopped renewing 11 s ago
        assert not a.is_leader
        assert b.refresh() and b.current_holder() is not None
        assert b.current_holder()[0] == "b"  # type: ignore[index]
        assert not a.refresh()  # the old leader finds it lost the lease

    def test_a_released_lease_is_free_at_once(self, app: App) -> None:
        clock = Clock()
        a = Lease(app.session_factory, holder="a", ttl=60, clock=clock)
        b = Lease(app.session_factory, holder="b", ttl=60, clock=clock)
        changes: list[bool] = []
        a.on_change = changes.append
        assert a.refresh()
        a.release()
        assert a.current_holder() is None and b.refresh()
        assert changes == [True, False]

    def test_a_database_error_makes_the_replica_a_follower(self, app: App) -> None:
        clock = Clock()
        lease = Lease(app.session_factory, holder="a", ttl=60, clock=clock)
        assert lease.refresh()

        def broken() -> Any:
            raise RuntimeError("database gone")

        lease._sessions = broken  # type: ignore[assignment]
        assert not lease.refresh() and not lease.is_leader


def _finish(app: App, source: str, status: RunStatus, error: str | None = None) -> None:
    with app.uow() as uow:
        run_id = uow.runs.start(source, "test", "test")
        uow.runs.finish(run_id, status, error=error)
        uow.commit()


class TestSourceHealth:
    def test_failures_in_a_row_count_until_an_accepted_run_and_degrade_at_the_threshold(
        self, app: App
    ) -> None:
        _finish(app, "sor-filer", RunStatus.FAILED, "old")
        _finish(app, "sor-filer", RunStatus.UNCHANGED)
        _finish(app, "sor-filer", RunStatus.FAILED, "HTTP 503")
        _finish(app, "skrs", RunStatus.SUCCEEDED)  # another source does not count
        _finish(app, "sor-filer", RunStatus.REFUSED, "mass removal")
        with app.uow() as uow:
            two = source_health(uow, "sor-filer", degraded_after=3)
            assert (two.consecutive_failures, two.degraded) == (2, False)
            assert two.last_status == "refused" and two.last_error == "mass removal"
        _finish(app, "sor-filer", RunStatus.FAILED, "HTTP 500")
        with app.uow() as uow:
            three = source_health(uow, "sor-filer", degraded_after=3)
            other = source_health(uow, "skrs", degraded_after=3)
        assert (three.consecutive_failures, three.degraded) == (3, True)
        assert (other.consecutive_failures, other.degraded) == (0, False)
        assert other.last_success_at is not None

    def test_a_source_that_never_ran_is_healthy_and_has_no_success(self, app: App) -> None:
        with app.uow() as uow:
            health = source_health(uow, "sor-filer", degraded_after=1)
        assert health.consecutive_failures == 0 and health.last_success_at is None


class TestSourceGaugesOnEveryReplica:
    def test_a_follower_exports_the_degraded_source_that_the_leaders_runs_recorded(
        self, app: App
    ) -> None:
        leader = build_daemon(app, metrics=Metrics(process_collectors=False))
        follower_metrics = Metrics(process_collectors=False)
        follower = build_daemon(app, metrics=follower_metrics)
        assert leader.lease.refresh() and not follower.lease.refresh()
        for error in ("HTTP 503", "HTTP 503", "ReadTimeout"):
            _finish(app, "sor-filer", RunStatus.FAILED, error)

        text = scrape(follower_metrics)
        assert value(text, "soredi_leader") == 0
        assert value(text, "soredi_source_degraded", source="sor-filer") == 1
        assert value(text, "soredi_source_consecutive_failures", source="sor-filer") == 3
        assert value(text, "soredi_last_success_timestamp_seconds", source="sor-filer") is None

        _finish(app, "sor-filer", RunStatus.SUCCEEDED)
        text = scrape(follower_metrics)
        assert value(text, "soredi_source_degraded", source="sor-filer") == 0
        assert value(text, "soredi_source_consecutive_failures", source="sor-filer") == 0
        success = value(text, "soredi_last_success_timestamp_seconds", source="sor-filer")
        assert success is not None and abs(success - time.time()) < 300

    def test_when_the_database_stops_answering_the_last_values_read_are_shown(
        self, app: App
    ) -> None:
        metrics = Metrics(process_collectors=False)
        build_daemon(app, metrics=metrics)
        for _ in range(3):
            _finish(app, "sor-filer", RunStatus.FAILED, "HTTP 500")
        assert value(scrape(metrics), "soredi_source_degraded", source="sor-filer") == 1

        def gone() -> Any:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

        metrics.set_source_health_reader(gone)
        text = scrape(metrics)
        assert value(text, "soredi_source_degraded", source="sor-filer") == 1
        assert value(text, "soredi_leader") == 0


class TestDataAge:
    def test_no_snapshot_has_no_age(self, app: App) -> None:
        with app.uow() as uow:
            assert data_age_seconds(uow) is None

    def test_an_unchanged_run_confirms_the_data_again(self, app: App, sandbox_dir: Path) -> None:
        sync_day(app, sandbox_dir, 0)
        later = datetime.now(UTC) + timedelta(hours=40)
        with app.uow() as uow:
            assert data_age_seconds(uow, later) == pytest.approx(40 * 3600, abs=60)
            stale = data_health(uow, ("sor-filer",), degraded_after=3, max_age_hours=36, now=later)
        assert not stale.fresh
        sync_day(app, sandbox_dir, 0)  # same files: unchanged, but confirmed now
        with app.uow() as uow:
            run = uow.runs.recent(1)[0]
            assert run.status is RunStatus.UNCHANGED
            assert data_age_seconds(uow, later) == pytest.approx(40 * 3600, abs=60)
            assert (data_age_seconds(uow) or 0) < 60


class TestReadiness:
    def test_ready_with_fresh_data_lists_age_and_sources(self, app: App, sandbox_dir: Path) -> None:
        sync_day(app, sandbox_dir, 0)
        with make_client(app) as client:
            response = client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready" and body["data_age_seconds"] < 60
        assert body["max_data_age_seconds"] == 36 * 3600
        assert [s["source"] for s in body["sources"]] == ["sor-filer"]
        assert body["sources"][0]["degraded"] is False

    def test_stale_data_turns_not_ready_unless_configured_to_only_report_it(
        self, app: App, sandbox_dir: Path
    ) -> None:
        sync_day(app, sandbox_dir, 0)
        with app.uow() as uow:  # pretend the last confirmation was two days ago
            from sqlalchemy import update

            from soredi_sync.db.models import SyncRun

            uow.registry.session.execute(
                update(SyncRun).values(finished_at=datetime.now(UTC) - timedelta(days=2))
            )
            uow.commit()
        with make_client(app) as client:
            stale = client.get("/readyz")
            assert stale.status_code == 503
            problem = stale.json()
            assert problem["type"].endswith("stale-data")
            assert problem["data_age_seconds"] > 47 * 3600
            app.settings.daemon.ready_requires_fresh_data = False
            relaxed = client.get("/readyz")
        assert relaxed.status_code == 200 and relaxed.json()["data_age_seconds"] > 47 * 3600
