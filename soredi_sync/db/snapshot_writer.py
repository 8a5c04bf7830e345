"""Storing a snapshot: close the versions it replaced, insert the new ones and its change events.

The one writer of the version tables (:meth:`SqlAlchemyRegistryRepository.add_snapshot` calls
it); it never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from itertools import repeat
from operator import add, attrgetter
from typing import Any

from sqlalchemy import ColumnElement, bindparam, insert, update
from sqlalchemy.orm import Session

from soredi_sync.db.bulk import bulk_insert
from soredi_sync.db.models import CapabilityVersion, ChangeEvent, GlnVersion, Snapshot, UnitVersion
from soredi_sync.db.versions import CAP_COLUMNS, GLN_COLUMNS, UNIT_COLUMNS, snapshot_info, table
from soredi_sync.domain.diff import ChangeKind, ChangeSet, EntityChanges, EntityKind
from soredi_sync.domain.model import Capability, Gln, Registry, Unit, record_fields
from soredi_sync.ports.records import SnapshotInfo

# Rows per executemany batch: large enough to amortise round trips, small enough to keep
# PostgreSQL's parameter limit and our memory far away.
BATCH = 5000


def _jsonable(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    return value


def _record_json(record: object) -> dict[str, object]:
    return {k: _jsonable(v) for k, v in record_fields(record).items()}


def _batched(rows: Iterable[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SnapshotWriter:
    """Writes one snapshot into the version tables of ``session``'s transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def write(
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
        """Store ``changes`` as the next snapshot: close replaced versions, insert new ones.

        ``changes`` must be the diff from the current snapshot to ``registry``; callers get
        that from :func:`soredi_sync.domain.diff.diff`. Nothing is committed here.
        """
        snapshot = Snapshot(
            source=source,
            taken_at=taken_at or datetime.now(UTC),
            source_date=registry.source_date,
            run_id=run_id,
            content_hash=content_hash,
            unit_count=len(registry.units),
            gln_count=len(registry.glns),
            capability_count=registry.capability_count,
            change_count=0 if baseline else len(changes),
            baseline=baseline,
        )
        self.session.add(snapshot)
        self.session.flush()
        sid = snapshot.id

        self._close(
            UnitVersion,
            (UnitVersion.sor_id == bindparam("k0"),),
            [(u.sor_id,) for u in changes.units.removed]
            + [(c.before.sor_id,) for c in changes.units.changed],
            sid,
        )
        self._close(
            GlnVersion,
            (GlnVersion.gln == bindparam("k0"),),
            [(g.gln,) for g in changes.glns.removed]
            + [(c.before.gln,) for c in changes.glns.changed],
            sid,
        )
        self._close(
            CapabilityVersion,
            (
                CapabilityVersion.gln == bindparam("k0"),
                CapabilityVersion.message_type == bindparam("k1"),
            ),
            [c.key for c in changes.capabilities.removed]
            + [c.before.key for c in changes.capabilities.changed],
            sid,
        )

        self._insert(
            UnitVersion,
            UNIT_COLUMNS,
            [*changes.units.added, *(c.after for c in changes.units.changed)],
            sid,
        )
        self._insert(
            GlnVersion,
            GLN_COLUMNS,
            [*changes.glns.added, *(c.after for c in changes.glns.changed)],
            sid,
        )
        self._insert(
            CapabilityVersion,
            CAP_COLUMNS,
            [*changes.capabilities.added, *(c.after for c in changes.capabilities.changed)],
            sid,
        )
        if not baseline:
            self._insert_change_events(changes, sid)
        return snapshot_info(snapshot)

    def _close(
        self,
        model: type[UnitVersion | GlnVersion | CapabilityVersion],
        key_clauses: Sequence[ColumnElement[bool]],
        keys: Sequence[tuple[str, ...]],
        snapshot_id: int,
    ) -> None:
        if not keys:
            return
        stmt = (
            update(table(model))
            .where(*key_clauses, table(model).c.valid_to.is_(None))
            .values(valid_to=snapshot_id)
        )
        rows = ({f"k{i}": part for i, part in enumerate(key)} for key in keys)
        for batch in _batched(rows):
            self.session.execute(stmt, batch)

    def _insert(
        self,
        model: type[UnitVersion | GlnVersion | CapabilityVersion],
        columns: tuple[str, ...],
        records: Sequence[Unit | Gln | Capability],
        snapshot_id: int,
    ) -> None:
        if not records:
            return
        # Rows are built without a Python frame per row: the record's values (one tuple from
        # attrgetter) plus the snapshot id, valid_from last.
        rows = map(add, map(attrgetter(*columns), records), repeat((snapshot_id,)))
        bulk_insert(self.session, table(model), (*columns, "valid_from"), rows)

    def _insert_change_events(self, changes: ChangeSet, snapshot_id: int) -> None:
        def events() -> Iterator[dict[str, Any]]:
            groups: tuple[tuple[EntityKind, EntityChanges[Any]], ...] = (
                (EntityKind.UNIT, changes.units),
                (EntityKind.GLN, changes.glns),
                (EntityKind.CAPABILITY, changes.capabilities),
            )
            for entity, records in groups:
                for rec in records.added:
                    yield _event(
                        snapshot_id, entity, rec, ChangeKind.ADDED, {"after": _record_json(rec)}
                    )
                for rec in records.removed:
                    yield _event(
                        snapshot_id, entity, rec, ChangeKind.REMOVED, {"before": _record_json(rec)}
                    )
                for ch in records.changed:
                    fields = {
                        name: [_jsonable(old), _jsonable(new)]
                        for name, (old, new) in ch.field_changes().items()
                    }
                    yield _event(
                        snapshot_id, entity, ch.after, ChangeKind.CHANGED, {"fields": fields}
                    )

        stmt = insert(table(ChangeEvent))
        for batch in _batched(events()):
            self.session.execute(stmt, batch)


def _identity(record: Unit | Gln | Capability) -> tuple[str, str | None]:
    """The feed's key for a record and the GLN it concerns."""
    if isinstance(record, Unit):
        return record.sor_id, record.gln
    if isinstance(record, Gln):
        return record.gln, record.gln
    return f"{record.gln}:{record.message_type}", record.gln


def _event(
    snapshot_id: int,
    entity: EntityKind,
    record: Unit | Gln | Capability,
    kind: ChangeKind,
    details: dict[str, Any],
) -> dict[str, Any]:
    key, gln = _identity(record)
    return {
        "snapshot_id": snapshot_id,
        "entity": entity.value,
        "key": key,
        "gln": gln,
        "kind": kind.value,
        "details": details,
    }
