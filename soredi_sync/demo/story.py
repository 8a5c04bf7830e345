"""What the demo's steps share: the story they add to, the days the tour covers, the current
snapshot and one line per sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from soredi_sync.bootstrap import App
from soredi_sync.domain.model import Registry
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.services.sync import SyncOutcome

DAYS = 2  # day 0 and day 1 are synced; SORUS publishes the plan on day 2


@dataclass
class Story:
    """What the tour produced that the explore commands point at."""

    database_url: str = ""
    decided_on: date | None = None
    messages: list[Path] = field(default_factory=list)
    gln: str | None = None
    region: str | None = None
    plan_id: int | None = None
    baseline: int | None = None  # the snapshot of day 0


Current = tuple[SnapshotInfo, Registry]


def current_snapshot(app: App) -> Current:
    """The current snapshot and its registry."""
    with app.uow() as uow:
        snapshot = uow.registry.current_snapshot()
        assert snapshot is not None
        return snapshot, uow.registry.load_registry(snapshot.id)


def say_outcome(console: Console, label: str, outcome: SyncOutcome) -> None:
    """One line: the run, its status and the snapshot it left (or the error)."""
    snap = outcome.snapshot
    if not outcome.ok or snap is None:
        console.print(f"[red]{label}: {outcome.status.value}: {escape(str(outcome.error))}[/red]")
        return
    console.print(
        f"{label}: run {outcome.run_id} {outcome.status.value} in {outcome.duration_seconds:.1f} s"
        f" -> snapshot {snap.id} of {snap.effective_date}: {snap.unit_count} units, "
        f"{snap.gln_count} GLNs, {snap.capability_count} GLN message types"
    )
