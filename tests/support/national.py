"""An empty database on either engine for the slow tests on the national profile (the
sandbox itself is the ``national_sandbox`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from soredi_sync.db.models import Base
from soredi_sync.db.schema import upgrade


def empty_database(engine: str, request: pytest.FixtureRequest, folder: Path) -> str:
    """The URL of an empty, migrated database: a SQLite file in ``folder``, or the session's
    PostgreSQL database (``postgres_url``) with every table emptied."""
    if engine == "sqlite":
        url = f"sqlite:///{folder / 'national.db'}"
        upgrade(url)
        return url
    url: str = request.getfixturevalue("postgres_url")
    upgrade(url)
    database = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    database.dispose()
    return url
