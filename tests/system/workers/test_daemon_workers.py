"""`soredi-sync run --workers 2` as an operator runs it against the loopback sandbox: the
scheduler syncs in the daemon while two forked workers answer the API, every answer on the
current snapshot across a scheduled sync; one scrape shows the requests of both workers and
the syncs of the daemon; a dead worker is started again; SIGTERM stops the scheduler and every
worker, and a daemon killed outright leaves no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from soredi_sync.bootstrap import App
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.tokens import create_token
from tests.support.daemon import FAST, Db
from tests.support.live_server import (
    alive,
    answers_by_worker,
    children,
    decisions_by_worker,
    scraped,
    serve_process,
)
from tests.support.waiting import wait_until


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def supervisor(self) -> int:
        (pid,) = children(self.process.pid)
        return pid

    def workers(self) -> set[int]:
        return children(self.supervisor())


@pytest.fixture
def running(database_url: str, files: SandboxServer, tmp_path: Path) -> Iterator[Running]:
    env = {f"SOREDI_{k}": v for k, v in FAST.items()}
    env |= {
        "SOREDI_SOURCES__BASE_URL": files.base_url,
        "SOREDI_RETRY__ATTEMPTS": "1",
        "SOREDI_API__WARM_SECONDS": "0.2",
    }
    log = tmp_path / "run.log"
    daemon = serve_process(database_url, log, "--workers", "2", env=env, command_name="run")
    with daemon as (process, base):
        port = urlsplit(base).port
        assert port is not None
        yield Running(process, base, port, log)


def _ready_everywhere(running: Running, times: int = 10) -> bool:
    """``/readyz`` answered 200 ``times`` in a row, each on a connection of its own."""
    for _ in range(times):
        try:
            if httpx.get(f"{running.base}/readyz", timeout=5).status_code != 200:
                return False
        except httpx.TransportError:
            return False
    return True


def test_two_workers_answer_on_the_current_snapshot_across_a_scheduled_sync_and_stop_on_sigterm(
    running: Running, files: SandboxServer, db: Db, app: App
) -> None:
    wait_until(lambda: db.snapshots(), 60, "the first scheduled sync")
    wait_until(lambda: _ready_everywhere(running), 60, "the workers ready")
    supervisor, workers = running.supervisor(), running.workers()
    assert len(workers) == 2, running.output()
    readiness = answers_by_worker(running.port, workers, "GET", "/readyz", each=2)
    assert set(readiness) == workers
    assert {status for answers in readiness.values() for status, _body in answers} == {200}
    token = create_token(app.uow, ("route:read",), (), "workers").token
    gln = sorted(app.routing().resolver().index.registry.glns)[0]

    (first,) = db.snapshots()
    answered = decisions_by_worker(running.port, token, gln, workers, each=3)
    assert set(answered) == workers
    assert {s for snapshots in answered.values() for s in snapshots} == {first}

    files.set_day(1)
    wait_until(lambda: len(db.snapshots()) == 2, 60, "the scheduled sync of day 1")
    second = db.snapshots()[-1]
    later = decisions_by_worker(running.port, token, gln, workers, each=3)
    assert set(later) == workers
    assert {s for snapshots in later.values() for s in snapshots} == {second}

    # One scrape: the decisions of both workers, the syncs the daemon ran, the daemon leads.
    text = httpx.get(f"{running.base}/metrics", timeout=10).text
    decided = sum(len(s) for s in answered.values()) + sum(len(s) for s in later.values())
    assert scraped(text, "soredi_route_decisions_total") == decided
    assert scraped(text, "soredi_sync_runs_total", status="succeeded") == 2
    assert scraped(text, "soredi_leader") == 1

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len(running.workers() - {victim}) == 2, 30, "the killed worker started again"
    )
    replaced = running.workers()
    again = decisions_by_worker(running.port, token, gln, replaced, each=1)
    assert {s for snapshots in again.values() for s in snapshots} == {second}

    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(60) == 0, running.output()
    assert not [pid for pid in {supervisor, *workers, *replaced} if alive(pid)]
    assert db.lease() is None  # released: another replica may lead at once
    out = running.output()
    assert "starting it again" in out and "Stopped" in out, out
    assert "Traceback" not in out and "other threads run" not in out, out


def test_a_daemon_killed_outright_leaves_no_worker_serving(running: Running) -> None:
    supervisor, workers = running.supervisor(), running.workers()
    assert len(workers) == 2, running.output()

    running.process.send_signal(signal.SIGKILL)
    running.process.wait(30)
    wait_until(
        lambda: not [pid for pid in {supervisor, *workers} if alive(pid)],
        30,
        "the supervisor and the workers to end",
    )
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{running.base}/healthz", timeout=5)


def test_a_daemon_whose_api_supervisor_dies_stops_with_1_and_no_worker_left(
    running: Running, db: Db
) -> None:
    supervisor, workers = running.supervisor(), running.workers()
    assert len(workers) == 2, running.output()

    os.kill(supervisor, signal.SIGKILL)
    assert running.process.wait(60) == 1, running.output()
    wait_until(
        lambda: not [pid for pid in workers if alive(pid)], 30, "the orphaned workers to end"
    )
    assert db.lease() is None  # the scheduler stopped as on SIGTERM
    out = running.output()
    assert "supervisor ended" in out and "Stopped" in out, out
