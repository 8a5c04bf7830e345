"""Stored change subscriptions (webhooks): registering, retargeting, stopping, and the cursor.

Part of the webhook repository (:mod:`soredi_sync.db.webhook_repository`, ``uow.webhooks``);
also who owns what on a snapshot, which the ``owners`` filter reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from soredi_sync.db.models import GlnVersion, UnitVersion, WebhookDelivery, WebhookSubscription
from soredi_sync.db.versions import STREAM_ROWS, as_of
from soredi_sync.ports.records import OwnerMap, Subscription
from soredi_sync.ports.webhooks import CANCELLED, UNDELIVERED


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


def _filters_json(filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in sorted(filters.items()) if v}


def lock_for_write(session: Session) -> None:
    """Take the write lock of this transaction now, before anything is read (SQLite).

    pysqlite begins a transaction only at the first write; without this, the reads before
    it would see the database as it was and a concurrent dispatcher's commit in between
    would be overwritten. PostgreSQL locks rows instead (``FOR UPDATE`` in the callers).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id < 0)
            .values(cursor=WebhookSubscription.cursor)
        )


class SqlAlchemySubscriptionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

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

    def lock_active(self) -> list[Subscription]:
        """The active subscriptions, locked until the transaction ends."""
        lock_for_write(self.session)
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

    # -- who owns what ------------------------------------------------------------------------

    def owner_map(self, snapshot_id: int) -> OwnerMap:
        """Unit and GLN ownership on ``snapshot_id``, in two streamed queries."""
        unit_owner: dict[str, str] = {}
        carriers: dict[str, list[str]] = {}
        for sor_id, owner, gln_mode, gln in self._stream(
            select(
                UnitVersion.sor_id, UnitVersion.owner_sor_id, UnitVersion.gln_mode, UnitVersion.gln
            ).where(as_of(UnitVersion, snapshot_id))
        ):
            unit_owner[sor_id] = owner
            if gln and gln_mode == "own":
                carriers.setdefault(gln, []).append(sor_id)
        registered: dict[str, str] = dict(
            self._stream(
                select(GlnVersion.gln, GlnVersion.owner_sor_id).where(
                    as_of(GlnVersion, snapshot_id), GlnVersion.owner_sor_id.is_not(None)
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
