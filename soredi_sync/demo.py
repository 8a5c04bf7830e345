"""``soredi-sync demo``: the whole pipeline offline, on SQLite and a loopback sandbox."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from soredi_sync.bootstrap import bootstrap
from soredi_sync.config import Settings
from soredi_sync.db.models import RunStatus
from soredi_sync.services import queries
from soredi_sync.services.schema import upgrade
from soredi_sync.services.sync import SyncOutcome, sync_source

logger = logging.getLogger(__name__)

DEMO_SEED = 7


def _sandbox_dir(directory: Path, profile: str, columns: Any) -> Path:
    """Generate the sandbox once per profile; later demos reuse it."""
    from soredi_sync.sandbox.generate import generate

    sandbox = directory / f"sandbox-{profile}"
    manifest = sandbox / "manifest.json"
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            if data.get("seed") == DEMO_SEED and data.get("days", 0) >= 1:
                return sandbox
        except (OSError, ValueError):
            pass
    shutil.rmtree(sandbox, ignore_errors=True)
    generate(sandbox, profile=profile, seed=DEMO_SEED, days=1, columns=columns)
    return sandbox


def _say_outcome(console: Console, label: str, outcome: SyncOutcome) -> None:
    snap = outcome.snapshot
    if not outcome.ok or snap is None:
        console.print(f"[red]{label}: {outcome.status.value}: {outcome.error}[/red]")
        return
    console.print(
        f"{label}: run {outcome.run_id} {outcome.status.value} in {outcome.duration_seconds:.1f} s"
        f" -> snapshot {snap.id} of {snap.effective_date}: {snap.unit_count} units, "
        f"{snap.gln_count} GLNs, {snap.capability_count} GLN message types"
    )


def run_demo(directory: Path, *, profile: str = "small", console: Console | None = None) -> int:
    """Generate (once), serve, sync day 0 and day 1, and show what changed. Returns an exit code."""
    from soredi_sync.cli_render import render_changes, render_gln
    from soredi_sync.sandbox.server import SandboxServer

    console = console or Console()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{database}")

    console.print(f"[bold]1. Sandbox[/bold]: a synthetic SOR ({profile} profile) in {directory}")
    sandbox = _sandbox_dir(directory, profile, settings.csv_columns)
    upgrade(settings.database_url)

    with (
        SandboxServer(
            sandbox,
            day=0,
            xml_path=settings.sources.sor_xml_path,
            csv_path=settings.sources.sor_csv_path,
        ) as server,
        bootstrap(settings) as app,
    ):
        console.print(f"   served on {server.base_url} in the sor-filer layout")
        client = app.files_client(base_url=server.base_url)

        console.print("[bold]2. Sync day 0[/bold] (first pull: the baseline snapshot)")
        first = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
        _say_outcome(console, "   day 0", first)

        console.print("[bold]3. Sync again[/bold] (nothing changed: a conditional GET)")
        again = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
        _say_outcome(console, "   day 0 again", again)

        server.set_day(1)
        console.print("[bold]4. Sync day 1[/bold] (the sandbox moved on a day)")
        second = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
        _say_outcome(console, "   day 1", second)
        if not (first.ok and again.ok and second.ok) or second.changes is None:
            return 1
        if again.status is not RunStatus.UNCHANGED:
            console.print("[red]the unchanged source was not recognised as unchanged[/red]")
            return 1

        console.print("[bold]5. What changed[/bold]")
        for entity, by_kind in second.changes.counts().items():
            parts = ", ".join(f"{n} {kind}" for kind, n in by_kind.items() if n) or "none"
            console.print(f"   {entity}: {parts}")
        with app.uow() as uow:
            events = queries.changes_since(uow, 0, limit=100_000)
        render_changes(console, _one_of_each(events), events[-1].cursor if events else 0)

        console.print("[bold]6. Two GLNs[/bold]")
        for gln, why in _interesting_glns(second):
            console.print(f"   [italic]{why}[/italic]")
            with app.uow() as uow:
                render_gln(console, queries.show_gln(uow, gln), settings)
    console.print(f"Done. Explore with: soredi-sync --database-url sqlite:///{database} status")
    return 0


def _one_of_each(events: list[Any]) -> list[Any]:
    """A sample of the feed: the first event of each entity and kind."""
    seen: set[tuple[str, str]] = set()
    sample = []
    for event in events:
        if (event.entity, event.kind) not in seen:
            seen.add((event.entity, event.kind))
            sample.append(event)
    return sample


def _interesting_glns(outcome: SyncOutcome) -> list[tuple[str, str]]:
    """A GLN that took up FDIS91 today, and one whose attributes changed."""
    assert outcome.changes is not None
    picks: list[tuple[str, str]] = []
    for cap in outcome.changes.capabilities.added:
        if cap.message_type == "FDIS91":
            picks.append((cap.gln, "took up FDIS91 (CareCommunication) on day 1"))
            break
    for changed in outcome.changes.glns.changed:
        if all(changed.after.gln != gln for gln, _ in picks):
            fields = ", ".join(
                f"{name} {old} -> {new}" for name, (old, new) in changed.field_changes().items()
            )
            picks.append((changed.after.gln, f"changed on day 1: {fields}"))
            break
    return picks
