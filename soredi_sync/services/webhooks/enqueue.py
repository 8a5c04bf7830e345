"""Turning the change feed into deliveries: each subscription's matching changes, in batches.

After each sync, :func:`enqueue` reads the changes after every active subscription's cursor
once, keeps those that pass each one's filter, and stores them as *deliveries* of at most
``webhooks.batch_size`` changes, in feed order. The payload (signed and POSTed by
:mod:`soredi_sync.services.webhooks.delivery`)::

    {"subscription": "region-north", "delivery_id": 17, "sequence": 4,
     "cursor": 230, "next_cursor": 412, "snapshot_ids": [12],
     "changes": [{"cursor": 233, "snapshot_id": 12, "entity": "capability",
                  "key": "5790000000005:FDIS91", "gln": "5790000000005",
                  "kind": "added", "details": {...}}, ...]}

``changes`` holds every change in the feed range (``cursor``, ``next_cursor``] that passes the
filter (the items are those of ``/v1/changes``). ``sequence`` counts the subscription's
deliveries (1, 2, …): a gap means a delivery failed for good.

Who owns a change (the ``owners`` filter): a unit's institution owner on the current snapshot;
for a GLN or capability, the owners of the GLN (:func:`soredi_sync.domain.ownership.gln_owners`).
A record gone from the current snapshot is placed by what the changes themselves say (a removed
unit's ``before``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from soredi_sync.config import WebhookSettings
from soredi_sync.domain.ownership import gln_owners
from soredi_sync.ports.records import ChangeRecord, OwnerMap, Subscription
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.webhooks.filters import WebhookFilter

logger = logging.getLogger(__name__)

# Changes read from the feed at a time while enqueueing.
SCAN_PAGE = 5000


class OwnerResolver:
    """The institution owners of a change, from one :class:`OwnerMap` of the current snapshot.

    Units seen in the changes themselves (``before``/``after``) fill in for units gone from the
    snapshot, so a removed GLN whose unit was removed in the same sync still has an owner.
    """

    def __init__(self, owner_map: OwnerMap) -> None:
        self._map = owner_map
        self._gone: dict[str, str] = {}  # unit SOR-ID → owner, from unit changes

    def learn(self, change: ChangeRecord) -> None:
        """Remember the owner a unit change names, for units no longer on the snapshot."""
        if change.entity != "unit":
            return
        for side in ("before", "after"):
            record = change.details.get(side)
            if isinstance(record, dict) and record.get("owner_sor_id"):
                self._gone.setdefault(change.key, str(record["owner_sor_id"]))

    def _unit_owner(self, sor_id: str | None) -> str | None:
        if not sor_id:
            return None
        return self._map.unit_owner.get(sor_id) or self._gone.get(sor_id)

    def __call__(self, change: ChangeRecord) -> set[str]:
        owners: set[str] = set()
        if change.entity == "unit":
            owners.add(self._unit_owner(change.key) or "")
            moved = change.details.get("fields", {}).get("owner_sor_id")
            if isinstance(moved, list):
                owners.update(str(v) for v in moved if v)
        elif change.gln:
            registered = self._map.gln_registered.get(change.gln)
            before = change.details.get("before")
            if registered is None and isinstance(before, dict):
                registered = before.get("owner_sor_id")  # a removed GLN
            carriers = self._map.gln_carriers.get(change.gln, ())
            owners.update(gln_owners(carriers, registered, self._unit_owner))
        owners.discard("")
        return owners


@dataclass(frozen=True, slots=True)
class EnqueueReport:
    scanned: int = 0  # changes read from the feed
    deliveries: int = 0  # deliveries created
    changes: int = 0  # changes put into them (one change may go to several subscriptions)


@dataclass
class _Pending:
    """One subscription's batch being filled while the feed is scanned."""

    sub: Subscription
    match: WebhookFilter
    position: int  # the last change id scanned for it
    range_start: int  # where the batch being filled starts (exclusive)
    sequence: int | None = None  # the last sequence used; read when first needed
    batch: list[ChangeRecord] = field(default_factory=list)


