"""Repositories: the registry's versions, snapshots, the change feed and sync runs.

They speak the domain's language and never commit: the use case owns the transaction
(:mod:`soredi_sync.db.unit_of_work`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from soredi_sync.db.bulk import bulk_insert
from soredi_sync.db.engine import SQLITE_BEGIN_IMMEDIATE
from soredi_sync.db.models import (
    Base,
    CapabilityVersion,
    ChangeEvent,
    GlnVersion,
    LeaderLease,
    RunStatus,
    Snapshot,
    SyncRun,
    UnitVersion,
)
from soredi_sync.domain.diff import ChangeKind, ChangeSet, EntityChanges, EntityKind
from soredi_sync.domain.model import (
    Capability,
    Gln,
    GlnMode,
    Registry,
    Unit,
    UnitKind,
    record_fields,
)
from soredi_sync.memory import cyclic_gc_paused

# The PostgreSQL advisory lock every writer of snapshots holds while it stores one
# (:meth:`SqlAlchemyRegistryRepository.lock_snapshots`): "SORSNAP" in ASCII, one key for the
# project, so it cannot meet another application's lock on a shared server by accident.
SNAPSHOT_LOCK_KEY = 0x534F52534E4150
# Rows per executemany batch: large enough to amortise round trips, small enough to keep
# PostgreSQL's parameter limit and our memory far away.
BATCH = 5000
# Rows fetched at a time when reading a whole snapshot.
STREAM_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    id: int
    source: str
    taken_at: datetime
    source_date: date | None
    run_id: int
    content_hash: str
    unit_count: int
    gln_count: int
    capability_count: int
    change_count: int
    baseline: bool

    @property
    def effective_date(self) -> date:
        """The day the snapshot describes: the source's SnapshotDate, else the day it was taken."""
        return self.source_date or self.taken_at.date()

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.taken_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    cursor: int
    snapshot_id: int
    entity: str
    key: str
    gln: str | None
    kind: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VersionSpan:
    """One stored version of a record and the snapshots it was valid for."""

    record: Unit | Gln | Capability
    valid_from: int
    valid_to: int | None


@dataclass(frozen=True, slots=True)
class SyncRunInfo:
    id: int
    source: str
    location: str
    trigger: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    etags: dict[str, Any]
    last_modified: dict[str, Any]
    content_hashes: dict[str, Any]
    counts: dict[str, Any]
    accepted_mass_change: bool
    snapshot_id: int | None
    error: str | None


def _snapshot_info(row: Snapshot) -> SnapshotInfo:
    return SnapshotInfo(
        id=row.id,
        source=row.source,
        taken_at=row.taken_at,
        source_date=row.source_date,
        run_id=row.run_id,
        content_hash=row.content_hash,
        unit_count=row.unit_count,
        gln_count=row.gln_count,
        capability_count=row.capability_count,
        change_count=row.change_count,
        baseline=row.baseline,
    )


def _run_info(row: SyncRun) -> SyncRunInfo:
    return SyncRunInfo(
        id=row.id,
        source=row.source,
        location=row.location,
        trigger=row.trigger,
        status=RunStatus(row.status),
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_seconds=row.duration_seconds,
        etags=dict(row.etags or {}),
        last_modified=dict(row.last_modified or {}),
        content_hashes=dict(row.content_hashes or {}),
        counts=dict(row.counts or {}),
        accepted_mass_change=row.accepted_mass_change,
        snapshot_id=row.snapshot_id,
        error=row.error,
    )


# Version-table columns carry the record fields under the same names.
_UNIT_COLUMNS = tuple(f.name for f in fields(Unit))
_GLN_COLUMNS = tuple(f.name for f in fields(Gln))
_CAP_COLUMNS = tuple(f.name for f in fields(Capability))


def _unit_from_row(row: Any) -> Unit:
    return Unit(
        sor_id=row.sor_id,
        name=row.name,
        kind=UnitKind(row.kind),
        parent_sor_id=row.parent_sor_id,
        owner_sor_id=row.owner_sor_id,
        type_code=row.type_code,
        gln_mode=GlnMode(row.gln_mode),
        gln=row.gln,
        from_date=row.from_date,
        to_date=row.to_date,
        shak=row.shak,
        provider_number=row.provider_number,
        pharmacy_number=row.pharmacy_number,
        postal_code=row.postal_code,
    )


def _gln_from_row(row: Any) -> Gln:
    return Gln(**{name: getattr(row, name) for name in _GLN_COLUMNS})


def _cap_from_row(row: Any) -> Capability:
    return Capability(row.gln, row.message_type, row.version_code)


