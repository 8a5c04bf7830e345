"""Audit use cases: findings of one snapshot in a scope, compared with an earlier snapshot, and
CareCommunication (FDIS91) adoption over every stored snapshot.

The audit of a snapshot runs "on" its effective date (the source's SnapshotDate), so unit closing
dates are judged as they stood that day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.audit import (
    RULES,
    AdoptionCounts,
    AdoptionDimension,
    AuditContext,
    AuditView,
    Finding,
    OwnerKind,
    adoption,
    adoption_by_owner,
    adoption_key,
    audit,
    compare,
    in_scope,
)
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.once import OnceCache

# Enough for years of daily snapshots; adoption reads them all.
ALL_SNAPSHOTS = 1_000_000


@dataclass(frozen=True)
class AuditScope:
    """Which findings a report covers (all of them when every field is empty)."""

    owners: tuple[str, ...] | None = None
    owner_name: str | None = None
    region: str | None = None
    vans: str | None = None

    def describe(self) -> str:
        parts = []
        if self.owners:
            parts.append("owner " + ", ".join(self.owners))
        if self.owner_name:
            parts.append(f"owner name contains {self.owner_name!r}")
        if self.region:
            parts.append(f"region {self.region}")
        if self.vans:
            parts.append(f"VANS {self.vans}")
        return "; ".join(parts) or "whole registry"

    def apply(self, findings: Iterable[Finding]) -> list[Finding]:
        return in_scope(
            findings,
            owners=self.owners,
            owner_name=self.owner_name,
            region_code=self.region,
            vans=self.vans,
        )


@dataclass(frozen=True)
class AuditReport:
    """The findings of one snapshot in a scope, optionally with what changed since another."""

    snapshot: SnapshotInfo
    on: date
    scope: AuditScope
    findings: list[Finding]
    counts: dict[str, int]  # every rule code, zero included, in rule order
    severity_counts: dict[str, int]
    since: SnapshotInfo | None = None
    new: list[Finding] | None = None
    resolved: list[Finding] | None = None
    vans_names: Mapping[str, str] = field(default_factory=dict)
    region_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def comparing(self) -> bool:
        return self.since is not None

    def by_code(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {rule.code: [] for rule in RULES}
        for finding in self.findings:
            grouped.setdefault(finding.code, []).append(finding)
        return grouped

    def change_counts(self) -> dict[str, tuple[int, int]]:
        """Rule code → (new, resolved); empty unless comparing."""
        if self.new is None or self.resolved is None:
            return {}
        new = Counter(f.code for f in self.new)
        resolved = Counter(f.code for f in self.resolved)
        return {rule.code: (new[rule.code], resolved[rule.code]) for rule in RULES}


class AuditCache:
    """The findings (every owner, every rule) of the last few snapshots audited, by snapshot.

    A stored snapshot never changes, so its findings are computed once per process rather than
    on every read (loading and auditing a national snapshot takes seconds). One per
    :class:`~soredi_sync.bootstrap.App`, hence per database; the context is the App's, fixed.
    Callers get a shared list: they narrow it into new lists and never change it.

    :param size: snapshots kept (the current one and one ``since`` compared with it)
    """

    def __init__(self, size: int = 2) -> None:
        self._findings: OnceCache[tuple[int, datetime], list[Finding]] = OnceCache(size)

    def findings(
        self, uow: UnitOfWork, context: AuditContext, snapshot: SnapshotInfo
    ) -> list[Finding]:
        """Every finding of ``snapshot``, audited on its effective date. A snapshot is audited
        by one caller at a time (others asking for it wait and share the answer); reads of
        other snapshots are not held up meanwhile."""
        # With the time it was taken: an id alone could name another snapshot if a database
        # were emptied and filled again under a running process (as tests do).
        return self._findings.get(
            (snapshot.id, snapshot.taken_at),
            lambda: audit(
                uow.registry.load_registry(snapshot.id), context, snapshot.effective_date
            ),
        )


def _snapshot(uow: UnitOfWork, snapshot_id: int | None, at: date | None) -> SnapshotInfo:
    if snapshot_id is not None:
        found = uow.registry.get_snapshot(snapshot_id)
        if found is None:
            raise NotFound("snapshot", str(snapshot_id))
        return found
    if at is not None:
        found = uow.registry.snapshot_on(at)
        if found is None:
            raise NotFound("snapshot on or before", at.isoformat())
        return found
    current = uow.registry.current_snapshot()
    if current is None:
        raise NoSnapshot()
    return current


def _audit_snapshot(
    uow: UnitOfWork, context: AuditContext, snapshot: SnapshotInfo, scope: AuditScope
) -> list[Finding]:
    registry = uow.registry.load_registry(snapshot.id)
    return scope.apply(audit(registry, context, snapshot.effective_date))


def run_audit(
    uow: UnitOfWork,
    context: AuditContext,
    *,
    snapshot_id: int | None = None,
    at: date | None = None,
    owners: Iterable[str] | None = None,
    owner_name: str | None = None,
    region: str | None = None,
    vans: str | None = None,
    since_snapshot: int | None = None,
    vans_names: Mapping[str, str] | None = None,
) -> AuditReport:
    """Audit the current snapshot (or ``snapshot_id``, or the one describing ``at``) in a scope.

    With ``since_snapshot`` the same scope is audited on that snapshot too and the report lists
    the findings new since then and those resolved.

    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no such snapshot (or none on or before ``at``)
    """
    scope = AuditScope(
        owners=tuple(owners) if owners is not None else None,
        owner_name=owner_name or None,
        region=region or None,
        vans=vans or None,
    )
    snapshot = _snapshot(uow, snapshot_id, at)
    findings = _audit_snapshot(uow, context, snapshot, scope)
    codes = Counter(f.code for f in findings)
    severities = Counter(f.severity.value for f in findings)
    since = new = resolved = None
    if since_snapshot is not None:
        since = _snapshot(uow, since_snapshot, None)
        before = _audit_snapshot(uow, context, since, scope)
        changes = compare(before, findings)
        new, resolved = changes.new, changes.resolved
    return AuditReport(
        snapshot=snapshot,
        on=snapshot.effective_date,
        scope=scope,
        findings=findings,
        counts={rule.code: codes[rule.code] for rule in RULES},
        severity_counts={s: severities[s] for s in ("error", "warning", "info")},
        since=since,
        new=new,
        resolved=resolved,
        vans_names=dict(vans_names or {}),
        region_names=dict(context.region_names),
    )


AdoptionSeries = list[tuple[SnapshotInfo, dict[str, AdoptionCounts]]]


def adoption_series(
    uow: UnitOfWork, context: AuditContext, by: AdoptionDimension | str | None = None
) -> AdoptionSeries:
    """FDIS91 adoption among active GLNs on every snapshot, oldest first (in all or per group).

    Snapshots with a stored summary (:func:`record_summary`, run by the daemon after each
    accepted sync) are read from it; the others are loaded and counted.
    """
    dimension = AdoptionDimension(by) if by is not None else None
    key = dimension.value if dimension is not None else "all"
    snapshots = sorted(uow.registry.list_snapshots(limit=ALL_SNAPSHOTS), key=lambda s: s.id)
    stored = _stored_adoption(uow, key)
    series: AdoptionSeries = []
    for snapshot in snapshots:
        counts = stored.get(snapshot.id)
        if counts is None:
            registry = uow.registry.load_registry(snapshot.id)
            counts = adoption(registry, context, snapshot.effective_date, by=dimension)
        series.append((snapshot, counts))
    return series


def _stored_adoption(uow: UnitOfWork, key: str) -> dict[int, dict[str, AdoptionCounts]]:
    return {
        snapshot_id: {group: AdoptionCounts(**values) for group, values in groups.items()}
        for snapshot_id, groups in uow.audits.adoption(key).items()
    }


@dataclass(frozen=True)
class SummaryOutcome:
    snapshot_id: int
    findings: dict[str, int]
    adoption: dict[str, int]
    owners: int = 0


SEVERITIES = ("error", "warning", "info")


def _counts_json(counts: Mapping[str, AdoptionCounts]) -> dict[str, dict[str, int]]:
    return {
        group: {"fhir_only": c.fhir_only, "legacy_only": c.legacy_only, "both": c.both}
        for group, c in counts.items()
    }


def _finding_counts(findings: Iterable[Finding]) -> dict[str, object]:
    listed = list(findings)
    severities = Counter(f.severity.value for f in listed)
    return {
        "by_code": dict(sorted(Counter(f.code for f in listed).items())),
        "by_severity": {s: severities[s] for s in SEVERITIES},
        "total": len(listed),
    }


# The owners whose figures a summary stores: those of these kinds (the regions and
# municipalities auditing their own registrations), and any owner an unrevoked token is
# restricted to. Storing every owner (about 15,000 on the national profile, most of them a
# private practice with one GLN) would add megabytes per snapshot for figures nobody reads.
SUMMARISED_KINDS = frozenset({OwnerKind.REGION, OwnerKind.MUNICIPALITY})


def summarised_owners(uow: UnitOfWork, view: AuditView) -> set[str]:
    """The institution owners (SOR-IDs) a summary of ``view``'s snapshot stores figures of."""
    owners = {
        unit.sor_id
        for unit in view.registry.units.values()
        if unit.parent_sor_id is None
        and (owner := view.owner_of_unit(unit)) is not None
        and owner.kind in SUMMARISED_KINDS
    }
    for token in uow.tokens.list():
        if not token.revoked:
            owners |= token.owners
    return owners


