"""The daemon's jobs in process (both engines): leadership, follow-ups, stop, and the wiring."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from soredi_sync.bootstrap import App
from soredi_sync.config import DaemonSettings
from soredi_sync.daemon.jobs import Jobs
from soredi_sync.daemon.leader import Lease
from soredi_sync.daemon.scheduler import build_scheduler
from soredi_sync.db.models import AuditSummary
from soredi_sync.domain.plans import gln_owners
from soredi_sync.ports.records import DecisionEntry, RunStatus
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.decision_log import record_decisions
from soredi_sync.services.plans import create_plan, get_plan, submit_plan
from tests.support.app import current_view
from tests.support.decisions import logged
from tests.support.sandbox import SWITCHED


def _jobs(app: App, files: SandboxServer, *, leader: bool = True, **kwargs: Any) -> Jobs:
    app.settings.sources.base_url = files.base_url
    lease = Lease(app.session_factory, holder="test", ttl=60)
    jobs = Jobs(app, lease, **kwargs)
    if leader:
        jobs.refresh_lease()
        assert lease.is_leader
    return jobs


def _statuses(app: App) -> list[RunStatus]:
    with app.uow() as uow:
        return [run.status for run in reversed(uow.runs.recent(100))]


class TestLeadership:
    def test_a_follower_runs_no_sync(self, app: App, files: SandboxServer) -> None:
        other = Lease(app.session_factory, holder="other", ttl=60)
        assert other.refresh()
        jobs = _jobs(app, files, leader=False)
        jobs.refresh_lease()
        jobs.full_sync()
        assert _statuses(app) == []
        assert jobs.log.events[-1] == ("full sync", "skipped: not the leader")

    def test_becoming_leader_records_runs_left_running_by_a_dead_process(
        self, app: App, files: SandboxServer
    ) -> None:
        with app.uow() as uow:
            uow.runs.start("sor-filer", "dead replica", "schedule")
            uow.commit()
        _jobs(app, files)
        with app.uow() as uow:
            (run,) = uow.runs.recent(1)
        assert run.status is RunStatus.FAILED and "abandoned" in (run.error or "")


class TestAfterASync:
    def test_a_stored_snapshot_is_followed_by_plan_verification_summary_and_webhooks(
        self, app: App, files: SandboxServer
    ) -> None:
        delivered: list[App] = []
        observed: list[tuple[str, Any]] = []
        jobs = _jobs(
            app,
            files,
            webhook_enqueue=delivered.append,
            observe=lambda source, outcome, health: observed.append(
                (source, outcome.status, health.consecutive_failures)
            ),
        )
        jobs.full_sync()
        owners = sorted({gln_owners(current_view(app))[g].sor_id for g in SWITCHED})
        with app.uow() as uow:
            plan = create_plan(
                uow, app.reference.audit_context, actor="t", owners=owners,
                switch_to="carecommunication",
            )  # fmt: skip
            submit_plan(uow, plan.id, "worklist", actor="t")
        files.set_day(1)
        jobs.full_sync()
        assert _statuses(app) == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
        with app.uow() as uow:
            verified = get_plan(uow, plan.id)
        assert {item.state.value for item in verified.items} <= {"confirmed", "pending"}
        assert any(item.state.value == "confirmed" for item in verified.items)
        with app.uow() as uow:
            summaries = uow.session.scalar(select(func.count()).select_from(AuditSummary))
        assert summaries == 2
        assert delivered == [app, app]
        assert observed == [("sor-filer", RunStatus.SUCCEEDED, 0)] * 2

    def test_an_unchanged_source_has_no_follow_ups(self, app: App, files: SandboxServer) -> None:
        delivered: list[App] = []
        jobs = _jobs(app, files, webhook_enqueue=delivered.append)
        jobs.full_sync()
        jobs.full_sync()
        assert _statuses(app) == [RunStatus.SUCCEEDED, RunStatus.UNCHANGED]
        assert len(delivered) == 1

    def test_a_failing_follow_up_is_logged_and_the_others_still_run(
        self, app: App, files: SandboxServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        delivered: list[App] = []

        def broken(_app: App) -> None:
            raise RuntimeError("follow-up exploded")

        jobs = _jobs(app, files, after_sync=(broken,), webhook_enqueue=delivered.append)
        with caplog.at_level(logging.ERROR):
            jobs.full_sync()
        assert _statuses(app) == [RunStatus.SUCCEEDED]
        assert "follow-up exploded" in caplog.text and delivered == [app]

    def test_repeated_failures_mark_the_source_degraded_in_the_log(
        self, app: App, files: SandboxServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        app.settings.retry.attempts = 1
        app.settings.daemon.degraded_after_failures = 2
        jobs = _jobs(app, files)
        files.inject("/sor.zip", status=500, times=2)
        with caplog.at_level(logging.ERROR):
            jobs.full_sync()
            assert "degraded" not in caplog.text
            jobs.full_sync()
        assert _statuses(app) == [RunStatus.FAILED, RunStatus.FAILED]
        assert "Source sor-filer is degraded: 2 failed runs in a row" in caplog.text


class TestStop:
    def test_a_stop_request_interrupts_the_sync_and_stores_nothing(
        self, app: App, files: SandboxServer
    ) -> None:
        jobs = _jobs(app, files)
        stages: list[str] = []
        original = jobs._check_stop

        def stop_at_parse(*args: object) -> None:
            if args and args[0] == "parse and validate":
                jobs.request_stop()
            stages.append(str(args[0]) if args else "")
            original(*args)

        jobs._check_stop = stop_at_parse  # type: ignore[method-assign]
        jobs.full_sync()
        with app.uow() as uow:
            (run,) = uow.runs.recent(1)
            assert uow.registry.current_snapshot() is None
        assert run.status is RunStatus.FAILED and "interrupted by shutdown" in (run.error or "")
        jobs.full_sync()  # once stopping, no new sync starts
        assert _statuses(app) == [RunStatus.FAILED]

    def test_a_sync_stored_while_the_daemon_stops_does_not_wake_the_webhook_job(
        self, app: App, files: SandboxServer
    ) -> None:
        # Waking it would add a job while the scheduler's shutdown holds its job-store lock
        # waiting for this very job: both would wait until the grace time ran out.
        woken: list[int] = []

        def stop_during_follow_up(_app: App) -> None:
            jobs.request_stop()

        jobs = _jobs(app, files, webhooks=lambda _app: None, after_sync=(stop_during_follow_up,))
        jobs.on_webhooks_wanted = lambda: woken.append(1)
        jobs.full_sync()
        assert _statuses(app) == [RunStatus.SUCCEEDED]
        assert woken == []


class TestWiring:
    def test_the_default_schedule_is_daily_at_05_15_copenhagen_and_jobs_never_overlap(
        self, app: App, files: SandboxServer
    ) -> None:
        jobs = _jobs(app, files, leader=False)
        scheduler = build_scheduler(jobs, DaemonSettings())
        by_id = {job.id: job for job in scheduler.get_jobs()}
        assert set(by_id) == {"lease", "full-sync", "decision-retention", "traffic", "webhooks"}
        zone = ZoneInfo("Europe/Copenhagen")
        counted = by_id["traffic"].trigger.get_next_fire_time(
            None, datetime(2026, 11, 26, 6, 8, tzinfo=zone)
        )
        assert counted == datetime(2026, 11, 26, 7, 7, tzinfo=zone)  # hourly
        fire = by_id["full-sync"].trigger.get_next_fire_time(
            None, datetime(2026, 11, 26, 6, 0, tzinfo=zone)
        )
        assert fire == datetime(2026, 11, 27, 5, 15, tzinfo=zone)
        summer = by_id["full-sync"].trigger.get_next_fire_time(
            None, datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
        )
        assert summer.astimezone(zone).hour == 5 and summer.utcoffset().total_seconds() == 7200
        scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
        try:
            for job in scheduler.get_jobs():
                assert job.max_instances == 1 and job.coalesce is True
                assert job.misfire_grace_time == 3600
        finally:
            scheduler.shutdown(wait=False)

    def test_the_incremental_pull_is_scheduled_only_where_configured(
        self, app: App, files: SandboxServer
    ) -> None:
        jobs = _jobs(app, files, leader=False)
        settings = DaemonSettings(incremental_interval_seconds=900)
        ids = {job.id for job in build_scheduler(jobs, settings).get_jobs()}
        assert "incremental-sync" in ids

    def test_a_malformed_cron_line_is_refused(self, app: App, files: SandboxServer) -> None:
        jobs = _jobs(app, files, leader=False)
        with pytest.raises(ValueError):
            build_scheduler(jobs, DaemonSettings(full_sync_cron="every morning"))


class TestTrafficCounts:
    def test_the_leader_counts_the_log_and_counts_it_before_the_retention_purges_it(
        self, app: App, files: SandboxServer
    ) -> None:
        follower = _jobs(app, files, leader=False)
        old = datetime.now(UTC) - timedelta(days=400)  # past any retention
        record_decisions(app.uow, [_rejected(old), _rejected(old), _rejected(datetime.now(UTC))])
        other = Lease(app.session_factory, holder="other", ttl=60)
        assert other.refresh()
        follower.refresh_lease()
        follower.count_traffic()
        assert _traffic(app) == 0  # not the leader
        other.release()
        leader = _jobs(app, files)
        leader.purge_decisions()
        with app.uow() as uow:
            assert len(uow.decisions.since(old - timedelta(days=1))) == 1  # today's is kept
        assert _traffic(app) == 3  # the purged two were counted first


def _rejected(decided_at: datetime) -> DecisionEntry:
    return logged(decided_at, outcome="reject", reason="RECEIVER_CLOSED", address_gln=None)


def _traffic(app: App) -> int:
    with app.uow() as uow:
        counts = uow.traffic.counts(date(2000, 1, 1), date(2100, 1, 1))
    return sum(c.messages for c in counts)
