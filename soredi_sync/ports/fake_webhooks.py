"""In-memory twin of the webhook repository: subscriptions, their deliveries and the claims on
them, with the rules of the database's (the head of each subscription is the only delivery that
may be sent; a claim that ran out may be taken over).

Part of the fakes of :mod:`soredi_sync.ports.fakes` (whose unit of work holds it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from soredi_sync.domain.model import GlnMode
from soredi_sync.ports.fake_registry import FakeRegistryRepository
from soredi_sync.ports.records import Delivery, DueDelivery, OwnerMap, StuckDeliveries, Subscription
from soredi_sync.ports.webhooks import CANCELLED, DELIVERED, FAILED, PENDING, SENDING, UNDELIVERED

ABANDONED = "the dispatcher sending it stopped before it recorded an answer"


def _filters(filters: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    return {k: tuple(sorted(v)) for k, v in sorted(filters.items()) if v}


class FakeWebhookRepository:
    """Reads who owns what from ``registry`` (the unit of work's registry fake)."""

    def __init__(self, registry: FakeRegistryRepository) -> None:
        self._registry = registry
        self.subscriptions: dict[int, Subscription] = {}
        self.secrets: dict[int, str | None] = {}
        self.credentials: dict[int, str | None] = {}
        self.deliveries_by_id: dict[int, Delivery] = {}
        self.payloads: dict[int, dict[str, Any]] = {}
        self.claims: dict[int, str] = {}  # delivery id → holder

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
        sub_id = max(self.subscriptions, default=0) + 1
        sub = Subscription(
            sub_id,
            name,
            url,
            _filters(filters),
            origin,
            created_at,
            created_by,
            True,
            cursor,
            bool(credentials),
        )
        self.subscriptions[sub_id] = sub
        self.secrets[sub_id] = secret
        self.credentials[sub_id] = credentials
        return sub

    def get(self, subscription_id: int) -> Subscription | None:
        return self.subscriptions.get(subscription_id)

    def get_by_name(self, name: str) -> Subscription | None:
        return next((s for s in self.subscriptions.values() if s.name == name), None)

    def all(self) -> list[Subscription]:
        return [self.subscriptions[i] for i in sorted(self.subscriptions)]

    def secret_of(self, subscription_id: int) -> str | None:
        return self.secrets.get(subscription_id)

    def retarget(
        self,
        subscription_id: int,
        *,
        url: str,
        filters: Mapping[str, Sequence[str]],
        credentials: str | None = None,
    ) -> bool:
        sub = self.subscriptions[subscription_id]
        new = replace(sub, url=url, filters=_filters(filters), has_credentials=bool(credentials))
        if new == sub and self.credentials[subscription_id] == credentials:
            return False
        self.subscriptions[subscription_id] = new
        self.credentials[subscription_id] = credentials
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
        sub = self.subscriptions[subscription_id] = replace(
            self.subscriptions[subscription_id],
            url=url,
            filters=_filters(filters),
            created_at=created_at,
            created_by=created_by,
            cursor=cursor,
            active=True,
            has_credentials=bool(credentials),
        )
        self.secrets[subscription_id] = secret
        self.credentials[subscription_id] = credentials
        return sub

    def deactivate(self, subscription_id: int, at: datetime, reason: str) -> int:
        sub = self.subscriptions[subscription_id]
        self.subscriptions[subscription_id] = replace(sub, active=False)
        cancelled = [
            d
            for d in self.deliveries_by_id.values()
            if d.subscription_id == subscription_id and d.status in UNDELIVERED
        ]
        for d in cancelled:
            self._set(d.id, CANCELLED, next_attempt_at=None, claimed_until=None, last_error=reason)
        return len(cancelled)

    def lock_active(self) -> list[Subscription]:
        return [s for s in self.all() if s.active]

    def advance(self, subscription_id: int, cursor: int) -> None:
        sub = self.subscriptions[subscription_id]
        self.subscriptions[subscription_id] = replace(sub, cursor=cursor)

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
        delivery_id = max(self.deliveries_by_id, default=0) + 1
        self.deliveries_by_id[delivery_id] = Delivery(
            delivery_id,
            subscription_id,
            created_at,
            first_change_id,
            last_change_id,
            change_count,
            PENDING,
            0,
            None,
            created_at,
            None,
            None,
            None,
        )
        self.payloads[delivery_id] = {**copy.deepcopy(payload), "delivery_id": delivery_id}
        return delivery_id

    def last_sequence(self, subscription_id: int) -> int:
        mine = [
            d.id for d in self.deliveries_by_id.values() if d.subscription_id == subscription_id
        ]
        return int(self.payloads[max(mine)].get("sequence", 0)) if mine else 0

    def _heads(self) -> list[Delivery]:
        heads: dict[int, Delivery] = {}
        for d in sorted(self.deliveries_by_id.values(), key=lambda d: d.id):
            sub = self.subscriptions.get(d.subscription_id)
            if d.status in UNDELIVERED and sub is not None and sub.active:
                heads.setdefault(d.subscription_id, d)
        return sorted(heads.values(), key=lambda d: d.id)

    def claim_due(
        self,
        now: datetime,
        until: datetime,
        holder: str = "dispatcher",
        *,
        limit: int | None = None,
        max_attempts: int | None = None,
    ) -> list[DueDelivery]:
        claimed: list[DueDelivery] = []
        for d in self._heads():
            if limit is not None and len(claimed) >= limit:
                break
            pending_due = d.status == PENDING and d.next_attempt_at is not None
            pending_due = pending_due and d.next_attempt_at <= now  # type: ignore[operator]
            ran_out = d.status == SENDING and d.claimed_until is not None
            ran_out = ran_out and d.claimed_until <= now  # type: ignore[operator]
            if not (pending_due or ran_out):
                continue
            if ran_out and max_attempts is not None and d.attempts >= max_attempts:
                self._set(d.id, FAILED, next_attempt_at=None, claimed_until=None)
                self.deliveries_by_id[d.id] = replace(
                    self.deliveries_by_id[d.id], last_status_code=None, last_error=ABANDONED
                )
                continue
            self._set(d.id, SENDING, claimed_until=until, attempts=d.attempts + 1)
            self.claims[d.id] = holder
            sub = self.subscriptions[d.subscription_id]
            claimed.append(
                DueDelivery(
                    d.id,
                    sub.id,
                    sub.name,
                    sub.origin,
                    sub.url,
                    copy.deepcopy(self.payloads[d.id]),
                    d.attempts + 1,
                    self.credentials.get(sub.id),
                )
            )
        return claimed

    def _set(self, delivery_id: int, status: str, **values: Any) -> None:
        self.deliveries_by_id[delivery_id] = replace(
            self.deliveries_by_id[delivery_id], status=status, **values
        )
        if status != SENDING:
            self.claims.pop(delivery_id, None)

    def _holds(self, delivery_id: int, holder: str) -> bool:
        d = self.deliveries_by_id.get(delivery_id)
        return d is not None and d.status == SENDING and self.claims.get(delivery_id) == holder

    def record_delivered(
        self, delivery_id: int, at: datetime, status_code: int, holder: str = "dispatcher"
    ) -> bool:
        if not self._holds(delivery_id, holder):
            return False
        self._set(
            delivery_id,
            DELIVERED,
            last_attempt_at=at,
            delivered_at=at,
            next_attempt_at=None,
            claimed_until=None,
            last_status_code=status_code,
            last_error=None,
        )
        return True

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
        if not self._holds(delivery_id, holder):
            return False
        self._set(
            delivery_id,
            PENDING if retry_at is not None else FAILED,
            last_attempt_at=at,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=retry_at,
            claimed_until=None,
        )
        return True

    def stuck(self, now: datetime, due_before: datetime) -> StuckDeliveries:
        since: list[datetime] = []
        for d in self._heads():
            if d.status == PENDING and d.next_attempt_at and d.next_attempt_at <= due_before:
                since.append(d.next_attempt_at)
            elif d.status == SENDING and d.claimed_until and d.claimed_until <= now:
                since.append(d.claimed_until)
        return StuckDeliveries(len(since), min(since, default=None))

    def deliveries(
        self, subscription_id: int, limit: int = 50, status: str | None = None
    ) -> list[Delivery]:
        mine = [
            d
            for d in self.deliveries_by_id.values()
            if d.subscription_id == subscription_id and status in (None, d.status)
        ]
        return sorted(mine, key=lambda d: d.id, reverse=True)[:limit]

    def payload_of(self, delivery_id: int) -> dict[str, Any] | None:
        payload = self.payloads.get(delivery_id)
        return copy.deepcopy(payload) if payload is not None else None

    def delivery_counts(self) -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = {}
        for d in self.deliveries_by_id.values():
            by_status = counts.setdefault(d.subscription_id, {})
            by_status[d.status] = by_status.get(d.status, 0) + 1
        return counts

    # -- who owns what ------------------------------------------------------------------------

    def owner_map(self, snapshot_id: int) -> OwnerMap:
        registry = self._registry.load_registry(snapshot_id)
        carriers: dict[str, list[str]] = {}
        for unit in registry.units.values():
            if unit.gln and unit.gln_mode is GlnMode.OWN:
                carriers.setdefault(unit.gln, []).append(unit.sor_id)
        return OwnerMap(
            unit_owner={u.sor_id: u.owner_sor_id for u in registry.units.values()},
            gln_carriers={g: tuple(sorted(s)) for g, s in carriers.items()},
            gln_registered={
                g.gln: g.owner_sor_id for g in registry.glns.values() if g.owner_sor_id
            },
        )
