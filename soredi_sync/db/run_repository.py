"""The sync-run repository: the record of every sync attempt and the liveness lease of the
running ones (:mod:`soredi_sync.services.liveness`). It never commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, delete, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from soredi_sync.db.models import LeaderLease, SyncRun
from soredi_sync.ports.records import RunEnd, RunStatus, SyncRunInfo

ACCEPTED = (RunStatus.SUCCEEDED, RunStatus.UNCHANGED)


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

    def ended(self, source: str, limit: int) -> list[RunEnd]:
        """How the last ``limit`` finished runs of ``source`` ended, newest first."""
        rows = self.session.execute(
            select(SyncRun.status, SyncRun.finished_at, SyncRun.error)
            .where(SyncRun.source == source, SyncRun.status != RunStatus.RUNNING)
            .order_by(SyncRun.id.desc())
            .limit(limit)
        )
        return [RunEnd(RunStatus(status), _utc(at), error) for status, at, error in rows]

    def last_confirmed_at(self) -> datetime | None:
        """When the newest accepted run that names a snapshot finished (any source): when the
        registry was last confirmed against a source."""
        return _utc(
            self.session.scalar(
                select(SyncRun.finished_at)
                .where(SyncRun.status.in_(ACCEPTED), SyncRun.snapshot_id.is_not(None))
                .order_by(SyncRun.id.desc())
                .limit(1)
            )
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
