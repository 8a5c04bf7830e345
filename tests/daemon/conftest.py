"""Fixtures for the daemon: the HTTP sandbox on loopback, and `soredi-sync run` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from soredi_sync.db.models import LeaderLease, Snapshot, SyncRun
from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.server import SandboxServer
from tests.integration.conftest import app, manifest, sandbox_dir  # noqa: F401


@pytest.fixture
def files(sandbox_dir: Path) -> Iterator[SandboxServer]:  # noqa: F811
    with SandboxServer(sandbox_dir) as server:
        yield server


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Db:
    """Reads the daemon's database from the test process (its own engine)."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        self.engine = create_engine(url)

    def runs(self) -> list[tuple[int, RunStatus, str | None, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(SyncRun.id, SyncRun.status, SyncRun.error, SyncRun.trigger).order_by(
                    SyncRun.id
                )
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def snapshots(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.scalars(select(Snapshot.id).order_by(Snapshot.id)))

    def lease(self) -> tuple[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(LeaderLease.holder, LeaderLease.expires_at).where(LeaderLease.name == "sync")
            ).first()
        return (row[0], row[1]) if row else None

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    reader = Db(database_url)
    yield reader
    reader.close()


class Daemon:
    """One `soredi-sync run` process; stderr goes to a file the test can read."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


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


@pytest.fixture
def postgres_database_url(request: pytest.FixtureRequest) -> str:
    """The session's PostgreSQL database, emptied (several replicas need a shared server)."""
    from tests.conftest import _truncate_postgres

    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url