def _as_of(model: type[UnitVersion | GlnVersion | CapabilityVersion], snapshot_id: int) -> Any:
    """Rows valid at ``snapshot_id``: introduced at or before it, not closed at or before it."""
    return and_(
        model.valid_from <= snapshot_id,
        or_(model.valid_to.is_(None), model.valid_to > snapshot_id),
    )


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
        return _snapshot_info(row) if row else None

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
        return _snapshot_info(row[0]), int(row[1])

    def get_snapshot(self, snapshot_id: int) -> SnapshotInfo | None:
        row = self.session.get(Snapshot, snapshot_id)
        return _snapshot_info(row) if row else None

    def snapshot_on(self, day: date) -> SnapshotInfo | None:
        """The last snapshot describing ``day`` or earlier (by its source date)."""
        effective = func.coalesce(Snapshot.source_date, func.date(Snapshot.taken_at))
        row = self.session.scalars(
            select(Snapshot).where(effective <= day).order_by(Snapshot.id.desc()).limit(1)
        ).first()
        return _snapshot_info(row) if row else None

    def list_snapshots(self, limit: int = 20) -> list[SnapshotInfo]:
        rows = self.session.scalars(select(Snapshot).order_by(Snapshot.id.desc()).limit(limit))
        return [_snapshot_info(r) for r in rows]

    # -- reads as of a snapshot --------------------------------------------------------------

    def load_registry(self, snapshot_id: int) -> Registry:
        """The whole registry as it was at ``snapshot_id``.

        Rows are streamed (a national registry is half a million of them) and repeated strings
        are shared, so the result costs about what a freshly parsed registry costs.
        """
        with cyclic_gc_paused():
            return self._load_registry(snapshot_id)

    def _load_registry(self, snapshot_id: int) -> Registry:
        unit_table = _table(UnitVersion)
        gln_table = _table(GlnVersion)
        cap_table = _table(CapabilityVersion)
        units = [
            _unit_from_row(r)
            for r in self._stream(
                select(*(unit_table.c[n] for n in _UNIT_COLUMNS)).where(
                    _as_of(UnitVersion, snapshot_id)
                )
            )
        ]
        glns = [
            _gln_from_row(r)
            for r in self._stream(
                select(*(gln_table.c[n] for n in _GLN_COLUMNS)).where(
                    _as_of(GlnVersion, snapshot_id)
                )
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
                select(*(cap_table.c[n] for n in _CAP_COLUMNS)).where(
                    _as_of(CapabilityVersion, snapshot_id)
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
            select(UnitVersion).where(
                UnitVersion.sor_id == sor_id, _as_of(UnitVersion, snapshot_id)
            )
        ).first()
        return _unit_from_row(row) if row else None

    def get_gln(self, gln: str, snapshot_id: int) -> Gln | None:
        row = self.session.scalars(
            select(GlnVersion).where(GlnVersion.gln == gln, _as_of(GlnVersion, snapshot_id))
        ).first()
        return _gln_from_row(row) if row else None

    def capabilities_of(self, gln: str, snapshot_id: int) -> list[Capability]:
        rows = self.session.scalars(
            select(CapabilityVersion)
            .where(CapabilityVersion.gln == gln, _as_of(CapabilityVersion, snapshot_id))
            .order_by(CapabilityVersion.message_type)
        )
        return [_cap_from_row(r) for r in rows]

    def children_of(self, sor_id: str, snapshot_id: int) -> list[Unit]:
        rows = self.session.scalars(
            select(UnitVersion)
            .where(UnitVersion.parent_sor_id == sor_id, _as_of(UnitVersion, snapshot_id))
            .order_by(UnitVersion.sor_id)
        )
        return [_unit_from_row(r) for r in rows]

    def units_owning(self, gln: str, snapshot_id: int) -> list[Unit]:
        rows = self.session.scalars(
            select(UnitVersion)
            .where(UnitVersion.gln == gln, _as_of(UnitVersion, snapshot_id))
            .order_by(UnitVersion.sor_id)
        )
        return [_unit_from_row(r) for r in rows]

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
            [VersionSpan(_gln_from_row(r), r.valid_from, r.valid_to) for r in gln_rows],
            [VersionSpan(_cap_from_row(r), r.valid_from, r.valid_to) for r in cap_rows],
        )

    def unit_history(self, sor_id: str) -> list[VersionSpan]:
        rows = self.session.scalars(
            select(UnitVersion).where(UnitVersion.sor_id == sor_id).order_by(UnitVersion.valid_from)
        )
        return [VersionSpan(_unit_from_row(r), r.valid_from, r.valid_to) for r in rows]

    # -- change feed --------------------------------------------------------------------------

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
            _UNIT_COLUMNS,
            [*changes.units.added, *(c.after for c in changes.units.changed)],
            sid,
        )
        self._insert(
            GlnVersion,
            _GLN_COLUMNS,
            [*changes.glns.added, *(c.after for c in changes.glns.changed)],
            sid,
        )
        self._insert(
            CapabilityVersion,
            _CAP_COLUMNS,
            [*changes.capabilities.added, *(c.after for c in changes.capabilities.changed)],
            sid,
        )
        if not baseline:
            self._insert_change_events(changes, sid)
        return _snapshot_info(snapshot)

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
            update(_table(model))
            .where(*key_clauses, _table(model).c.valid_to.is_(None))
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
        values = attrgetter(*columns)
        bulk_insert(
            self.session,
            _table(model),
            ("valid_from", *columns),
            ((snapshot_id, *values(r)) for r in records),
        )

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

        stmt = insert(_table(ChangeEvent))
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


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


