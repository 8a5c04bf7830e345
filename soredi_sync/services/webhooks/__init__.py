"""Change subscriptions (webhooks): register, enqueue changes after each sync, deliver signed.

A subscription names a URL and a filter (:mod:`.filters`). After each sync, :func:`enqueue`
turns the changes after the subscription's cursor that pass its filter into *deliveries* of at
most ``webhooks.batch_size`` changes (:mod:`.enqueue`), and :func:`deliver_due` POSTs them,
signed (:mod:`.signing`), through the :class:`~soredi_sync.ports.webhooks.WebhookSender` port
(:mod:`.delivery`); :func:`dispatch` does all three (:mod:`.dispatch`). Subscriptions come from
the API and CLI (:mod:`.subscriptions`) or the configuration (:mod:`.configured`). The pull
feed (``GET /v1/changes?cursor=``) stays the alternative for consumers that would rather poll.

No use case here takes the application: each gets a unit of work (or a factory of them), the
``webhooks`` settings and, to send, a sender (``app.webhook_sender()``).
"""

from __future__ import annotations

from soredi_sync.services.webhooks.configured import ConfiguredReport, sync_configured
from soredi_sync.services.webhooks.delivery import (
    DeliverReport,
    backoff_seconds,
    deliver_due,
)
from soredi_sync.services.webhooks.dispatch import DispatchReport, PrepareReport, dispatch, prepare
from soredi_sync.services.webhooks.enqueue import EnqueueReport, OwnerResolver, enqueue
from soredi_sync.services.webhooks.errors import InvalidWebhook, WebhookConflict
from soredi_sync.services.webhooks.filters import WebhookFilter
from soredi_sync.services.webhooks.signing import canonical_json, new_secret, sign, verify
from soredi_sync.services.webhooks.subscriptions import (
    CreatedSubscription,
    address_policy,
    check_url,
    create_subscription,
    deactivate_subscription,
    delivery_counts,
    find_subscription,
    get_subscription,
    list_subscriptions,
    recent_deliveries,
)

__all__ = [
    "ConfiguredReport",
    "CreatedSubscription",
    "DeliverReport",
    "DispatchReport",
    "EnqueueReport",
    "InvalidWebhook",
    "OwnerResolver",
    "PrepareReport",
    "WebhookConflict",
    "WebhookFilter",
    "address_policy",
    "backoff_seconds",
    "canonical_json",
    "check_url",
    "create_subscription",
    "deactivate_subscription",
    "deliver_due",
    "delivery_counts",
    "dispatch",
    "enqueue",
    "find_subscription",
    "get_subscription",
    "list_subscriptions",
    "new_secret",
    "prepare",
    "recent_deliveries",
    "sign",
    "sync_configured",
    "verify",
]
