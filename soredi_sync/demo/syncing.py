"""Steps 2 to 6 of the demo: sync day 0 twice (the second a conditional GET) and day 1, then show
what changed and two GLNs that did."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from soredi_sync.bootstrap import App
from soredi_sync.demo.story import Story, say_outcome
from soredi_sync.ports.records import RunStatus
from soredi_sync.services import queries
from soredi_sync.services.sync import SyncOutcome, sync_source


def sync_and_show(console: Console, app: App, server: Any, story: Story) -> int:
    """Steps 2-6; ``server`` is the sandbox's files server, moved to day 1 here."""
    from soredi_sync.reports.console import render_changes, render_gln

    client = app.files_client(base_url=server.base_url)

    console.print("[bold]2. Sync day 0[/bold] (first pull: the baseline snapshot)")
    first = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
    say_outcome(console, "   day 0", first)

    console.print("[bold]3. Sync again[/bold] (nothing changed: a conditional GET)")
    again = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
    say_outcome(console, "   day 0 again", again)

    server.set_day(1)
    console.print("[bold]4. Sync day 1[/bold] (the sandbox moved on a day)")
    second = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
    say_outcome(console, "   day 1", second)
    if not (first.ok and again.ok and second.ok) or second.changes is None:
        return 1
    if again.status is not RunStatus.UNCHANGED:
        console.print("[red]the unchanged source was not recognised as unchanged[/red]")
        return 1
    story.baseline = first.snapshot.id if first.snapshot is not None else None

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
            render_gln(console, queries.show_gln(uow, gln), app.reference.vans_names)
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