RUN_LEASE_PREFIX = "run:"


def run_lease_name(run_id: int) -> str:
    """The ``leader_leases`` row that says the process running ``run_id`` is alive."""
    return f"{RUN_LEASE_PREFIX}{run_id}"


class SqlAlchemySyncRunRepository:
    """The record of every sync attempt."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def start(
        self,
        source: str,
        location: str,
        trigger: str,
        *,
        holder: str | None = None,
        lease_until: datetime | None = None,
    ) -> int:
        """Record a run as ``running``; with ``holder``, also take its liveness lease (until
        ``lease_until``) in the same transaction, so that no moment exists in which the run is
        recorded and could be taken for abandoned (:mod:`soredi_sync.services.liveness`)."""
        now = datetime.now(UTC)
        run = SyncRun(
            source=source,
            location=location,
            trigger=trigger,
            status=RunStatus.RUNNING,
            started_at=now,
        )
        self.session.add(run)
        self.session.flush()
        if holder is not None:
            self.session.add(
                LeaderLease(
                    name=run_lease_name(run.id),
                    holder=holder,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=lease_until or now,
                )
            )
            self.session.flush()
        return run.id

    def renew_lease(self, run_id: int, holder: str, until: datetime) -> None:
        self.session.execute(
            update(LeaderLease)
            .where(LeaderLease.name == run_lease_name(run_id), LeaderLease.holder == holder)
            .values(renewed_at=datetime.now(UTC), expires_at=until)
        )

    def release_lease(self, run_id: int, holder: str) -> None:
        self.session.execute(
            delete(LeaderLease).where(
                LeaderLease.name == run_lease_name(run_id), LeaderLease.holder == holder
            )
        )

    def close_abandoned(self, error: str, now: datetime | None = None) -> list[int]:
        """Record as failed (with ``error``) every run still ``running`` whose process is gone:
        no unexpired liveness lease names it. Expired run leases are deleted.

        Runs of a live process keep their lease renewed and are left alone, wherever the
        process runs. Runs recorded without a lease (by a version before leases) count as gone.
        """
        moment = now or datetime.now(UTC)
        alive = (
            select(LeaderLease.name)
            .where(
                LeaderLease.name == literal(RUN_LEASE_PREFIX) + sql_cast(SyncRun.id, String),
                LeaderLease.expires_at > moment,
            )
            .exists()
        )
        abandoned = list(
            self.session.scalars(
                select(SyncRun.id).where(SyncRun.status == RunStatus.RUNNING, ~alive)
            )
        )
        if abandoned:
            self.session.execute(
                update(SyncRun)
                .where(SyncRun.id.in_(abandoned), SyncRun.status == RunStatus.RUNNING)
                .values(status=RunStatus.FAILED, finished_at=moment, error=error)
            )
        self.session.execute(
            delete(LeaderLease).where(
                LeaderLease.name.startswith(RUN_LEASE_PREFIX), LeaderLease.expires_at <= moment
            )
        )
        return abandoned

    def finish(self, run_id: int, status: RunStatus, **values: Any) -> None:
        run = self.session.get_one(SyncRun, run_id)
        run.status = status
        run.finished_at = datetime.now(UTC)
        run.duration_seconds = (run.finished_at - run.started_at).total_seconds()
        for name, value in values.items():
            setattr(run, name, value)

    def get(self, run_id: int) -> SyncRunInfo | None:
        row = self.session.get(SyncRun, run_id)
        return _run_info(row) if row else None

    def last_accepted(self, source: str) -> SyncRunInfo | None:
        """The latest run that stored a snapshot or confirmed the source unchanged."""
        row = self.session.scalars(
            select(SyncRun)
            .where(
                SyncRun.source == source,
                SyncRun.status.in_([RunStatus.SUCCEEDED, RunStatus.UNCHANGED]),
            )
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        return _run_info(row) if row else None

    def recent(self, limit: int = 10) -> list[SyncRunInfo]:
        rows = self.session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(limit))
        return [_run_info(r) for r in rows]
