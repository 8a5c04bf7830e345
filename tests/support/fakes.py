"""Driving the in-memory fakes of the storage ports (``soredi_sync.ports.fakes``) in service
tests: a clock that moves only when told to, and a snapshot stored as a sync would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from soredi_sync.domain.diff import diff
from soredi_sync.domain.model import Registry
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import SnapshotInfo

START = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def store(uow: FakeUnitOfWork, registry: Registry, run_id: int = 1) -> SnapshotInfo:
    """Store ``registry`` as the next snapshot, as a sync would, and commit."""
    with uow:
        current = uow.registry.current_snapshot()
        before = uow.registry.load_registry(current.id) if current else None
        info = uow.registry.add_snapshot(
            registry,
            diff(before, registry),
            run_id=run_id,
            source="sor-filer",
            content_hash=f"hash-{run_id}",
            baseline=current is None,
        )
        uow.commit()
    return info
