"""Repository of change subscriptions (webhooks) and their deliveries.

Like the other repositories it never commits: :class:`SqlAlchemyWebhookUnitOfWork` owns the
transaction. The unit of work also carries the registry repository, because enqueueing reads
the change feed and the owner filter reads who owns what on the current snapshot.

Two methods take a write lock before they read (:meth:`SqlAlchemyWebhookRepository.lock_active`
and :meth:`~SqlAlchemyWebhookRepository.claim_due`), so two dispatchers (the daemon's leader and
an operator's ``soredi-sync webhook dispatch``) never enqueue or send the same batch twice:
PostgreSQL locks the rows (``FOR UPDATE``), SQLite the database (a write statement first, since
pysqlite only begins a transaction at the first write and an earlier read would be stale).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from soredi_sync.db.models import GlnVersion, UnitVersion, WebhookDelivery, WebhookSubscription
from soredi_sync.db.repository import (
    STREAM_ROWS,
    SqlAlchemyRegistryRepository,
    _as_of,
)
from soredi_sync.db.unit_of_work import SessionUnitOfWork

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"  # the subscription was deactivated before the delivery went out
DELIVERY_STATES = (PENDING, DELIVERED, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stored subscription, without its secret (``secret_of`` reads that when signing).

    ``filters`` maps a field (``glns``, ``owners``, ``message_types``, ``kinds``, ``entities``)
    to the values it accepts; ``cursor`` is the last change id scanned for it.
    """

    id: int
    name: str
    url: str
    filters: Mapping[str, tuple[str, ...]]
    origin: str  # "config" or "api"
    created_at: datetime
    created_by: str
    active: bool
    cursor: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a batch of changes, and how it went (no payload: see ``payload_of``)."""

    id: int
    subscription_id: int
    created_at: datetime
    first_change_id: int
    last_change_id: int
    change_count: int
    status: str
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery, with what it takes to send it."""

    id: int
    subscription_id: int
    subscription_name: str
    origin: str
    url: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class OwnerMap:
    """Who owns what on one snapshot, for the owner filter.

    ``unit_owner``: unit SOR-ID → SOR-ID of its institution owner; ``gln_carriers``: GLN →
    SOR-IDs of the units that carry it as their own; ``gln_registered``: GLN → SOR-ID of the unit
    that holds its EanLocationCodeEntity (GLNs no unit carries still have one).
    """

    unit_owner: dict[str, str]
    gln_carriers: dict[str, tuple[str, ...]]
    gln_registered: dict[str, str]


def _subscription(row: WebhookSubscription) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        url=row.url,
        filters={k: tuple(v) for k, v in (row.filters or {}).items()},
        origin=row.origin,
        created_at=row.created_at,
        created_by=row.created_by,
        active=row.active,
        cursor=row.cursor,
    )


def _delivery(row: WebhookDelivery) -> Delivery:
    return Delivery(
        id=row.id,
        subscription_id=row.subscription_id,
        created_at=row.created_at,
        first_change_id=row.first_change_id,
        last_change_id=row.last_change_id,
        change_count=row.change_count,
        status=row.status,
        attempts=row.attempts,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
    )


def _filters_json(filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in sorted(filters.items()) if v}


class SqlAlchemyWebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- subscriptions ------------------------------------------------------------------------

    def add(
        self,
        *,
        name: str,
        url: str,
        filters: Mapping[str, Sequence[str]],
        origin: str,
        secret: str | None,
        created_at: datetime,
        created_by: str,
        cursor: int,
    ) -> Subscription:
        row = WebhookSubscription(
            name=name,
            url=url,
            secret=secret,
            filters=_filters_json(filters),
            origin=origin,
            created_at=created_at,
            created_by=created_by,
            active=True,
            cursor=cursor,
        )
        self.session.add(row)
        self.session.flush()
        return _subscription(row)

    def get(self, subscription_id: int) -> Subscription | None:
        row = self.session.get(WebhookSubscription, subscription_id)
        return _subscription(row) if row else None

    def get_by_name(self, name: str) -> Subscription | None:
        row = self.session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.name == name)
        ).first()
        return _subscription(row) if row else None

    def all(self) -> list[Subscription]:
        rows = self.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
        return [_subscription(r) for r in rows]

    def secret_of(self, subscription_id: int) -> str | None:
        """The stored HMAC key (API subscriptions); None for configured ones."""
        return self.session.scalar(
            select(WebhookSubscription.secret).where(WebhookSubscription.id == subscription_id)
        )

    def retarget(
        self, subscription_id: int, *, url: str, filters: Mapping[str, Sequence[str]]
    ) -> bool:
        """Set where and what an existing subscription gets; True if anything changed."""
        row = self.session.get_one(WebhookSubscription, subscription_id)
        new_filters = _filters_json(filters)
        if row.url == url and (row.filters or {}) == new_filters:
            return False
        row.url = url
        row.filters = new_filters
        self.session.flush()
        return True

    def restart(
        self,
        subscription_id: int,
        *,
        url: str,
        filters: Mapping[str, Sequence[str]],
        secret: str | None,
        created_at: datetime,
        created_by: str,
        cursor: int,
    ) -> Subscription:
        """Make an inactive subscription active again as if new: from ``cursor`` on."""
        row = self.session.get_one(WebhookSubscription, subscription_id)
        row.url = url
        row.filters = _filters_json(filters)
        row.secret = secret
        row.created_at = created_at
        row.created_by = created_by
        row.cursor = cursor
        row.active = True
        self.session.flush()
        return _subscription(row)

    def deactivate(self, subscription_id: int, at: datetime, reason: str) -> int:
        """Stop a subscription and cancel its pending deliveries; returns how many."""
        row = self.session.get_one(WebhookSubscription, subscription_id)
        row.active = False
        result = self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status == PENDING,
            )
            .values(status=CANCELLED, next_attempt_at=None, last_error=reason)
        )
        self.session.flush()
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _lock(self) -> None:
        """Take the write lock of this transaction now, before anything is read (SQLite).

        pysqlite begins a transaction only at the first write; without this, the reads before
        it would see the database as it was and a concurrent dispatcher's commit in between
        would be overwritten. PostgreSQL locks rows instead (``FOR UPDATE`` in the callers).
        """
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id < 0)
                .values(cursor=WebhookSubscription.cursor)
            )

    def lock_active(self) -> list[Subscription]:
        """The active subscriptions, locked until the transaction ends."""
        self._lock()
        rows = self.session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.active.is_(True))
            .order_by(WebhookSubscription.id)
            .with_for_update()
        )
        return [_subscription(r) for r in rows]

    def advance(self, subscription_id: int, cursor: int) -> None:
        self.session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id)
            .values(cursor=cursor)
        )

    # -- deliveries -----------------------------------------------------------------------------

    def add_delivery(
        self,
        *,
        subscription_id: int,
        created_at: datetime,
        first_change_id: int,
        last_change_id: int,
        change_count: int,
        payload: dict[str, Any],
    ) -> int:
        """Store a pending delivery, due at once; its id is stamped into the payload as
        ``delivery_id``. Returns the id."""
        row = WebhookDelivery(
            subscription_id=subscription_id,
            created_at=created_at,
            first_change_id=first_change_id,
            last_change_id=last_change_id,
            change_count=change_count,
            payload={},
            status=PENDING,
            attempts=0,
            next_attempt_at=created_at,
        )
        self.session.add(row)
        self.session.flush()
        row.payload = {**payload, "delivery_id": row.id}
        self.session.flush()
        return row.id

    def last_sequence(self, subscription_id: int) -> int:
        """The ``sequence`` in the subscription's newest delivery (0 if none)."""
        payload = self.session.scalar(
            select(WebhookDelivery.payload)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(1)
        )
        return int((payload or {}).get("sequence", 0))

    def claim_due(self, now: datetime, until: datetime) -> list[DueDelivery]:
        """Claim, until ``until``, the oldest pending delivery of each active subscription if
        it is due at ``now``.

        Only the oldest pending delivery of a subscription is ever sent, so a receiver gets
        its deliveries in order. The claim pushes ``next_attempt_at`` to ``until``: a
        dispatcher that dies after claiming leaves the delivery due again then, and another
        dispatcher skips it meanwhile (PostgreSQL also skips rows locked right now).
        """
        self._lock()
        oldest = (
            select(func.min(WebhookDelivery.id))
            .where(WebhookDelivery.status == PENDING)
            .group_by(WebhookDelivery.subscription_id)
        )
        active = select(WebhookSubscription.id).where(WebhookSubscription.active.is_(True))
        rows = list(
            self.session.scalars(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.id.in_(oldest),
                    WebhookDelivery.subscription_id.in_(active),
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.id)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return []
        subscriptions = {
            s.id: s
            for s in self.session.scalars(
                select(WebhookSubscription).where(
                    WebhookSubscription.id.in_({r.subscription_id for r in rows})
                )
            )
        }
        claimed = []
        for row in rows:
            row.next_attempt_at = until
            sub = subscriptions[row.subscription_id]
            claimed.append(
                DueDelivery(
                    id=row.id,
                    subscription_id=sub.id,
                    subscription_name=sub.name,
                    origin=sub.origin,
                    url=sub.url,
                    payload=dict(row.payload),
                    attempts=row.attempts,
                )
            )
        self.session.flush()
        return claimed

    def record_delivered(self, delivery_id: int, at: datetime, status_code: int) -> None:
        row = self.session.get_one(WebhookDelivery, delivery_id)
        row.status = DELIVERED
        row.attempts += 1
        row.last_attempt_at = at
        row.delivered_at = at
        row.next_attempt_at = None
        row.last_status_code = status_code
        row.last_error = None
        self.session.flush()

    def record_failed_attempt(
        self,
        delivery_id: int,
        at: datetime,
        *,
        status_code: int | None,
        error: str,
        retry_at: datetime | None,
    ) -> Delivery:
        """Count a failed attempt; ``retry_at`` None gives up (the delivery is ``failed``)."""
        row = self.session.get_one(WebhookDelivery, delivery_id)
        row.attempts += 1
        row.last_attempt_at = at
        row.last_status_code = status_code
        row.last_error = error
        row.next_attempt_at = retry_at
        if retry_at is None:
            row.status = FAILED
        self.session.flush()
        return _delivery(row)

    def deliveries(
        self, subscription_id: int, limit: int = 50, status: str | None = None
    ) -> list[Delivery]:
        """The subscription's deliveries, newest first."""
        query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        rows = self.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))
        return [_delivery(r) for r in rows]

    def payload_of(self, delivery_id: int) -> dict[str, Any] | None:
        row = self.session.get(WebhookDelivery, delivery_id)
        return dict(row.payload) if row else None

    def delivery_counts(self) -> dict[int, dict[str, int]]:
        """Subscription id → deliveries per state."""
        counts: dict[int, dict[str, int]] = {}
        rows = self.session.execute(
            select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count()).group_by(
                WebhookDelivery.subscription_id, WebhookDelivery.status
            )
        )
        for subscription_id, status, count in rows:
            counts.setdefault(subscription_id, {})[status] = count
        return counts

    # -- who owns what ------------------------------------------------------------------------

    def owner_map(self, snapshot_id: int) -> OwnerMap:
        """Unit and GLN ownership on ``snapshot_id``, in two streamed queries."""
        unit_owner: dict[str, str] = {}
        carriers: dict[str, list[str]] = {}
        for sor_id, owner, gln_mode, gln in self._stream(
            select(
                UnitVersion.sor_id, UnitVersion.owner_sor_id, UnitVersion.gln_mode, UnitVersion.gln
            ).where(_as_of(UnitVersion, snapshot_id))
        ):
            unit_owner[sor_id] = owner
            if gln and gln_mode == "own":
                carriers.setdefault(gln, []).append(sor_id)
        registered: dict[str, str] = dict(
            self._stream(
                select(GlnVersion.gln, GlnVersion.owner_sor_id).where(
                    _as_of(GlnVersion, snapshot_id), GlnVersion.owner_sor_id.is_not(None)
                )
            )
        )
        return OwnerMap(
            unit_owner=unit_owner,
            gln_carriers={g: tuple(sorted(s)) for g, s in carriers.items()},
            gln_registered=registered,
        )

    def _stream(self, query: Any) -> Iterator[Any]:
        yield from self.session.execute(query.execution_options(yield_per=STREAM_ROWS))


class SqlAlchemyWebhookUnitOfWork(SessionUnitOfWork):
    """One session and transaction over subscriptions, deliveries and the registry; rolled
    back unless committed."""

    registry: SqlAlchemyRegistryRepository
    webhooks: SqlAlchemyWebhookRepository

    def _open(self, session: Session) -> None:
        self.registry = SqlAlchemyRegistryRepository(session)
        self.webhooks = SqlAlchemyWebhookRepository(session)
