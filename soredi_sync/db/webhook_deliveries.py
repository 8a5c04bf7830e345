"""Stored webhook deliveries: queued, claimed by one dispatcher, their outcome recorded.

Part of the webhook repository (:mod:`soredi_sync.db.webhook_repository`, ``uow.webhooks``),
where the claims and locks are explained.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from soredi_sync.db.models import WebhookDelivery, WebhookSubscription
from soredi_sync.db.webhook_subscriptions import lock_for_write
from soredi_sync.ports.records import Delivery, DueDelivery, StuckDeliveries
from soredi_sync.ports.webhooks import (
    ABANDONED,
    DELIVERED,
    FAILED,
    PENDING,
    SENDING,
    UNDELIVERED,
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


class SqlAlchemyDeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

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
        lock_for_write(self.session)
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


def _aware(value: Any) -> datetime | None:
    """A timestamp from an aggregate (``min``), which bypasses the column type on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
