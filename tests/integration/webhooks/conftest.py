"""Fixtures for change subscriptions: a loopback receiver, and an App whose webhook settings
allow it (``day0`` of ``tests/fixtures/app.py`` syncs day 0 on this App).

Every test gets a fresh database from ``database_url`` (SQLite, and PostgreSQL when
``TEST_DATABASE_URL`` is set).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soredi_sync.bootstrap import App
from tests.support.receivers import Receiver
from tests.support.webhooks import make_app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    with make_app(database_url) as application:
        yield application
