"""`soredi-sync run` as a process (:class:`Daemon`, started by the fixture ``start_daemon`` of
``tests/integration/daemon``), and its database read from the test process (:class:`Db`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from soredi_sync.db.models import LeaderLease, Snapshot, SyncRun
from soredi_sync.ports.records import RunStatus

# Short intervals stand in for the daily schedule: the full pull every second, the lease a few
# seconds (``SOREDI_`` environment variables of a daemon, without the prefix).
FAST = {
    "DAEMON__FULL_SYNC_INTERVAL_SECONDS": "1",
    "DAEMON__LEASE_SECONDS": "3",
    "DAEMON__SHUTDOWN_GRACE_SECONDS": "20",
}


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
