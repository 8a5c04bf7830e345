"""Read-side use cases: status, a unit or GLN now or on a date, history, the change feed.

Every answer is read as of one snapshot id, so it never mixes two snapshots.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.db.repository import (
    ChangeRecord,
    SnapshotInfo,
    SyncRunInfo,
    VersionSpan,
)
from soredi_sync.db.unit_of_work import UnitOfWork
from soredi_sync.domain.model import (
    Capability,
    EffectiveGln,
    Gln,
    GlnMode,
    Unit,
    effective_gln,
)
from soredi_sync.errors import NoSnapshot, NotFound


@dataclass(frozen=True)
class Status:
    current: SnapshotInfo | None
    runs: list[SyncRunInfo]
    data_age_seconds: float | None
    last_change_cursor: int


@dataclass(frozen=True)
class UnitView:
    snapshot: SnapshotInfo
    unit: Unit
    effective: EffectiveGln
    ancestors: list[Unit]  # parent first, up to the institution owner
    children: list[Unit]
    gln: Gln | None
    message_types: list[Capability] = field(default_factory=list)


@dataclass(frozen=True)
class GlnView:
    snapshot: SnapshotInfo
    gln: Gln
    message_types: list[Capability]
    owners: list[Unit]  # units carrying the GLN themselves
    inheritors: list[Unit]  # units that reach it through EntityInheritedIndicator


@dataclass(frozen=True)
class GlnHistory:
    gln: str
    versions: list[VersionSpan]
    capabilities: list[VersionSpan]
    snapshots: dict[int, SnapshotInfo]


def _snapshot_for(uow: UnitOfWork, at: date | None) -> SnapshotInfo:
    if at is None:
        snapshot = uow.registry.current_snapshot()
        if snapshot is None:
            raise NoSnapshot()
        return snapshot
    snapshot = uow.registry.snapshot_on(at)
    if snapshot is None:
        raise NotFound("snapshot on or before", at.isoformat())
    return snapshot


def status(uow: UnitOfWork, runs: int = 10) -> Status:
    current, cursor = uow.registry.current_snapshot_and_cursor()
    return Status(
        current=current,
        runs=uow.runs.recent(runs),
        data_age_seconds=current.age_seconds(datetime.now(UTC)) if current else None,
        last_change_cursor=cursor,
    )


def show_unit(uow: UnitOfWork, sor_id: str, at: date | None = None) -> UnitView:
    snapshot = _snapshot_for(uow, at)
    unit = uow.registry.get_unit(sor_id, snapshot.id)
    if unit is None:
        raise NotFound("unit", sor_id)
    ancestors: list[Unit] = []
    seen = {unit.sor_id}
    parent_id = unit.parent_sor_id
    while parent_id is not None and parent_id not in seen:
        parent = uow.registry.get_unit(parent_id, snapshot.id)
        if parent is None:
            break
        ancestors.append(parent)
        seen.add(parent_id)
        parent_id = parent.parent_sor_id
    chain = {u.sor_id: u for u in [unit, *ancestors]}
    effective = effective_gln(chain, unit.sor_id)
    gln = uow.registry.get_gln(effective.gln, snapshot.id) if effective.gln else None
    caps = uow.registry.capabilities_of(effective.gln, snapshot.id) if effective.gln else []
    return UnitView(
        snapshot=snapshot,
        unit=unit,
        effective=effective,
        ancestors=ancestors,
        children=uow.registry.children_of(sor_id, snapshot.id),
        gln=gln,
        message_types=caps,
    )


def show_gln(uow: UnitOfWork, gln: str, at: date | None = None) -> GlnView:
    snapshot = _snapshot_for(uow, at)
    record = uow.registry.get_gln(gln, snapshot.id)
    if record is None:
        raise NotFound("GLN", gln)
    owners = uow.registry.units_owning(gln, snapshot.id)
    inheritors: list[Unit] = []
    frontier = [u.sor_id for u in owners]
    seen = set(frontier)
    while frontier:
        parent_id = frontier.pop()
        for child in uow.registry.children_of(parent_id, snapshot.id):
            if child.gln_mode is GlnMode.INHERITED and child.sor_id not in seen:
                seen.add(child.sor_id)
                inheritors.append(child)
                frontier.append(child.sor_id)
    return GlnView(
        snapshot=snapshot,
        gln=record,
        message_types=uow.registry.capabilities_of(gln, snapshot.id),
        owners=owners,
        inheritors=sorted(inheritors, key=lambda u: u.sor_id),
    )


def gln_history(uow: UnitOfWork, gln: str) -> GlnHistory:
    versions, capabilities = uow.registry.gln_history(gln)
    if not versions and not capabilities:
        raise NotFound("GLN", gln)
    ids = {v.valid_from for v in versions + capabilities} | {
        v.valid_to for v in versions + capabilities if v.valid_to is not None
    }
    snapshots = {i: s for i in ids if (s := uow.registry.get_snapshot(i)) is not None}
    return GlnHistory(gln, versions, capabilities, snapshots)


def changes_since(uow: UnitOfWork, cursor: int, limit: int = 1000) -> list[ChangeRecord]:
    # Only whole snapshots are served: the feed stops at the current snapshot's last event.
    current = uow.registry.current_snapshot()
    if current is None:
        return []
    return uow.registry.changes_since(cursor, limit, up_to_snapshot=current.id)


def jsonable(value: Any) -> Any:
    """Dataclasses, dates and enums as JSON-ready values, for ``--json`` output."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value
