"""Repository of change subscriptions (webhooks) and their deliveries.

Like the other repositories it never commits: :class:`UnitOfWork` owns the
transaction. The unit of work also carries the registry repository, because enqueueing reads
the change feed and the owner filter reads who owns what on the current snapshot.

Two methods take a write lock before they read (:meth:`SqlAlchemyWebhookRepository.lock_active`
and :meth:`~SqlAlchemyWebhookRepository.claim_due`), so two dispatchers (the daemon's leader and
an operator's ``soredi-sync webhook dispatch``) never enqueue or send the same batch twice:
PostgreSQL locks the rows (``FOR UPDATE``), SQLite the database (a write statement first, since
pysqlite only begins a transaction at the first write and an earlier read would be stale).

A delivery being sent is ``sending``, claimed by one dispatcher (``claimed_by``) until
``claimed_until``. The claim is a conditional UPDATE (still pending and due, or a claim that ran
out), so of two dispatchers racing for a delivery exactly one gets it, on both engines; and the
outcome is recorded only by the dispatcher that still holds the claim.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from soredi_sync.db.models import GlnVersion, UnitVersion, WebhookDelivery, WebhookSubscription
from soredi_sync.db.repository import (
    STREAM_ROWS,
    _as_of,
)

PENDING = "pending"
SENDING = "sending"  # claimed by a dispatcher, which is POSTing it now
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"  # the subscription was deactivated before the delivery went out
DELIVERY_STATES = (PENDING, SENDING, DELIVERED, FAILED, CANCELLED)
UNDELIVERED = (PENDING, SENDING)
ABANDONED = "the dispatcher sending it stopped before it recorded an answer"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stored subscription, without its secret (``secret_of`` reads that when signing) or
    the credentials of its URL (only whether it has some).

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
    has_credentials: bool = False


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
    claimed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery, with what it takes to send it. ``attempts`` counts this one."""

    id: int
    subscription_id: int
    subscription_name: str
    origin: str
    url: str
    payload: dict[str, Any]
    attempts: int
    credentials: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class StuckDeliveries:
    """Deliveries that should be moving and are not: ``count``, and since when the oldest
    has been waiting (due, or its claim over)."""

    count: int = 0
    oldest_since: datetime | None = None


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
        has_credentials=bool(row.credentials),
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
        claimed_until=row.claimed_until,
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
        credentials: str | None = None,
    ) -> Subscription:
        row = WebhookSubscription(
            name=name,
            url=url,
            credentials=credentials,
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
        self,
        subscription_id: int,
        *,
        url: str,
        filters: Mapping[str, Sequence[str]],
        credentials: str | None = None,
    ) -> bool:
        """Set where and what an existing subscription gets; True if anything changed."""
        row = self.session.get_one(WebhookSubscription, subscription_id)
        new_filters = _filters_json(filters)
        if row.url == url and row.credentials == credentials and (row.filters or {}) == new_filters:
            return False
        row.url = url
        row.credentials = credentials
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
        credentials: str | None = None,
    ) -> Subscription:
        """Make an inactive subscription active again as if new: from ``cursor`` on."""
        row = self.session.get_one(WebhookSubscription, subscription_id)
        row.url = url
        row.credentials = credentials
        row.filters = _filters_json(filters)
        row.secret = secret
        row.created_at = created_at
        row.created_by = created_by
        row.cursor = cursor
        row.active = True
        self.session.flush()
        return _subscription(row)

    def deactivate(self, subscription_id: int, at: datetime, reason: str) -> int:
        """Stop a subscription and cancel its pending deliveries (one being sent too: its
        outcome is then not recorded); returns how many."""
        row = self.session.get_one(WebhookSubscription, subscription_id)
        row.active = False
        result = self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status.in_(UNDELIVERED),
            )
            .values(
                status=CANCELLED,
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
                last_error=reason,
            )
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

    def _heads(self) -> Any:
        """The oldest undelivered delivery of each active subscription (the only one that may
        be sent: a receiver gets its deliveries in order)."""
        oldest = (
            select(func.min(WebhookDelivery.id))
            .where(WebhookDelivery.status.in_(UNDELIVERED))
            .group_by(WebhookDelivery.subscription_id)
        )
        active = select(WebhookSubscription.id).where(WebhookSubscription.active.is_(True))
        return and_(WebhookDelivery.id.in_(oldest), WebhookDelivery.subscription_id.in_(active))

    @staticmethod
    def _claimable(now: datetime) -> ColumnElement[bool]:
        """Pending and due, or claimed by a dispatcher whose claim has run out."""
        return or_(
            and_(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now),
            and_(WebhookDelivery.status == SENDING, WebhookDelivery.claimed_until <= now),
        )

    def claim_due(
        self,
        now: datetime,
        until: datetime,
        holder: str = "dispatcher",
        *,
        limit: int | None = None,
        max_attempts: int | None = None,
    ) -> list[DueDelivery]:
        """Claim for ``holder``, until ``until``, at most ``limit`` deliveries that are due at
        ``now``: the oldest undelivered one of each active subscription, when it is pending and
        due or its previous claim ran out (that dispatcher died). Each becomes ``sending`` and
        counts an attempt.

        Each claim is a conditional UPDATE that re-checks the row, so two dispatchers never
        both get one. A delivery whose claim ran out on its last allowed attempt
        (``max_attempts``) is not sent again: it is ``failed``.
        """
        self._lock()
        claimable = self._claimable(now)
        query = (
            select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts)
            .where(self._heads(), claimable)
            .order_by(WebhookDelivery.id)
            .with_for_update(skip_locked=True)
        )
        if limit is not None:
            query = query.limit(limit)
        won: list[int] = []
        for delivery_id, status, attempts in self.session.execute(query).all():
            mine = update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, claimable)
            if status == SENDING and max_attempts is not None and attempts >= max_attempts:
                self.session.execute(
                    mine.values(
                        status=FAILED,
                        next_attempt_at=None,
                        claimed_by=None,
                        claimed_until=None,
                        last_status_code=None,
                        last_error=ABANDONED,
                    )
                )
                continue
            result = self.session.execute(
                mine.values(
                    status=SENDING,
                    claimed_by=holder,
                    claimed_until=until,
                    attempts=WebhookDelivery.attempts + 1,
                )
            )
            if int(result.rowcount) == 1:  # type: ignore[attr-defined]
                won.append(delivery_id)
        if not won:
            return []
        rows = self.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.id.in_(won))
            .order_by(WebhookDelivery.id)
            .execution_options(populate_existing=True)
        ).all()
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
                    credentials=sub.credentials,
                )
            )
        return claimed

    def _held(self, delivery_id: int, holder: str) -> Any:
        return update(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == SENDING,
            WebhookDelivery.claimed_by == holder,
        )

    def record_delivered(
        self, delivery_id: int, at: datetime, status_code: int, holder: str = "dispatcher"
    ) -> bool:
        """Mark a delivery ``holder`` claimed as delivered; False if it no longer holds the
        claim (it ran out and another dispatcher took over, or the subscription was removed)."""
        result = self.session.execute(
            self._held(delivery_id, holder).values(
                status=DELIVERED,
                last_attempt_at=at,
                delivered_at=at,
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
                last_status_code=status_code,
                last_error=None,
            )
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def record_failed_attempt(
        self,
        delivery_id: int,
        at: datetime,
        *,
        status_code: int | None,
        error: str,
        retry_at: datetime | None,
        holder: str = "dispatcher",
    ) -> bool:
        """Record a failed attempt of a delivery ``holder`` claimed: pending again, due at
        ``retry_at``, or ``failed`` when that is None. False if it no longer holds the claim."""
        result = self.session.execute(
            self._held(delivery_id, holder).values(
                status=PENDING if retry_at is not None else FAILED,
                last_attempt_at=at,
                last_status_code=status_code,
                last_error=error,
                next_attempt_at=retry_at,
                claimed_by=None,
                claimed_until=None,
            )
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def stuck(self, now: datetime, due_before: datetime) -> StuckDeliveries:
        """Deliveries that should be moving and are not: the oldest undelivered delivery of an
        active subscription that has been due since before ``due_before``, or whose claim ran
        out before ``now`` (its dispatcher died and none has taken it over yet). A delivery
        waiting for its retry, or behind an earlier one of its subscription, is not stuck."""
        since = case(
            (WebhookDelivery.status == SENDING, WebhookDelivery.claimed_until),
            else_=WebhookDelivery.next_attempt_at,
        )
        count, oldest = self.session.execute(
            select(func.count(), func.min(since)).where(
                self._heads(),
                or_(
                    and_(
                        WebhookDelivery.status == PENDING,
                        WebhookDelivery.next_attempt_at <= due_before,
                    ),
                    and_(
                        WebhookDelivery.status == SENDING,
                        WebhookDelivery.claimed_until <= now,
                    ),
                ),
            )
        ).one()
        return StuckDeliveries(int(count or 0), _aware(oldest))

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


def _aware(value: Any) -> datetime | None:
    """A timestamp from an aggregate (``min``), which bypasses the column type on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
