"""The fixtures of ``tests/api`` (a fresh database per test, SQLite and PostgreSQL, with day 0
and day 1 of the tiny sandbox synced), for the fuzz tests."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401
    synced_app,
    synced_postgres_template,
    synced_sqlite_template,
)
from tests.integration.conftest import sandbox_dir  # noqa: F401