def enqueue(
    uow: UnitOfWork,
    webhook_settings: WebhookSettings,
    *,
    now: datetime | None = None,
) -> EnqueueReport:
    """Turn the changes after each active subscription's cursor that pass its filter into
    deliveries of at most ``batch_size`` changes, advance every cursor past all it scanned,
    and commit: one transaction, so a crash never loses a batch nor makes one twice.

    The feed is read once for all subscriptions, from the lowest cursor; ownership (for owner
    filters) is read once per call. Like every reader of the pull feed, this relies on change
    ids becoming visible in order, which holds while one sync at a time stores a snapshot (the
    daemon's leader lease; ``ConcurrentSync``).
    """
    at = now or datetime.now(UTC)
    repo = uow.webhooks
    subs = repo.lock_active()
    if not subs:
        return EnqueueReport()
    states = [_Pending(s, WebhookFilter.of(s.filters), s.cursor, s.cursor) for s in subs]
    resolver: OwnerResolver | None = None
    position = min(s.cursor for s in subs)
    scanned = deliveries = matched = 0
    while True:
        page = uow.registry.changes_since(position, SCAN_PAGE)
        if not page:
            break
        if resolver is None and any(s.match.needs_owners for s in states):
            resolver = _owner_resolver(uow)
        for change in page:
            if resolver is not None:
                resolver.learn(change)
        owners = resolver if resolver is not None else _no_owners
        for state in states:
            for change in page:
                if change.cursor <= state.position:
                    continue
                state.position = change.cursor
                if not state.match.matches(change, owners):
                    continue
                state.batch.append(change)
                if len(state.batch) >= webhook_settings.batch_size:
                    matched += _emit(uow, state, at)
                    deliveries += 1
        scanned += len(page)
        position = page[-1].cursor
    for state in states:
        if state.batch:
            matched += _emit(uow, state, at)
            deliveries += 1
        if state.position != state.sub.cursor:
            repo.advance(state.sub.id, state.position)
    uow.commit()
    if deliveries:
        logger.info(
            "Enqueued %d webhook deliveries (%d changes) from %d changes scanned",
            deliveries,
            matched,
            scanned,
        )
    return EnqueueReport(scanned=scanned, deliveries=deliveries, changes=matched)


def _no_owners(_change: ChangeRecord) -> set[str]:
    return set()


def _owner_resolver(uow: UnitOfWork) -> OwnerResolver:
    snapshot = uow.registry.current_snapshot()
    if snapshot is None:
        return OwnerResolver(OwnerMap({}, {}, {}))
    return OwnerResolver(uow.webhooks.owner_map(snapshot.id))


def _emit(uow: UnitOfWork, state: _Pending, at: datetime) -> int:
    batch, state.batch = state.batch, []
    if state.sequence is None:
        state.sequence = uow.webhooks.last_sequence(state.sub.id)
    state.sequence += 1
    payload: dict[str, Any] = {
        "subscription": state.sub.name,
        "sequence": state.sequence,
        "cursor": state.range_start,
        "next_cursor": state.position,
        "snapshot_ids": sorted({c.snapshot_id for c in batch}),
        "changes": [
            {
                "cursor": c.cursor,
                "snapshot_id": c.snapshot_id,
                "entity": c.entity,
                "key": c.key,
                "gln": c.gln,
                "kind": c.kind,
                "details": c.details,
            }
            for c in batch
        ],
    }
    uow.webhooks.add_delivery(
        subscription_id=state.sub.id,
        created_at=at,
        first_change_id=batch[0].cursor,
        last_change_id=batch[-1].cursor,
        change_count=len(batch),
        payload=payload,
    )
    state.range_start = state.position
    return len(batch)
