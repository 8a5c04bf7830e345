"""Fixtures of the browser tests: the API and console served on a loopback port over a synced
sandbox (days 0 and 1, once per module and engine), its tokens, and headless Chromium.

- ``console``: the server, an operator token (every scope), a regional auditor's token
  (registry:read, audit:read, route:read, restricted to one region), a token of route:read
  alone, and the two regions;
- ``browser``: a fresh Chromium tab (no cookies, 1280 x 900) that saves every page it loads as a
  PNG under ``SOREDI_SCREENSHOTS`` (default: a temporary folder, printed at the end of the run);
- ``signed_in(token)``: the same, signed in with ``token`` through /ui/login.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from sqlalchemy import create_engine, text

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import bootstrap
from soredi_sync.db.models import Base
from soredi_sync.observability.metrics import Metrics
from soredi_sync.services.tokens import Scope, create_token
from tests.fixtures.app import restore_synced
from tests.support.api import QUIET_LOG, api_uow
from tests.support.app import make_settings
from tests.support.browser import (
    NARROW,
    SCREENSHOTS_ENV,
    WIDE,
    Browser,
    Console,
    axe_source,
    start_chromium,
    two_regions,
)
from tests.support.live_server import uvicorn_in_thread

AUDITOR_SCOPES = (Scope.REGISTRY_READ, Scope.AUDIT_READ, Scope.ROUTE_READ)


def _database(engine: str, request: pytest.FixtureRequest, folder: Path) -> str:
    """A database holding the session's synced days 0 and 1, for this module alone."""
    if engine == "sqlite":
        url = f"sqlite:///{folder / 'console.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        database = create_engine(url)
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with database.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        database.dispose()
    restore_synced(url, request)
    return url


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external_service)],
)
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """The API and the console on a loopback port over the synced sandbox, with two tokens."""
    engine: str = request.param
    url = _database(engine, request, tmp_path_factory.mktemp("console"))
    with bootstrap(make_settings(url)) as app:
        operator = create_token(api_uow(app), list(Scope), (), "browser operator").token
        world = two_regions(app)
        auditor = create_token(
            api_uow(app), AUDITOR_SCOPES, (world.owner_in,), "browser regional auditor"
        ).token
        with app.uow() as uow:
            snapshots = sorted(uow.registry.list_snapshots(), key=lambda s: s.id)
        days = tuple(s.effective_date for s in snapshots)
        router = create_token(api_uow(app), (Scope.ROUTE_READ,), (), "browser router").token
        asgi = create_app(app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
        with uvicorn_in_thread(asgi) as (host, port):
            yield Console(
                f"http://{host}:{port}", engine, operator, auditor, router, world, days, url
            )


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the whole run."""
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def axe() -> str:
    """The source of axe.min.js (``npm ci`` into tests/system/browser/node_modules once)."""
    return axe_source()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the PNGs go: ``SOREDI_SCREENSHOTS`` (by default a new folder in the system's
    temporary folder, chosen for the run by ``tests/fixtures/run_outputs.py``)."""
    folder = Path(os.environ[SCREENSHOTS_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(
    chromium: webdriver.Chrome,
    console: Console,
    screenshots: Path,
    axe: str,
    request: pytest.FixtureRequest,
) -> Iterator[Browser]:
    """A fresh tab state on ``console``: no cookies, 1280 x 900."""
    chromium.set_window_size(*WIDE)
    chromium.get(console.url("/ui/static/console.css"))  # a page of the console's origin
    chromium.delete_all_cookies()
    name = request.node.name.replace(console.engine, "")  # the folder says the engine
    test = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    folder = screenshots / console.engine
    folder.mkdir(exist_ok=True)
    yield Browser(chromium, console, folder, test, axe)
    chromium.delete_all_cookies()
    chromium.set_window_size(*WIDE)


@pytest.fixture
def signed_in(browser: Browser) -> Callable[[str], Browser]:
    """``signed_in(token)``: the browser, signed in with ``token``."""
    return browser.sign_in


@pytest.fixture
def narrow(browser: Browser) -> Browser:
    """The browser in a phone-sized window (390 px wide)."""
    browser.driver.set_window_size(*NARROW)
    return browser
