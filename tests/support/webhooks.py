"""Change subscriptions in tests: webhook settings that allow the loopback receivers, an App
with them, and one dispatch or delivery pass as the CLI and the daemon run it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import WebhookConfig, WebhookSettings
from soredi_sync.db.models import WebhookDelivery
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
    find_subscription,
    recent_deliveries,
)
from tests.support.app import make_settings

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


def deliveries_of(app: App, name: str) -> list:
    with uow(app) as work:
        sub = find_subscription(work, name)
        return list(reversed(recent_deliveries(work, sub.id, limit=1000)))


def delivery_rows(app: App) -> int:
    with app.session_factory() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
