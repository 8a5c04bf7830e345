"""Syncs as real processes for the fault suite: started from the checkout (the fixture ``spawn``
of ``tests/system/faults``), killed with SIGKILL, their liveness leases run out by hand."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from soredi_sync.bootstrap import App
from soredi_sync.db.models import LeaderLease
from soredi_sync.ports.records import SyncRunInfo
from tests.support.faults.invariants import LastGood
from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_until

# The children run in the checkout, so that ``python -m tests...`` finds this package.
PROJECT_ROOT = REPO_ROOT


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
