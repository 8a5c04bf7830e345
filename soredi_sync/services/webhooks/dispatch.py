"""One webhook pass: apply the configured subscriptions, enqueue new changes, send what is due.

The daemon runs :func:`prepare` right after a sync and :func:`dispatch` in its own webhook job
(never inside a sync); ``soredi-sync webhook dispatch`` runs :func:`dispatch` once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from soredi_sync.config import WebhookSettings
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.ports.webhooks import WebhookSender
from soredi_sync.services.webhooks.configured import ConfiguredReport, sync_configured
from soredi_sync.services.webhooks.delivery import DeliverReport, deliver_due
from soredi_sync.services.webhooks.enqueue import EnqueueReport, enqueue


@dataclass(frozen=True, slots=True)
class PrepareReport:
    configured: ConfiguredReport
    enqueued: EnqueueReport


@dataclass(frozen=True, slots=True)
class DispatchReport:
    configured: ConfiguredReport
    enqueued: EnqueueReport
    delivered: DeliverReport


def prepare(
    uow_factory: Callable[[], UnitOfWork],
    webhook_settings: WebhookSettings,
    *,
    now: datetime | None = None,
) -> PrepareReport:
    """Sync the configured subscriptions and enqueue new changes: database work only (sending
    is :func:`~soredi_sync.services.webhooks.delivery.deliver_due`'s, in another job)."""
    with uow_factory() as uow:
        configured = sync_configured(uow, webhook_settings, now=now)
    with uow_factory() as uow:
        enqueued = enqueue(uow, webhook_settings, now=now)
    return PrepareReport(configured, enqueued)


def dispatch(
    uow_factory: Callable[[], UnitOfWork],
    webhook_settings: WebhookSettings,
    sender: WebhookSender,
    *,
    now: datetime | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DispatchReport:
    """Sync the configured subscriptions, enqueue new changes and deliver what is due.

    The daemon's webhook job runs this every ``daemon.webhook_retry_seconds`` and when a sync
    has stored a snapshot. It ends once nothing is due and nothing is in flight (every POST
    within ``webhooks.timeout``).

    :param sender: what POSTs (``app.webhook_sender()``; tests may pass another)
    :param now: a fixed time for the whole dispatch (tests); default: the clock
    :param should_stop: see :func:`~soredi_sync.services.webhooks.delivery.deliver_due`
    """
    prepared = prepare(uow_factory, webhook_settings, now=now)
    clock = (lambda: now) if now is not None else None
    delivered = deliver_due(
        uow_factory, webhook_settings, sender, clock=clock, should_stop=should_stop
    )
    return DispatchReport(prepared.configured, prepared.enqueued, delivered)
