"""Step 9 of the demo: MedCom plans one municipality's switch to CareCommunication, submits it
to the sandbox SORUS and, after the sync of the next day, sees it verified."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from soredi_sync.bootstrap import App
from soredi_sync.demo.story import DAYS, Current, Story, say_outcome
from soredi_sync.domain.audit import AuditView, OwnerKind
from soredi_sync.domain.plans import owners_of_kind, switch_to_carecommunication
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.sync import sync_source


def plan_switch(console: Console, app: App, current: Current, server: Any, story: Story) -> int:
    """One municipality's switch plan: created, submitted to SORUS, verified the next day."""
    from soredi_sync.services.plans import create_plan, submit_plan, verify_open_plans

    context = app.reference.audit_context
    snapshot, registry = current
    view = AuditView(registry, context, snapshot.effective_date)
    municipality = _municipality(view, owners_of_kind(view, OwnerKind.MUNICIPALITY))
    if municipality is None:
        console.print("[red]   no municipality has GLNs to switch[/red]")
        return 1
    with _plans(app) as uow:
        plan = create_plan(
            uow, context, actor="medcom", owners=[municipality], switch_to="carecommunication"
        )
    story.plan_id = plan.id
    owner_name = registry.units[municipality].name
    glns = len({item.gln for item in plan.items})
    console.print(
        f"[bold]9. MedCom[/bold]: plan {plan.id} switches {escape(owner_name)} "
        f"({municipality}) to CareCommunication: {len(plan.items)} changes on {glns} GLNs"
    )
    console.print(f"   {_changes(plan.items)}")
    with _plans(app) as uow:
        submitted = submit_plan(uow, plan.id, "sorus", actor="medcom", sorus=app.sorus())
        receipts = {
            str(event.details.get("receipt"))
            for event in _events(uow, plan.id)
            if event.to_state == "submitted" and event.details.get("receipt")
        }
    states = Counter(item.state.value for item in submitted.items)
    console.print(
        f"   submitted to the sandbox SORUS on day {server.day}: "
        + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        + f" (receipt {', '.join(sorted(receipts)) or '-'})"
    )
    with _plans(app) as uow:
        same_day = _result(verify_open_plans(uow, actor="medcom"), plan.id)
    if same_day is not None:
        console.print(
            f"   verified the same day: {_counts(same_day.counts)} (SOR publishes overnight)"
        )

    server.set_day(DAYS)
    client = app.files_client(base_url=server.base_url)
    outcome = sync_source(app.uow_factory, client, app.sync_config(), trigger="demo")
    say_outcome(console, f"   day {DAYS}", outcome)
    if not outcome.ok:
        return 1
    with _plans(app) as uow:
        verified = _result(verify_open_plans(uow, actor="sync"), plan.id)
    if verified is None:
        console.print(f"[red]   plan {plan.id} was not verified[/red]")
        return 1
    console.print(
        f"   plan {plan.id} verified on snapshot {verified.snapshot_id}: {_counts(verified.counts)}"
    )
    return 0


def _municipality(view: AuditView, municipalities: Iterable[str]) -> str | None:
    """The municipality with the most GLNs to switch (the lowest SOR-ID among equals)."""
    glns: dict[str, set[str]] = {}
    for item in switch_to_carecommunication(view, municipalities):
        glns.setdefault(item.owner_sor_id, set()).add(item.gln)
    return min(glns, key=lambda owner: (-len(glns[owner]), owner)) if glns else None


@contextmanager
def _plans(app: App) -> Iterator[UnitOfWork]:
    with app.uow() as uow:
        yield uow


def _events(uow: UnitOfWork, plan_id: int) -> list[Any]:
    from soredi_sync.services.plans import plan_events

    return plan_events(uow, plan_id)


def _result(results: Iterable[Any], plan_id: int) -> Any:
    return next((result for result in results if result.plan_id == plan_id), None)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "nothing to verify"


def _changes(items: Iterable[Any]) -> str:
    """``add FDIS91 on 12 GLNs, add FCTL on 12, remove XDIS91 on 12``."""
    counted = Counter((item.action.value, item.message_type) for item in items)
    return ", ".join(
        f"{action} {message_type} on {n} GLN{'s' if n != 1 else ''}"
        for (action, message_type), n in sorted(counted.items())
    )