def owner_summaries(
    findings: Iterable[Finding],
    by_owner: Mapping[str, Mapping[str, Mapping[str, AdoptionCounts]]],
    owners: Iterable[str],
) -> dict[str, dict[str, object]]:
    """The finding counts and adoption figures of each of ``owners``, as stored per owner (an
    owner with no finding and no correspondence GLN gets zeros: stored, not missing)."""
    wanted = set(owners)
    found: dict[str, list[Finding]] = {owner: [] for owner in wanted}
    for finding in findings:
        if finding.owner is not None and finding.owner.sor_id in wanted:
            found[finding.owner.sor_id].append(finding)
    return {
        owner: {
            "findings": _finding_counts(found[owner]),
            "adoption": {key: _counts_json(c) for key, c in by_owner.get(owner, {}).items()},
        }
        for owner in sorted(wanted)
    }


def record_summary(
    uow: UnitOfWork, context: AuditContext, snapshot_id: int | None = None
) -> SummaryOutcome:
    """Compute and store the audit and adoption figures of a snapshot (default: the current
    one), in all and for each of :func:`summarised_owners`, replacing any earlier summary of
    it; commits.

    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no such snapshot
    """
    snapshot = _snapshot(uow, snapshot_id, None)
    registry = uow.registry.load_registry(snapshot.id)
    on = snapshot.effective_date
    findings = audit(registry, context, on)
    codes = Counter(f.code for f in findings)
    severities = Counter(f.severity.value for f in findings)
    figures = {
        adoption_key(dimension): _counts_json(adoption(registry, context, on, by=dimension))
        for dimension in (None, *AdoptionDimension)
    }
    view = AuditView(registry, context, on)
    owners = owner_summaries(
        findings, adoption_by_owner(registry, context, on), summarised_owners(uow, view)
    )
    by_code = {rule.code: codes[rule.code] for rule in RULES}
    uow.audits.save_summary(
        snapshot.id,
        computed_at=datetime.now(UTC),
        findings={
            "by_code": by_code,
            "by_severity": {s: severities[s] for s in SEVERITIES},
            "total": len(findings),
        },
        adoption=figures,
        owners=owners,
    )
    uow.commit()
    overall = figures["all"].get("all", {})
    return SummaryOutcome(snapshot.id, dict(by_code), dict(overall), len(owners))


