"""In-memory twin of the registry repository: each snapshot kept as the :class:`Registry` it
stores, and the change feed derived from the :class:`ChangeSet` as the database's writer does.

Part of the fakes of :mod:`soredi_sync.ports.fakes` (whose unit of work holds it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.diff import ChangeKind, ChangeSet, EntityKind
from soredi_sync.domain.model import Capability, Gln, Registry, Unit, record_fields
from soredi_sync.ports.records import ChangeRecord, SnapshotInfo, VersionSpan

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class FakeRegistryRepository:
    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self.snapshots: dict[int, SnapshotInfo] = {}
        self.registries: dict[int, Registry] = {}
        self.changes: list[ChangeRecord] = []
        self.locks = 0

    def lock_snapshots(self) -> None:
        self.locks += 1

    def current_snapshot(self) -> SnapshotInfo | None:
        return self.snapshots[max(self.snapshots)] if self.snapshots else None

    def current_snapshot_and_cursor(self) -> tuple[SnapshotInfo | None, int]:
        current = self.current_snapshot()
        if current is None:
            return None, self.last_cursor()
        return current, max(
            (c.cursor for c in self.changes if c.snapshot_id <= current.id), default=0
        )

    def get_snapshot(self, snapshot_id: int) -> SnapshotInfo | None:
        return self.snapshots.get(snapshot_id)

    def snapshot_on(self, day: date) -> SnapshotInfo | None:
        earlier = [s for s in self.snapshots.values() if s.effective_date <= day]
        return max(earlier, key=lambda s: s.id, default=None)

    def list_snapshots(self, limit: int = 20) -> list[SnapshotInfo]:
        return [self.snapshots[i] for i in sorted(self.snapshots, reverse=True)[:limit]]

    def load_registry(self, snapshot_id: int) -> Registry:
        return self.registries.get(snapshot_id) or Registry.build((), (), ())

    def get_unit(self, sor_id: str, snapshot_id: int) -> Unit | None:
        return self.load_registry(snapshot_id).units.get(sor_id)

    def get_gln(self, gln: str, snapshot_id: int) -> Gln | None:
        return self.load_registry(snapshot_id).glns.get(gln)

    def capabilities_of(self, gln: str, snapshot_id: int) -> list[Capability]:
        by_type = self.load_registry(snapshot_id).capabilities.get(gln, {})
        return [by_type[t] for t in sorted(by_type)]

    def children_of(self, sor_id: str, snapshot_id: int) -> list[Unit]:
        units = self.load_registry(snapshot_id).units.values()
        return sorted((u for u in units if u.parent_sor_id == sor_id), key=lambda u: u.sor_id)

    def units_owning(self, gln: str, snapshot_id: int) -> list[Unit]:
        units = self.load_registry(snapshot_id).units.values()
        return sorted((u for u in units if u.gln == gln), key=lambda u: u.sor_id)

    def search_units(
        self,
        fragment: str,
        snapshot_id: int,
        *,
        owners: Collection[str] | None = None,
        limit: int = 50,
    ) -> list[Unit]:
        wanted = fragment.casefold()
        found = (
            u
            for u in self.load_registry(snapshot_id).units.values()
            if wanted in u.name.casefold() and (owners is None or u.owner_sor_id in owners)
        )
        return sorted(found, key=lambda u: (u.name, u.sor_id))[:limit]

    def gln_history(self, gln: str) -> tuple[list[VersionSpan], list[VersionSpan]]:
        def spans(versions: Callable[[Registry], Iterable[Unit | Gln | Capability]]) -> list[Any]:
            open_: dict[object, VersionSpan] = {}
            done: list[VersionSpan] = []
            for sid in sorted(self.registries):
                now = {_key(r): r for r in versions(self.registries[sid])}
                for key, span in list(open_.items()):
                    if now.get(key) != span.record:
                        done.append(replace(span, valid_to=sid))
                        del open_[key]
                for key, record in now.items():
                    open_.setdefault(key, VersionSpan(record, sid, None))
            return sorted([*done, *open_.values()], key=lambda s: (s.valid_from, _key(s.record)))

        return (
            spans(lambda r: [r.glns[gln]] if gln in r.glns else []),
            spans(lambda r: r.capabilities.get(gln, {}).values()),
        )

    def unit_history(self, sor_id: str) -> list[VersionSpan]:
        spans: list[VersionSpan] = []
        for sid in sorted(self.registries):
            unit = self.registries[sid].units.get(sor_id)
            last = spans[-1] if spans else None
            if last is not None and last.valid_to is None and last.record != unit:
                spans[-1] = replace(last, valid_to=sid)
            if unit is not None and (not spans or spans[-1].valid_to is not None):
                spans.append(VersionSpan(unit, sid, None))
        return spans

    def changes_since(
        self, cursor: int, limit: int = 1000, up_to_snapshot: int | None = None
    ) -> list[ChangeRecord]:
        found = (
            c
            for c in self.changes
            if c.cursor > cursor and (up_to_snapshot is None or c.snapshot_id <= up_to_snapshot)
        )
        return list(itertools.islice(found, limit))

    def last_cursor(self) -> int:
        return self.changes[-1].cursor if self.changes else 0

    def add_snapshot(
        self,
        registry: Registry,
        changes: ChangeSet,
        *,
        run_id: int,
        source: str,
        content_hash: str,
        baseline: bool,
        taken_at: datetime | None = None,
    ) -> SnapshotInfo:
        sid = max(self.snapshots, default=0) + 1
        info = SnapshotInfo(
            id=sid,
            source=source,
            taken_at=taken_at or self._clock(),
            source_date=registry.source_date,
            run_id=run_id,
            content_hash=content_hash,
            unit_count=len(registry.units),
            gln_count=len(registry.glns),
            capability_count=registry.capability_count,
            change_count=0 if baseline else len(changes),
            baseline=baseline,
        )
        self.snapshots[sid] = info
        self.registries[sid] = registry
        if not baseline:
            start = self.last_cursor()
            self.changes.extend(
                ChangeRecord(start + n, sid, *event)
                for n, event in enumerate(_events(changes), start=1)
            )
        return info


def _key(record: Unit | Gln | Capability) -> object:
    if isinstance(record, Unit):
        return record.sor_id
    if isinstance(record, Gln):
        return record.gln
    return record.key


def _events(changes: ChangeSet) -> Iterator[tuple[str, str, str | None, str, dict[str, Any]]]:
    """(entity, key, gln, kind, details) of each change, as the feed stores them."""

    def json(record: object) -> dict[str, object]:
        return {k: _jsonable(v) for k, v in record_fields(record).items()}

    groups: tuple[tuple[EntityKind, Any], ...] = (
        (EntityKind.UNIT, changes.units),
        (EntityKind.GLN, changes.glns),
        (EntityKind.CAPABILITY, changes.capabilities),
    )
    for entity, records in groups:
        for rec in records.added:
            yield (entity.value, *_identity(rec), ChangeKind.ADDED.value, {"after": json(rec)})
        for rec in records.removed:
            yield (entity.value, *_identity(rec), ChangeKind.REMOVED.value, {"before": json(rec)})
        for ch in records.changed:
            fields = {
                name: [_jsonable(old), _jsonable(new)]
                for name, (old, new) in ch.field_changes().items()
            }
            yield (entity.value, *_identity(ch.after), ChangeKind.CHANGED.value, {"fields": fields})


def _identity(record: Unit | Gln | Capability) -> tuple[str, str | None]:
    if isinstance(record, Unit):
        return record.sor_id, record.gln
    if isinstance(record, Gln):
        return record.gln, record.gln
    return f"{record.gln}:{record.message_type}", record.gln


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
