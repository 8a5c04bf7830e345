"""Unit tests touch no database, socket or subprocess (tests/README.md); this conftest makes
that a failure instead of a convention. A test that needs one belongs in tests/integration."""

from __future__ import annotations

import sqlite3
import sqlite3.dbapi2
import subprocess
from typing import Any

import pytest


def _refuse(what: str) -> Any:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test may not {what}; move it to tests/integration")

    return refused


@pytest.fixture(autouse=True)
def no_io(socket_disabled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No socket, not even on loopback (pytest-socket's ``socket_disabled``), no database
    connection and no child process."""
    for module in (sqlite3, sqlite3.dbapi2):  # SQLAlchemy calls the latter's
        monkeypatch.setattr(module, "connect", _refuse("connect to a database"))
    try:
        import psycopg
    except ImportError:
        pass
    else:
        monkeypatch.setattr(psycopg, "connect", _refuse("connect to a database"))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("start a process"))
