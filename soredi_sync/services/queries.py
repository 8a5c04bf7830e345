"""Read-side use cases: status, a unit or GLN now or on a date, history, the change feed, and
the audit, adoption and cut-over reads of the API, narrowed to some institution owners.

Every answer is read as of one snapshot id, so it never mixes two snapshots.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.audit import (
    AdoptionCounts,
    AdoptionDimension,
    AuditContext,
    AuditView,
    Finding,
    adoption,
    adoption_key,
    audit,
    compare,
    gln_owner,
    in_scope,
)
from soredi_sync.domain.model import (
    Capability,
    EffectiveGln,
    Gln,
    GlnMode,
    Registry,
    Unit,
    effective_gln,
)
from soredi_sync.domain.ownership import gln_owners
from soredi_sync.domain.routing import Resolver
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.ports.records import ChangeRecord, SnapshotInfo, SyncRunInfo, VersionSpan
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.audit import AuditCache, stored_owner_adoption
from soredi_sync.services.cutover import CutoverReport, cutover


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


def snapshot_for(uow: UnitOfWork, at: date | None) -> SnapshotInfo:
    """The current snapshot, or with ``at`` the last one describing that day or earlier.

    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no snapshot on or before ``at``
    """
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
    snapshot = snapshot_for(uow, at)
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
    snapshot = snapshot_for(uow, at)
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


def owners_of_gln(uow: UnitOfWork, view: GlnView) -> set[str]:
    """SOR-IDs of the institution owners of ``view``'s GLN (``domain/ownership.py``'s rule)."""
    carriers = {u.sor_id: u for u in view.owners}

    def owner_of_unit(sor_id: str) -> str | None:
        unit = carriers.get(sor_id) or uow.registry.get_unit(sor_id, view.snapshot.id)
        return unit.owner_sor_id if unit else None

    return gln_owners(carriers, view.gln.owner_sor_id, owner_of_unit)


def gln_history(uow: UnitOfWork, gln: str) -> GlnHistory:
    versions, capabilities = uow.registry.gln_history(gln)
    if not versions and not capabilities:
        raise NotFound("GLN", gln)
    ids = {v.valid_from for v in versions + capabilities} | {
        v.valid_to for v in versions + capabilities if v.valid_to is not None
    }
    snapshots = {i: s for i in ids if (s := uow.registry.get_snapshot(i)) is not None}
    return GlnHistory(gln, versions, capabilities, snapshots)


@dataclass(frozen=True)
class UnitHistory:
    sor_id: str
    versions: list[VersionSpan]
    snapshots: dict[int, SnapshotInfo]


def unit_history(uow: UnitOfWork, sor_id: str) -> UnitHistory:
    versions = uow.registry.unit_history(sor_id)
    if not versions:
        raise NotFound("unit", sor_id)
    ids = {v.valid_from for v in versions} | {v.valid_to for v in versions if v.valid_to}
    snapshots = {i: s for i in ids if (s := uow.registry.get_snapshot(i)) is not None}
    return UnitHistory(sor_id, versions, snapshots)


def search_units(
    uow: UnitOfWork,
    fragment: str,
    at: date | None = None,
    *,
    owners: set[str] | None = None,
    limit: int = 50,
) -> tuple[SnapshotInfo, list[Unit]]:
    """Units whose name contains ``fragment`` on the snapshot of ``at`` (default: now), of
    ``owners`` only (None: every owner), by name, at most ``limit``."""
    snapshot = snapshot_for(uow, at)
    found = uow.registry.search_units(fragment, snapshot.id, owners=owners, limit=limit)
    return snapshot, found


def changes_since(uow: UnitOfWork, cursor: int, limit: int = 1000) -> list[ChangeRecord]:
    # Only whole snapshots are served: the feed stops at the current snapshot's last event.
    current = uow.registry.current_snapshot()
    if current is None:
        return []
    return uow.registry.changes_since(cursor, limit, up_to_snapshot=current.id)


# -- audit, adoption and cut-over for some owners (None: every owner) ---------------------------


@dataclass(frozen=True)
class ScopedAudit:
    """The findings of the current snapshot in a scope and, with ``since``, those new and
    resolved since that snapshot."""

    snapshot: SnapshotInfo
    findings: list[Finding]
    since: SnapshotInfo | None = None
    new: list[Finding] | None = None
    resolved: list[Finding] | None = None

    @property
    def on(self) -> date:
        return self.snapshot.effective_date

    @property
    def total(self) -> int:
        return len(self.findings)

    @property
    def counts(self) -> dict[str, int]:
        """Findings per code, the codes that have some, in code order."""
        return dict(sorted(Counter(f.code for f in self.findings).items()))


def scoped_audit(
    uow: UnitOfWork,
    context: AuditContext,
    *,
    owners: set[str] | None,
    region: str | None = None,
    vans: str | None = None,
    since: int | None = None,
    compare_since: bool = True,
    cache: AuditCache | None = None,
) -> ScopedAudit:
    """Audit the current snapshot; findings of ``owners``, ``region`` and ``vans`` only.

    :param since: also audit this snapshot, and list what is new and resolved since
    :param compare_since: ``False``: only check that ``since`` exists (the CSV has no changes)
    :param cache: the process's findings per snapshot (``App.audit_cache``); None: audit anew
    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no snapshot ``since``
    """
    current = uow.registry.current_snapshot()
    if current is None:
        raise NoSnapshot()
    before = None
    if since is not None:
        before = uow.registry.get_snapshot(since)
        if before is None:
            raise NotFound("snapshot", str(since))

    def findings_of(snapshot: SnapshotInfo) -> list[Finding]:
        if cache is not None:
            found = cache.findings(uow, context, snapshot)
        else:
            found = audit(uow.registry.load_registry(snapshot.id), context, snapshot.effective_date)
        return in_scope(found, owners=owners, region_code=region, vans=vans)

    findings = findings_of(current)
    if before is None or not compare_since:
        return ScopedAudit(current, findings)
    changes = compare(findings_of(before), findings)
    return ScopedAudit(current, findings, before, changes.new, changes.resolved)


@dataclass(frozen=True)
class AdoptionEntry:
    snapshot_id: int
    effective_date: date
    counts: dict[str, AdoptionCounts]  # group ("all" when not grouped) -> counts


def adoption_by_snapshot(
    uow: UnitOfWork,
    context: AuditContext,
    *,
    owners: set[str] | None,
    by: AdoptionDimension | None = None,
    limit: int = 100,
) -> list[AdoptionEntry]:
    """CareCommunication adoption on the latest ``limit`` snapshots, oldest first, counting
    only the GLNs of ``owners`` (None: every GLN).

    Read from the summaries stored after each sync (per owner for ``owners``); a snapshot
    without one is loaded and counted.
    """
    snapshots = sorted(uow.registry.list_snapshots(limit), key=lambda s: s.id)
    if owners is None:
        key = adoption_key(by)
        stored = {
            sid: {group: AdoptionCounts(**values) for group, values in groups.items()}
            for sid, groups in uow.audits.adoption(key).items()
        }
    else:
        stored = stored_owner_adoption(uow, [s.id for s in snapshots], owners, by)
    return [
        AdoptionEntry(
            info.id,
            info.effective_date,
            stored[info.id] if info.id in stored else adoption_on(uow, context, info, owners, by),
        )
        for info in snapshots
    ]


def adoption_on(
    uow: UnitOfWork,
    context: AuditContext,
    snapshot: SnapshotInfo,
    owners: set[str] | None,
    by: AdoptionDimension | None = None,
) -> dict[str, AdoptionCounts]:
    """CareCommunication adoption on ``snapshot``, counting only the GLNs of ``owners``
    (None: every GLN)."""
    registry = uow.registry.load_registry(snapshot.id)
    on = snapshot.effective_date
    if owners is not None:
        registry = _glns_of_owners(registry, context, on, owners)
    return adoption(registry, context, on, by)


def _glns_of_owners(
    registry: Registry, context: AuditContext, on: date, owners: Iterable[str]
) -> Registry:
    # By the audit's own attribution of a GLN to an owner, so the counts agree with the
    # owner's findings and with the stored per-owner summaries.
    wanted = set(owners)
    view = AuditView(registry, context, on)
    kept = {}
    for gln, record in registry.glns.items():
        owner = gln_owner(view, gln, record)
        if owner is not None and owner.sor_id in wanted:
            kept[gln] = record
    return replace(registry, glns=kept)


def cutover_on(
    uow: UnitOfWork,
    resolver: Resolver,
    on: date,
    *,
    owners: set[str] | None,
    context: AuditContext,
) -> tuple[SnapshotInfo, CutoverReport]:
    """The receivers of ``owners`` each sender syntax would lose on ``on``, decided on the
    resolver's snapshot (and that snapshot).

    :raises NoSnapshot: the resolver's snapshot is gone
    """
    info = uow.registry.get_snapshot(resolver.index.snapshot.id)
    if info is None:
        raise NoSnapshot()
    report = cutover(resolver, on, owners=owners, audit_context=context, today=info.effective_date)
    return info, report


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
