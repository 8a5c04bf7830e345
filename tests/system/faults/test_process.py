"""``kill -9`` of a sync in progress, as a real process on the test database.

A killed process cannot record anything: its run stays ``running``, and once its liveness lease
has run out the daemon's leader records it as failed ("abandoned",
``daemon/jobs.py:_close_abandoned_runs``). Whatever
it had written was never committed, so the database rolls it back: the last good snapshot is
untouched, and the next sync stores the day as usual.
"""

from __future__ import annotations

import selectors
import subprocess
import time
from collections.abc import Callable
from typing import IO

from soredi_sync.daemon.jobs import Jobs
from soredi_sync.daemon.leader import Lease
from soredi_sync.ports.records import RunStatus
from tests.support.faults.invariants import LastGood, half_written_rows
from tests.support.faults.paused_sync import WRITTEN
from tests.support.faults.processes import expire_run_leases, kill_9, start_slow_cli_sync
from tests.support.faults.report import Case


def read_line(stream: IO[str], timeout: float, what: str) -> str:
    """The next line of a child's output, or fail after ``timeout`` (the child may hang)."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return stream.readline()


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
        child = spawn(
            "-m", "tests.support.faults.paused_sync", database_url, last_good.files.base_url
        )
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