def _summed(
    figures: Iterable[Mapping[str, Mapping[str, int]]],
) -> dict[str, AdoptionCounts]:
    totals: dict[str, AdoptionCounts] = {}
    for groups in figures:
        for group, values in groups.items():
            found = totals.get(group, AdoptionCounts())
            totals[group] = AdoptionCounts(
                found.fhir_only + values.get("fhir_only", 0),
                found.legacy_only + values.get("legacy_only", 0),
                found.both + values.get("both", 0),
            )
    return dict(sorted(totals.items()))


def _stored_for(
    uow: UnitOfWork, snapshot_ids: Iterable[int], owners: Iterable[str]
) -> dict[int, dict[str, dict[str, Any]]]:
    """The stored figures of ``owners`` on those of ``snapshot_ids`` whose summary holds every
    one of them."""
    wanted = set(owners)
    stored = uow.audits.owner_figures(list(snapshot_ids), wanted)
    return {sid: figures for sid, figures in stored.items() if wanted <= figures.keys()}


def stored_owner_adoption(
    uow: UnitOfWork,
    snapshot_ids: Iterable[int],
    owners: Iterable[str],
    by: AdoptionDimension | None = None,
) -> dict[int, dict[str, AdoptionCounts]]:
    """Adoption among the GLNs of ``owners`` on each of ``snapshot_ids`` whose summary stored
    all of them (the others are missing from the answer): the sums of the owners' rows, equal
    to counting the snapshot for those owners."""
    key = adoption_key(by)
    return {
        sid: _summed(f["adoption"].get(key, {}) for f in by_owner.values())
        for sid, by_owner in _stored_for(uow, snapshot_ids, owners).items()
    }


def stored_owner_severities(
    uow: UnitOfWork, snapshot_id: int, owners: Iterable[str]
) -> dict[str, int] | None:
    """The findings of ``owners`` on ``snapshot_id`` by severity, from its summary; None when
    it did not store all of them."""
    stored = _stored_for(uow, [snapshot_id], owners).get(snapshot_id)
    if stored is None:
        return None
    totals = Counter[str]()
    for figures in stored.values():
        totals.update(figures["findings"].get("by_severity", {}))
    return {s: totals[s] for s in SEVERITIES}
