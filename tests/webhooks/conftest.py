"""Fixtures for change subscriptions: a loopback receiver, and an app over the tiny sandbox.

Every test gets a fresh database from ``database_url`` (SQLite, and PostgreSQL when
``TEST_DATABASE_URL`` is set).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import WebhookConfig, WebhookSettings
from soredi_sync.ports.records import ChangeRecord
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.ports.webhooks import WebhookSender
from soredi_sync.services import webhooks
from soredi_sync.services.webhooks import (
    CreatedSubscription,
    DeliverReport,
    DispatchReport,
    WebhookFilter,
    address_policy,
    create_subscription,
    deliver_due,
)
from tests.api.conftest import (  # noqa: F401 (API fixtures)
    client,
    issue,
    synced_app,
    synced_postgres_template,
    synced_sqlite_template,
    world,
)
from tests.integration.conftest import make_settings, sandbox_dir, sync_day  # noqa: F401

HANG = -1  # an answer script entry: do not answer until the test ends


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def cursors(self) -> list[int]:
        return [c["cursor"] for c in self.payload["changes"]]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as scripted.

    ``answers`` is consumed one entry per request (a status code, or ``HANG``); when it is
    empty the answer is ``default``.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: deque[int] = deque()
        self.default = 204
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(dict(self.headers.items()), body))
                answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer == HANG:
                    receiver._release.wait(10)
                    answer = 200
                try:
                    self.send_response(answer)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Short timeouts and a round backoff: 10 s, then 20 s, capped at 40 s. The receivers listen on
# loopback, which the address policy refuses unless it is allowed, as here.
LOOPBACK = ["127.0.0.0/8", "::1/128"]
FAST = {
    "timeout": 0.5,
    "max_attempts": 3,
    "initial_backoff": 10.0,
    "max_backoff": 40.0,
    "allow_networks": LOOPBACK,
}


def webhook_settings(*subscriptions: WebhookConfig, **values: Any) -> WebhookSettings:
    return WebhookSettings(**{**FAST, **values}, subscriptions=list(subscriptions))


def make_app(database_url: str, webhooks: WebhookSettings | None = None) -> App:
    return bootstrap(make_settings(database_url, webhooks=webhooks or webhook_settings()))


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    with make_app(database_url) as application:
        yield application


@pytest.fixture
def day0(app: App, sandbox_dir: Path) -> App:  # noqa: F811
    sync_day(app, sandbox_dir, 0)
    return app


def uow(app: App) -> UnitOfWork:
    return app.uow()


def subscribe(app: App, name: str, url: str, **filters: list[str]) -> CreatedSubscription:
    with uow(app) as work:
        return create_subscription(
            work,
            name=name,
            url=url,
            webhook_filter=WebhookFilter.build(**filters),
            actor="test",
            policy=address_policy(app.settings.webhooks),
        )


def dispatch(
    app: App, now: datetime | None = None, sender: WebhookSender | None = None
) -> DispatchReport:
    """One webhook pass wired from ``app``, as ``soredi-sync webhook dispatch`` runs it."""
    return webhooks.dispatch(
        app.uow_factory, app.settings.webhooks, sender or app.webhook_sender(), now=now
    )


def deliver(app: App) -> DeliverReport:
    """Send what is due with the app's sender (the daemon's retry pass without enqueueing)."""
    return deliver_due(app.uow_factory, app.settings.webhooks, app.webhook_sender())


def all_changes(app: App) -> list[ChangeRecord]:
    with app.uow() as work:
        return work.registry.changes_since(0, 100_000)


def t0() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
