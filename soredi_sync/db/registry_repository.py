"""The registry repository: snapshots, the registry as of a snapshot, history and the change feed.

It speaks the domain's language and never commits: the use case owns the transaction
(:mod:`soredi_sync.db.unit_of_work`). Storing a snapshot is :mod:`soredi_sync.db.snapshot_writer`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from soredi_sync.db.engine import SQLITE_BEGIN_IMMEDIATE
from soredi_sync.db.models import CapabilityVersion, ChangeEvent, GlnVersion, Snapshot, UnitVersion
from soredi_sync.db.snapshot_writer import SnapshotWriter
from soredi_sync.db.versions import (
    CAP_COLUMNS,
    GLN_COLUMNS,
    STREAM_ROWS,
    UNIT_COLUMNS,
    as_of,
    cap_from_row,
    gln_from_row,
    snapshot_info,
    table,
    unit_from_row,
)
from soredi_sync.domain.diff import ChangeSet
from soredi_sync.domain.model import Capability, Gln, Registry, Unit
from soredi_sync.memory import cyclic_gc_paused
from soredi_sync.ports.records import ChangeRecord, SnapshotInfo, VersionSpan

# The PostgreSQL advisory lock every writer of snapshots holds while it stores one
# (:meth:`SqlAlchemyRegistryRepository.lock_snapshots`): "SORSNAP" in ASCII, one key for the
# project, so it cannot meet another application's lock on a shared server by accident.
SNAPSHOT_LOCK_KEY = 0x534F52534E4150


class SqlAlchemyRegistryRepository:
    """Snapshots and the versioned registry in the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- snapshots -------------------------------------------------------------------------

    def lock_snapshots(self) -> None:
        """Wait for, then hold until this transaction ends, the one lock every writer of
        snapshots takes (full syncs, the feed, on every replica and CLI process).

        Call it first in the unit of work, then re-read :meth:`current_snapshot`: whatever
        another writer committed before is visible, and nothing can commit a snapshot until
        this transaction ends. PostgreSQL: a transaction-level advisory lock. SQLite: the
        transaction starts with ``BEGIN IMMEDIATE`` (the database's write lock).
        """
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            self.session.execute(select(func.pg_advisory_xact_lock(SNAPSHOT_LOCK_KEY)))
        elif dialect == "sqlite":
            self.session.connection(execution_options={SQLITE_BEGIN_IMMEDIATE: True})

    def current_snapshot(self) -> SnapshotInfo | None:
        row = self.session.scalars(select(Snapshot).order_by(Snapshot.id.desc()).limit(1)).first()
        return snapshot_info(row) if row else None

    def current_snapshot_and_cursor(self) -> tuple[SnapshotInfo | None, int]:
        """The current snapshot and the change cursor it ends at, in one statement.

        The cursor is the last change event of that snapshot or an earlier one, so a sync that
        commits between two reads can never pair snapshot N with N+1's events: a mirror that
        stores the pair and asks for ``changes?cursor=`` next misses nothing.
        """
        last_event = (
            select(func.coalesce(func.max(ChangeEvent.id), 0))
            .where(ChangeEvent.snapshot_id <= Snapshot.id)
            .correlate(Snapshot)
            .scalar_subquery()
        )
        row = self.session.execute(
            select(Snapshot, last_event).order_by(Snapshot.id.desc()).limit(1)
        ).first()
        if row is None:
            return None, self.last_cursor()
        return snapshot_info(row[0]), int(row[1])

    def get_snapshot(self, snapshot_id: int) -> SnapshotInfo | None:
        row = self.session.get(Snapshot, snapshot_id)
        return snapshot_info(row) if row else None

    def snapshot_on(self, day: date) -> SnapshotInfo | None:
        """The last snapshot describing ``day`` or earlier (by its source date)."""
        effective = func.coalesce(Snapshot.source_date, func.date(Snapshot.taken_at))
        row = self.session.scalars(
            select(Snapshot).where(effective <= day).order_by(Snapshot.id.desc()).limit(1)
        ).first()
        return snapshot_info(row) if row else None

    def list_snapshots(self, limit: int = 20) -> list[SnapshotInfo]:
        rows = self.session.scalars(select(Snapshot).order_by(Snapshot.id.desc()).limit(limit))
        return [snapshot_info(r) for r in rows]

    # -- reads as of a snapshot --------------------------------------------------------------

    def load_registry(self, snapshot_id: int) -> Registry:
        """The whole registry as it was at ``snapshot_id``.

        Rows are streamed (a national registry is half a million of them) and repeated strings
        are shared, so the result costs about what a freshly parsed registry costs.
        """
        with cyclic_gc_paused():
            return self._load_registry(snapshot_id)

    def _load_registry(self, snapshot_id: int) -> Registry:
        unit_table = table(UnitVersion)
        gln_table = table(GlnVersion)
        cap_table = table(CapabilityVersion)
        units = [
            unit_from_row(r)
            for r in self._stream(
                select(*(unit_table.c[n] for n in UNIT_COLUMNS)).where(
                    as_of(UnitVersion, snapshot_id)
                )
            )
        ]
        glns = [
            gln_from_row(r)
            for r in self._stream(
                select(*(gln_table.c[n] for n in GLN_COLUMNS)).where(as_of(GlnVersion, snapshot_id))
            )
        ]
        shared: dict[str | None, str | None] = {None: None}
        caps = (
            Capability(
                shared.setdefault(gln, gln),  # type: ignore[arg-type]
                shared.setdefault(message_type, message_type),  # type: ignore[arg-type]
                shared.setdefault(version_code, version_code),
            )
            for gln, message_type, version_code in self._stream(
                select(*(cap_table.c[n] for n in CAP_COLUMNS)).where(
                    as_of(CapabilityVersion, snapshot_id)
                )
            )
        )
        info = self.get_snapshot(snapshot_id)
        return Registry.build(units, glns, caps, source_date=info.source_date if info else None)

    def _stream(self, query: Select[Any]) -> Iterator[Any]:
        result = self.session.execute(query.execution_options(yield_per=STREAM_ROWS))
        yield from result

    def get_unit(self, sor_id: str, snapshot_id: int) -> Unit | None:
        row = self.session.scalars(
            select(UnitVersion).where(UnitVersion.sor_id == sor_id, as_of(UnitVersion, snapshot_id))
        ).first()
        return unit_from_row(row) if row else None

    def get_gln(self, gln: str, snapshot_id: int) -> Gln | None:
        row = self.session.scalars(
            select(GlnVersion).where(GlnVersion.gln == gln, as_of(GlnVersion, snapshot_id))
        ).first()
        return gln_from_row(row) if row else None

    def capabilities_of(self, gln: str, snapshot_id: int) -> list[Capability]:
        rows = self.session.scalars(
            select(CapabilityVersion)
            .where(CapabilityVersion.gln == gln, as_of(CapabilityVersion, snapshot_id))
            .order_by(CapabilityVersion.message_type)
        )
        return [cap_from_row(r) for r in rows]

    def children_of(self, sor_id: str, snapshot_id: int) -> list[Unit]:
        rows = self.session.scalars(
            select(UnitVersion)
            .where(UnitVersion.parent_sor_id == sor_id, as_of(UnitVersion, snapshot_id))
            .order_by(UnitVersion.sor_id)
        )
        return [unit_from_row(r) for r in rows]

    def units_owning(self, gln: str, snapshot_id: int) -> list[Unit]:
        rows = self.session.scalars(
            select(UnitVersion)
            .where(UnitVersion.gln == gln, as_of(UnitVersion, snapshot_id))
            .order_by(UnitVersion.sor_id)
        )
        return [unit_from_row(r) for r in rows]

    def search_units(
        self,
        fragment: str,
        snapshot_id: int,
        *,
        owners: Collection[str] | None = None,
        limit: int = 50,
    ) -> list[Unit]:
        """Units whose name contains ``fragment`` (any case), by name; with ``owners``, only
        units of those institution owners; at most ``limit``.

        No index serves a fragment: it scans the snapshot's units, about 20 ms on the national
        profile (73,000 units).
        """
        spellings = {fragment}
        if not fragment.isascii() and self.session.get_bind().dialect.name == "sqlite":
            # SQLite folds the case of ASCII letters only: try the usual spellings of the rest.
            spellings |= {
                fragment.lower(),
                fragment.upper(),
                fragment.capitalize(),
                fragment.title(),
            }
        query = select(UnitVersion).where(
            as_of(UnitVersion, snapshot_id),
            or_(*(UnitVersion.name.icontains(s, autoescape=True) for s in sorted(spellings))),
        )
        if owners is not None:
            query = query.where(UnitVersion.owner_sor_id.in_(sorted(owners)))
        rows = self.session.scalars(
            query.order_by(UnitVersion.name, UnitVersion.sor_id).limit(limit)
        )
        return [unit_from_row(r) for r in rows]

    # -- history ----------------------------------------------------------------------------

    def gln_history(self, gln: str) -> tuple[list[VersionSpan], list[VersionSpan]]:
        """Every stored version of a GLN and of its capabilities, oldest first."""
        gln_rows = self.session.scalars(
            select(GlnVersion).where(GlnVersion.gln == gln).order_by(GlnVersion.valid_from)
        )
        cap_rows = self.session.scalars(
            select(CapabilityVersion)
            .where(CapabilityVersion.gln == gln)
            .order_by(CapabilityVersion.valid_from, CapabilityVersion.message_type)
        )
        return (
            [VersionSpan(gln_from_row(r), r.valid_from, r.valid_to) for r in gln_rows],
            [VersionSpan(cap_from_row(r), r.valid_from, r.valid_to) for r in cap_rows],
        )

    def unit_history(self, sor_id: str) -> list[VersionSpan]:
        """Every stored version of a unit, oldest first."""
        rows = self.session.scalars(
            select(UnitVersion).where(UnitVersion.sor_id == sor_id).order_by(UnitVersion.valid_from)
        )
        return [VersionSpan(unit_from_row(r), r.valid_from, r.valid_to) for r in rows]

    def changes_since(
        self, cursor: int, limit: int = 1000, up_to_snapshot: int | None = None
    ) -> list[ChangeRecord]:
        """Change events after ``cursor`` in cursor order (the feed's contract)."""
        query = select(ChangeEvent).where(ChangeEvent.id > cursor)
        if up_to_snapshot is not None:
            query = query.where(ChangeEvent.snapshot_id <= up_to_snapshot)
        rows = self.session.scalars(query.order_by(ChangeEvent.id).limit(limit))
        return [
            ChangeRecord(r.id, r.snapshot_id, r.entity, r.key, r.gln, r.kind, dict(r.details))
            for r in rows
        ]

    def last_cursor(self) -> int:
        return self.session.scalar(select(func.coalesce(func.max(ChangeEvent.id), 0))) or 0

    # -- writes -------------------------------------------------------------------------------

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
        """Store ``changes`` as the next snapshot (:meth:`SnapshotWriter.write`)."""
        return SnapshotWriter(self.session).write(
            registry,
            changes,
            run_id=run_id,
            source=source,
            content_hash=content_hash,
            baseline=baseline,
            taken_at=taken_at,
        )
