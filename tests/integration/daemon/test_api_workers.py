"""`[api] workers` in the daemon: one serves the API in the daemon's own process, more than one
through forked workers (`daemon/api_workers.py`). A worker's `/readyz` follows the daemon's
state, which the daemon shares with its workers in memory rather than through its objects."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from soredi_sync.api.app import create_app
from soredi_sync.bootstrap import App
from soredi_sync.config import ApiSettings
from soredi_sync.daemon import api_workers, runner
from soredi_sync.daemon.api_workers import RUNNING, STOPPING, DaemonState
from soredi_sync.observability.metrics import Metrics
from tests.support.api import assert_problem


@pytest.mark.parametrize("workers", [1, 3])
def test_the_daemon_serves_its_api_in_its_own_process_only_with_one_worker(
    app: App, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    served_here: list[int] = []
    forked: list[int] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: served_here.append(1))

    def run_with_workers(_app: App, api: ApiSettings, *_a: Any, **_k: Any) -> int:
        forked.append(api.workers)
        return 0

    monkeypatch.setattr(api_workers, "run_with_workers", run_with_workers)
    code = runner.run(
        app, api=ApiSettings(port=0, workers=workers), metrics=Metrics(process_collectors=False)
    )
    assert code == 0
    assert (served_here, forked) == (([1], []) if workers == 1 else ([], [3]))


def test_a_workers_readiness_follows_the_daemon_state_it_shares(day0: App) -> None:
    state = DaemonState()
    api = create_app(day0, metrics=Metrics(process_collectors=False))
    api.state.daemon_readiness = state.not_ready
    with TestClient(api) as client:
        starting = client.get("/readyz")
        state.set(RUNNING)
        running = client.get("/readyz")
        state.set(STOPPING)
        stopping = client.get("/readyz")
    assert "starting" in assert_problem(starting, 503, "daemon-not-running")["detail"]
    assert running.status_code == 200, running.text
    assert running.json()["status"] == "ready"
    assert "stopping" in assert_problem(stopping, 503, "daemon-not-running")["detail"]


def test_a_process_forked_before_the_daemon_runs_sees_it_run() -> None:
    state = DaemonState()
    from_parent, to_child = os.pipe()
    from_child, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait for the parent's word, then report what it reads
        try:
            os.read(from_parent, 1)
            os.write(to_parent, b"ready" if state.not_ready() is None else b"not ready")
        finally:
            os._exit(0)
    try:
        state.set(RUNNING)  # after the fork, as the daemon does once its scheduler runs
        os.write(to_child, b"x")
        seen = os.read(from_child, 16)
    finally:
        os.waitpid(pid, 0)
        for fd in (to_child, from_parent, from_child, to_parent):
            os.close(fd)
    assert seen == b"ready"


def test_the_daemons_own_api_is_unready_once_the_daemon_stops(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, *a, **k: seen.update(c=server.config))
    daemon = runner.build_daemon(app, metrics=Metrics(process_collectors=False))
    runner._serve_api(daemon, ApiSettings(port=0), None, None, False)
    readiness = seen["c"].app.state.daemon_readiness
    assert readiness() is None
    daemon.stop()
    assert readiness() == "the daemon is stopping"


def test_a_daemon_whose_api_port_is_taken_exits_1_before_forking_or_scheduling(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with caplog.at_level(logging.INFO):
            code = runner.run(app, api=ApiSettings(host="127.0.0.1", port=port, workers=2))
    assert code == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in caplog.text
    assert "Scheduled:" not in caplog.text and "Serving with" not in caplog.text
