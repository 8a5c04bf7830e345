"""The SQLite engine as several processes meet it: a new database opened by two at once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from sqlalchemy import text

from soredi_sync.db.engine import make_engine


def _open_at(path: str, start: float) -> str:
    """Open the database at ``start`` (wall clock) and read from it; the error, if any."""
    while time.time() < start:
        pass
    engine = make_engine(f"sqlite:///{path}", null_pool=True)
    try:
        with engine.connect() as conn:
            mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
            conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar_one()
        return str(mode)
    except Exception as exc:  # noqa: BLE001 - the test wants to see any failure
        return repr(exc)
    finally:
        engine.dispose()


def test_two_processes_opening_a_new_database_at_once_both_get_it_in_wal_mode(
    tmp_path: Path,
) -> None:
    # SQLite answers the switch to WAL with "database is locked" at once (no busy handler)
    # when another connection is switching it too; without the engine's retry, about every
    # other pair below had one process fail.
    context = multiprocessing.get_context("spawn")
    answers = []
    with context.Pool(2) as pool:
        for attempt in range(20):
            start = time.time() + 0.1
            path = str(tmp_path / f"new-{attempt}.db")
            answers.append(pool.starmap(_open_at, [(path, start), (path, start)]))
    assert all(answer == ["wal", "wal"] for answer in answers), [
        answer for answer in answers if answer != ["wal", "wal"]
    ]
