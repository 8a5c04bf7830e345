"""``kill -9`` of a sync in progress, as a real process on the test database.

A killed process cannot record anything: its run stays ``running``, and once its liveness lease
has run out the daemon's leader records it as failed ("abandoned",
``daemon/jobs.py:_close_abandoned_runs``). Whatever
it had written was never committed, so the database rolls it back: the last good snapshot is
untouched, and the next sync stores the day as usual.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import update

from soredi_sync.bootstrap import App
from soredi_sync.daemon.jobs import Jobs
from soredi_sync.daemon.leader import Lease
from soredi_sync.db.models import LeaderLease
from soredi_sync.ports.records import RunStatus, SyncRunInfo
from tests.daemon.conftest import wait_until
from tests.faults.invariants import LastGood, half_written_rows
from tests.faults.paused_sync import WRITTEN
from tests.faults.report import Case

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def read_line(stream: IO[str], timeout: float, what: str) -> str:
    """The next line of a child's output, or fail after ``timeout`` (the child may hang)."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return stream.readline()


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a Python child in the project root without the caller's SOREDI_* settings; every
    child still alive at the end is killed."""
    children: list[subprocess.Popen[str]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOREDI_")}

    def start(*args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def start_slow_cli_sync(
    last_good: LastGood,
    database_url: str,
    spawn: Callable[..., subprocess.Popen[str]],
    delay: float,
) -> tuple[subprocess.Popen[str], SyncRunInfo]:
    """``soredi-sync sync --base-url …`` as a process whose sor.zip answers after ``delay``
    seconds; returns once its run is recorded."""
    last_good.files.inject("sor.zip", delay=delay)
    child = spawn(
        "-m",
        "soredi_sync",
        "--database-url",
        database_url,
        "sync",
        "--base-url",
        last_good.files.base_url,
    )
    run = wait_until(
        lambda: (r := last_good.newest_run()).id > last_good.snapshot.run_id and r,
        30,
        "the sync to start",
    )
    return child, run


def kill_9(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL


def expire_run_leases(app: App) -> None:
    """Time passing for a killed sync: its liveness lease (``run:<id>``), no longer renewed,
    runs out. Moved into the past here instead of waiting ``RUN_LEASE_SECONDS``."""
    with app.uow() as uow:
        uow.session.execute(
            update(LeaderLease)
            .where(LeaderLease.name.startswith("run:"))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        uow.commit()


def next_leader_takes_over(last_good: LastGood) -> None:
    """What a replica does when it takes the lease: close the runs a dead process left open,
    once their liveness leases have run out."""
    expire_run_leases(last_good.app)
    jobs = Jobs(last_good.app, Lease(last_good.app.session_factory, holder="next-leader", ttl=60))
    jobs.refresh_lease()
    assert jobs.lease.is_leader
    jobs.lease.release()


class TestKilledSync:
    def test_sigkill_during_the_download_leaves_the_snapshot_and_the_next_leader_closes_the_run(
        self,
        last_good: LastGood,
        database_url: str,
        spawn: Callable[..., subprocess.Popen[str]],
    ) -> None:
        case = Case(
            "kill -9 during the download",
            "`soredi-sync sync --base-url …` as a process; sor.zip answers after 30 s; "
            "SIGKILL once the run is recorded",
        )
        child, run = start_slow_cli_sync(last_good, database_url, spawn, delay=30)
        time.sleep(0.3)  # well inside the 30 s download
        kill_9(child)
        assert last_good.newest_run().status is RunStatus.RUNNING
        last_good.assert_snapshot_intact()
        last_good.assert_served()
        next_leader_takes_over(last_good)
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "abandoned",
            run_id=run.id,
            did="the run stayed `running` until the next leader recorded it as failed; "
            "day 0 kept and served; the next sync stored day 1",
        )
        last_good.files.clear_faults()
        last_good.assert_recovers()

    def test_sigkill_with_the_new_snapshot_written_but_uncommitted_rolls_all_of_it_back(
        self,
        last_good: LastGood,
        database_url: str,
        spawn: Callable[..., subprocess.Popen[str]],
    ) -> None:
        case = Case(
            "kill -9 while storing",
            "a sync process stopped inside its write transaction (day 1's snapshot, versions, "
            "change events and the run's success flushed, not committed); SIGKILL",
        )
        child = spawn("-m", "tests.faults.paused_sync", database_url, last_good.files.base_url)
        assert child.stdout is not None
        line = read_line(child.stdout, 60, "the writer to flush day 1")
        assert line.startswith(WRITTEN), line + child.stdout.read()
        seen = dict(item.split("=") for item in line.split()[1:])
        # The writer's own transaction held one more snapshot than the database shows.
        assert int(seen["snapshots"]) == last_good.before["snapshots"][0] + 1
        assert int(seen["changes"]) > 0
        run = last_good.newest_run()
        last_good.assert_served()  # readers never see the uncommitted snapshot
        kill_9(child)
        assert last_good.newest_run().status is RunStatus.RUNNING
        assert half_written_rows(last_good.app, last_good.snapshot.id) == []
        next_leader_takes_over(last_good)
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "abandoned",
            run_id=run.id,
            did=f"the killed transaction, which held day 1's snapshot and its {seen['changes']} "
            "change events, was rolled back; the run stayed `running` until the next leader "
            "recorded it as failed; day 0 kept and served; the next sync stored day 1",
        )
        last_good.assert_recovers()
