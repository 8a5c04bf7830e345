"""Fixtures for the daemon: the HTTP sandbox on loopback, and `soredi-sync run` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.daemon import Daemon


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(database_url: str, *args: str, **env: str) -> Daemon:
        log = tmp_path / f"daemon-{len(started)}.log"
        environment = {
            **os.environ,
            "SOREDI_DATABASE_URL": database_url,
            "SOREDI_RETRY__ATTEMPTS": "1",
            **{f"SOREDI_{k.upper()}": v for k, v in env.items()},
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "soredi_sync", "run", *args],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        daemon = Daemon(process, log)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()
