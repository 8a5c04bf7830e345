"""The audit-summary repository: the audit and adoption figures stored for each snapshot
(:func:`soredi_sync.services.audit.record_summary`). It never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from soredi_sync.db.models import AuditOwnerSummary, AuditSummary


class SqlAlchemyAuditRepository:
    """One ``audit_summaries`` row per summarised snapshot, with an ``audit_owner_summaries``
    row per institution owner."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def adoption(self, key: str) -> dict[int, dict[str, dict[str, int]]]:
        """Snapshot id → group → adoption figures under ``key`` ("all" or a dimension), for
        every snapshot with a stored summary holding that key."""
        return {
            row.snapshot_id: dict(row.adoption[key])
            for row in self.session.scalars(select(AuditSummary))
            if key in row.adoption
        }

    def findings(self, snapshot_id: int) -> dict[str, Any] | None:
        """The stored finding counts of ``snapshot_id`` (``by_code``, ``by_severity``,
        ``total``); None when it has no summary."""
        row = self.session.get(AuditSummary, snapshot_id)
        return dict(row.findings) if row is not None else None

    def owner_figures(
        self, snapshot_ids: Collection[int], owners: Collection[str]
    ) -> dict[int, dict[str, dict[str, Any]]]:
        """Snapshot id → owner → its stored ``findings`` and ``adoption``, for those of
        ``snapshot_ids`` whose summary was stored with per-owner rows; an owner missing under
        a snapshot was not summarised on it, a snapshot missing from the answer has no
        per-owner figures at all."""
        if not snapshot_ids or not owners:
            return {}
        summarised = self.session.scalars(
            select(AuditSummary.snapshot_id).where(
                AuditSummary.snapshot_id.in_(list(snapshot_ids)),
                AuditSummary.owner_rows.is_not(None),
            )
        ).all()
        result: dict[int, dict[str, dict[str, Any]]] = {sid: {} for sid in summarised}
        if not result:
            return result
        rows = self.session.scalars(
            select(AuditOwnerSummary).where(
                AuditOwnerSummary.snapshot_id.in_(list(result)),
                AuditOwnerSummary.owner_sor_id.in_(list(owners)),
            )
        )
        for row in rows:
            result[row.snapshot_id][row.owner_sor_id] = {
                "findings": dict(row.findings),
                "adoption": dict(row.adoption),
            }
        return result

    def save_summary(
        self,
        snapshot_id: int,
        *,
        computed_at: datetime,
        findings: dict[str, Any],
        adoption: dict[str, dict[str, dict[str, int]]],
        owners: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store the summary of ``snapshot_id``, replacing any earlier one; ``owners``: each
        institution owner's ``findings`` and ``adoption`` (None: no per-owner figures)."""
        row = self.session.get(AuditSummary, snapshot_id)
        if row is None:
            row = AuditSummary(snapshot_id=snapshot_id)
            self.session.add(row)
        row.computed_at = computed_at
        row.findings = findings
        row.adoption = adoption
        row.owner_rows = None if owners is None else len(owners)
        self.session.flush()
        self.session.execute(
            delete(AuditOwnerSummary).where(AuditOwnerSummary.snapshot_id == snapshot_id)
        )
        if owners:
            self.session.execute(
                insert(AuditOwnerSummary),
                [
                    {
                        "snapshot_id": snapshot_id,
                        "owner_sor_id": owner,
                        "findings": figures["findings"],
                        "adoption": figures["adoption"],
                    }
                    for owner, figures in owners.items()
                ],
            )
