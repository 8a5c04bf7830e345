"""An empty database on either engine for a test module that fills its own (the slow tests on
the national profile, whose sandbox is the ``national_sandbox`` fixture, and the browser's plan
tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.database import truncate_postgres


def empty_database(engine: str, request: pytest.FixtureRequest, folder: Path) -> str:
    """The URL of an empty, migrated database: a SQLite file in ``folder``, or the session's
    PostgreSQL database (``postgres_url``) with every table emptied."""
    if engine == "sqlite":
        path = folder / "empty.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    truncate_postgres(url)
    return url
