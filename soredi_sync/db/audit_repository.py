"""The audit-summary repository: the audit and adoption figures stored for each snapshot
(:func:`soredi_sync.services.audit.record_summary`). It never commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soredi_sync.db.models import AuditSummary


class SqlAlchemyAuditRepository:
    """One ``audit_summaries`` row per summarised snapshot."""

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

    def save_summary(
        self,
        snapshot_id: int,
        *,
        computed_at: datetime,
        findings: dict[str, Any],
        adoption: dict[str, dict[str, dict[str, int]]],
    ) -> None:
        """Store the summary of ``snapshot_id``, replacing any earlier one."""
        row = self.session.get(AuditSummary, snapshot_id)
        if row is None:
            row = AuditSummary(snapshot_id=snapshot_id)
            self.session.add(row)
        row.computed_at = computed_at
        row.findings = findings
        row.adoption = adoption
