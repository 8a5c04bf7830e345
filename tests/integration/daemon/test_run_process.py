"""`soredi-sync run` as a real process against the loopback sandbox (both engines).

Short intervals stand in for the daily schedule: the full pull every second, the lease a few
seconds. Signals are real (SIGTERM, SIGKILL).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.server import SandboxServer
from tests.support.daemon import FAST, Daemon, Db
from tests.support.waiting import wait_until


def _succeeded(db: Db) -> list[int]:
    return [run_id for run_id, status, _e, _t in db.runs() if status is RunStatus.SUCCEEDED]


class TestSchedule:
    def test_it_syncs_on_schedule_picks_up_the_next_day_and_stops_cleanly_on_sigterm(
        self,
        database_url: str,
        files: SandboxServer,
        db: Db,
        start_daemon: Callable[..., Daemon],
    ) -> None:
        daemon = start_daemon(database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **FAST)
        wait_until(lambda: _succeeded(db), 30, "the first scheduled sync")
        assert all(trigger == "schedule" for _i, _s, _e, trigger in db.runs())
        wait_until(lambda: len(db.runs()) >= 3, 30, "more scheduled runs (unchanged)")
        files.set_day(1)
        wait_until(lambda: len(_succeeded(db)) == 2, 30, "the sync of day 1")
        holder = db.lease()
        assert holder is not None and f":{daemon.pid}:" in holder[0]

        assert daemon.stop(signal.SIGTERM) == 0
        assert db.lease() is None  # released: another replica may lead at once
        assert RunStatus.RUNNING not in {status for _i, status, _e, _t in db.runs()}
        out = daemon.output()
        assert "now leads" in out and "Stopped" in out
        assert "Traceback" not in out


class TestGracefulShutdown:
    def test_sigterm_during_a_download_stores_nothing_and_the_next_start_syncs(
        self,
        database_url: str,
        files: SandboxServer,
        db: Db,
        start_daemon: Callable[..., Daemon],
    ) -> None:
        files.inject("/sor.zip", delay=3.0)
        daemon = start_daemon(database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **FAST)
        wait_until(lambda: "started from" in daemon.output(), 30, "the sync to start")
        assert daemon.stop(signal.SIGTERM) == 0
        runs = db.runs()
        assert [status for _i, status, _e, _t in runs] == [RunStatus.FAILED]
        assert "interrupted by shutdown" in (runs[0][2] or "")
        assert db.snapshots() == []

        again = start_daemon(database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **FAST)
        wait_until(lambda: _succeeded(db), 30, "a sync after the restart")
        assert len(db.snapshots()) == 1
        assert again.stop(signal.SIGTERM) == 0

    def test_a_sync_stuck_past_the_grace_time_is_abandoned_and_recorded_by_the_next_leader(
        self,
        database_url: str,
        files: SandboxServer,
        db: Db,
        start_daemon: Callable[..., Daemon],
    ) -> None:
        files.inject("/sor.zip", delay=30.0)
        env = {**FAST, "DAEMON__SHUTDOWN_GRACE_SECONDS": "0.5"}
        daemon = start_daemon(database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **env)
        wait_until(lambda: "started from" in daemon.output(), 30, "the sync to start")
        assert daemon.stop(signal.SIGTERM) == 0
        assert [status for _i, status, _e, _t in db.runs()] == [RunStatus.RUNNING]
        assert db.snapshots() == []
        assert "still running" in daemon.output()

        files.clear_faults()
        again = start_daemon(database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **FAST)
        wait_until(lambda: _succeeded(db), 30, "a sync after the restart")
        first = db.runs()[0]
        assert first[1] is RunStatus.FAILED and "abandoned" in (first[2] or "")
        assert again.stop(signal.SIGTERM) == 0


@pytest.mark.external_service
class TestFailover:
    def test_when_the_leader_is_killed_another_replica_takes_over_within_the_lease(
        self,
        postgres_database_url: str,
        files: SandboxServer,
        start_daemon: Callable[..., Daemon],
    ) -> None:
        import time

        db = Db(postgres_database_url)
        try:
            env = {**FAST, "DAEMON__LEASE_SECONDS": "2"}
            first = start_daemon(
                postgres_database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **env
            )
            second = start_daemon(
                postgres_database_url, "--no-api", SOURCES__BASE_URL=files.base_url, **env
            )
            wait_until(lambda: _succeeded(db), 30, "the leader's first sync")
            holder = wait_until(db.lease, 10, "a lease holder")[0]
            leader, follower = (first, second) if f":{first.pid}:" in holder else (second, first)
            assert f":{leader.pid}:" in holder
            assert "now leads" not in follower.output()

            leader.process.send_signal(signal.SIGKILL)
            leader.process.wait(timeout=10)
            killed_at = time.monotonic()
            files.set_day(1)
            wait_until(
                lambda: (lease := db.lease()) and f":{follower.pid}:" in lease[0],
                15,
                "the follower to take the lease",
            )
            wait_until(lambda: len(_succeeded(db)) == 2, 15, "the new leader's sync of day 1")
            took = time.monotonic() - killed_at
            # lease 2 s + one refresh interval + one sync interval, with room for a slow CI
            assert took < 10, took
            assert "now leads" in follower.output()
            assert follower.stop(signal.SIGTERM) == 0
        finally:
            db.close()
