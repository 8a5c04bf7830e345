"""`soredi-sync serve --workers 2` as an operator runs it: two processes answer on one port,
each on the current snapshot (a sync between two requests is seen by both), a worker that dies
is started again, SIGTERM ends them all, and one scrape of `/metrics` counts the requests of
both."""

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
from soredi_sync.services.tokens import create_token
from tests.support.api import bearer, route_body
from tests.support.app import sync_day
from tests.support.live_server import children as _children
from tests.support.live_server import decisions_by_worker, scraped, serve_process
from tests.support.waiting import wait_until


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    log: Path


@pytest.fixture
def served(database_url: str, tmp_path: Path, app: App, sandbox_dir: Path) -> Iterator[Served]:
    sync_day(app, sandbox_dir, 0)
    log = tmp_path / "serve.log"
    with serve_process(
        database_url,
        log,
        "--workers",
        "2",
        "--no-access-log",
        env={"SOREDI_API__WARM_SECONDS": "0.2"},
    ) as (process, base):
        yield Served(process, base, log)


def _ready(base: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(log.read_text())
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _snapshots_answered(base: str, token: str, gln: str, times: int) -> set[int]:
    """The snapshot ids of ``times`` decisions, each on a connection of its own."""
    found = set()
    for _ in range(times):
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as client:
            answer = client.post("/v1/route", json=route_body(gln))
            assert answer.status_code == 200, answer.text
            found.add(answer.json()["snapshot"]["id"])
    return found


def test_two_workers_answer_on_the_current_snapshot_survive_a_death_and_stop_on_sigterm(
    served: Served, app: App, sandbox_dir: Path
) -> None:
    token = create_token(app.uow, ("route:read",), (), "workers").token
    gln = sorted(app.routing().resolver().index.registry.glns)[0]
    workers = _children(served.process.pid)
    assert len(workers) == 2, served.log.read_text()

    first = app.routing().resolver().index.snapshot.id
    assert _snapshots_answered(served.base, token, gln, 20) == {first}
    sync_day(app, sandbox_dir, 1)
    second = app.routing().resolver().index.snapshot.id
    assert second != first
    assert _snapshots_answered(served.base, token, gln, 20) == {second}

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len(_children(served.process.pid) - {victim}) == 2,
        timeout=30,
        what="the killed worker started again",
    )
    wait_until(lambda: _ready(served.base, served.process, served.log), timeout=30, what="ready")
    assert _snapshots_answered(served.base, token, gln, 20) == {second}

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0, served.log.read_text()
    assert _children(served.process.pid) == set()
    text = served.log.read_text()
    assert "starting it again" in text and "Traceback" not in text, text


def test_one_scrape_counts_the_decisions_every_worker_answered(served: Served, app: App) -> None:
    token = create_token(app.uow, ("route:read",), (), "workers").token
    gln = sorted(app.routing().resolver().index.registry.glns)[0]
    workers = _children(served.process.pid)
    port = urlsplit(served.base).port
    assert len(workers) == 2 and port is not None, served.log.read_text()

    answered = decisions_by_worker(port, token, gln, workers, each=3)
    assert set(answered) == workers, answered

    metrics = httpx.get(f"{served.base}/metrics", timeout=10)
    assert metrics.status_code == 200
    total = sum(len(snapshots) for snapshots in answered.values())
    assert scraped(metrics.text, "soredi_route_decisions_total") == total
    assert scraped(metrics.text, "soredi_http_request_seconds_count", route="/v1/route") == total
