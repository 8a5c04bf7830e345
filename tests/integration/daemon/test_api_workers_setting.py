"""``[api] workers`` is `serve`'s: the daemon serves its API in one process and says so when
the setting asks for more, instead of ignoring it silently."""

from __future__ import annotations

import logging

import pytest
import uvicorn

from soredi_sync.bootstrap import App
from soredi_sync.config import ApiSettings
from soredi_sync.daemon import runner
from soredi_sync.observability.metrics import Metrics


@pytest.mark.parametrize("workers", [1, 3])
def test_the_daemon_says_its_api_runs_in_one_process_when_more_workers_are_set(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    served: list[int] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: served.append(1))
    metrics = Metrics(process_collectors=False)
    daemon = runner.build_daemon(app, metrics=metrics)
    with caplog.at_level(logging.WARNING, logger=runner.__name__):
        runner._serve_api(daemon, ApiSettings(port=0, workers=workers), None, metrics, False)
    assert served == [1]  # one server, in this process
    warned = [r for r in caplog.records if "is for `soredi-sync serve`" in r.getMessage()]
    assert len(warned) == (1 if workers > 1 else 0)
