"""Repository of change subscriptions (webhooks) and their deliveries: ``uow.webhooks``.

The adapter of :class:`soredi_sync.ports.storage.WebhookRepository`, in two parts:
subscriptions (:mod:`soredi_sync.db.webhook_subscriptions`) and deliveries
(:mod:`soredi_sync.db.webhook_deliveries`). Like the other repositories it never commits: the
unit of work owns the transaction. The unit of work also carries the registry repository,
because enqueueing reads the change feed.

Two methods take a write lock before they read (``lock_active`` and ``claim_due``), so two
dispatchers (the daemon's leader and an operator's ``soredi-sync webhook dispatch``) never
enqueue or send the same batch twice: PostgreSQL locks the rows (``FOR UPDATE``), SQLite the
database (a write statement first, since pysqlite only begins a transaction at the first write
and an earlier read would be stale).

A delivery being sent is ``sending``, claimed by one dispatcher (``claimed_by``) until
``claimed_until``. The claim is a conditional UPDATE (still pending and due, or a claim that ran
out), so of two dispatchers racing for a delivery exactly one gets it, on both engines; and the
outcome is recorded only by the dispatcher that still holds the claim.
"""

from __future__ import annotations

from soredi_sync.db.webhook_deliveries import SqlAlchemyDeliveryRepository
from soredi_sync.db.webhook_subscriptions import SqlAlchemySubscriptionRepository


class SqlAlchemyWebhookRepository(SqlAlchemySubscriptionRepository, SqlAlchemyDeliveryRepository):
    """Subscriptions and their deliveries over one session (both parts share it)."""
