"""``soredi-sync demo``: the whole pipeline offline, on SQLite and a loopback sandbox.

The tour generates a sandbox, serves it (files, and SORUS over SOAP) on loopback and syncs day 0
twice and day 1; then it shows what each of the three users does with the result:

- the conversion gateway routes two CareCommunication bundles written for sandbox receivers,
  one delivered natively and one converted to XDIS91 by the receiver's VANS;
- a region reads its audit summary;
- MedCom plans one municipality's switch to CareCommunication, submits it to the sandbox SORUS
  and, after the sync of the next day, sees it verified.

Without ``keep`` everything happens in a temporary folder that is removed afterwards; with it
the database, the sandbox and the messages stay there and the commands to explore them are
printed.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import Settings
from soredi_sync.db.models import RunStatus
from soredi_sync.db.repository import SnapshotInfo
from soredi_sync.db.unit_of_work import UnitOfWork
from soredi_sync.domain.audit import AuditView, OwnerKind
from soredi_sync.domain.model import Registry
from soredi_sync.domain.plans import owners_of_kind, switch_to_carecommunication
from soredi_sync.domain.routing import Decision, RouteDecision
from soredi_sync.errors import SorediError
from soredi_sync.services import queries
from soredi_sync.services.schema import upgrade
from soredi_sync.services.sync import SyncOutcome, sync_source

if TYPE_CHECKING:
    from soredi_sync.sandbox.messages import Party

logger = logging.getLogger(__name__)

DEMO_SEED = 7
DAYS = 2  # day 0 and day 1 are synced; SORUS publishes the plan on day 2
DATABASE = "demo.db"
SANDBOX = "sandbox"
MESSAGES = "messages"
# What a kept folder may already hold: what an earlier demo left (the database and its
# companions: -wal, -shm, -journal, the schema lock), and the older layout's per-profile
# sandboxes. Anything else there is not ours to overwrite.
_OURS = frozenset({SANDBOX, MESSAGES, "sandbox-tiny", "sandbox-small"})


def _is_ours(name: str) -> bool:
    return name in _OURS or name == DATABASE or name.startswith(f"{DATABASE}-")


_COPENHAGEN_WINTER = timezone(timedelta(hours=1))  # the sandbox's days are in November
# Trace rules about reading the receiver's identifiers; the demo sums them up in one line.
_IDENTIFICATION_RULES = frozenset({"identifier", "addressed-by", "identification"})


@dataclass
class _Story:
    """What the tour produced that the explore commands point at."""

    database_url: str = ""
    decided_on: date | None = None
    messages: list[Path] = field(default_factory=list)
    gln: str | None = None
    region: str | None = None
    plan_id: int | None = None
    baseline: int | None = None  # the snapshot of day 0


def run_demo(
    keep: Path | None = None, *, profile: str = "small", console: Console | None = None
) -> int:
    """Run the tour; returns an exit code (0: every step did what it shows).

    :param keep: the folder to leave the database, the sandbox and the messages in (created if
        missing; what an earlier demo left there is replaced). None: a temporary folder,
        removed at the end.
    """
    console = console or Console()
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="soredi-demo-") as tmp:
            code, _story = _tour(Path(tmp), profile, console)
        console.print(
            "Done. The demo's files are removed again; "
            "[bold]soredi-sync demo --keep DIR[/bold] keeps them to explore."
        )
        return code
    others = _foreign_entries(keep)
    if others:
        console.print(
            f"[red]{escape(str(keep))} holds files the demo did not write "
            f"({escape(', '.join(others[:5]))}): give a new or empty folder, or one an earlier "
            "demo wrote[/red]"
        )
        return 2
    code, story = _tour(keep, profile, console)
    if code == 0:
        _explore(console, keep, story)
    return code


def _foreign_entries(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    if not directory.is_dir():
        return [directory.name]
    return sorted(child.name for child in directory.iterdir() if not _is_ours(child.name))


def _fresh(directory: Path) -> None:
    """Remove what an earlier demo left in ``directory``: each run starts from scratch."""
    directory.mkdir(parents=True, exist_ok=True)
    for companion in directory.glob(f"{DATABASE}*"):
        if companion.is_file() and _is_ours(companion.name):
            companion.unlink()
    for name in (SANDBOX, MESSAGES):
        shutil.rmtree(directory / name, ignore_errors=True)


def _say_outcome(console: Console, label: str, outcome: SyncOutcome) -> None:
    snap = outcome.snapshot
    if not outcome.ok or snap is None:
        console.print(f"[red]{label}: {outcome.status.value}: {escape(str(outcome.error))}[/red]")
        return
    console.print(
        f"{label}: run {outcome.run_id} {outcome.status.value} in {outcome.duration_seconds:.1f} s"
        f" -> snapshot {snap.id} of {snap.effective_date}: {snap.unit_count} units, "
        f"{snap.gln_count} GLNs, {snap.capability_count} GLN message types"
    )


def _tour(directory: Path, profile: str, console: Console) -> tuple[int, _Story]:
    from soredi_sync.sandbox.generate import generate
    from soredi_sync.sandbox.server import SandboxServer
    from soredi_sync.sandbox.soap import SoapSandboxServer

    _fresh(directory)
    database = directory.resolve() / DATABASE
    settings = Settings(database_url=f"sqlite:///{database}")
    story = _Story(database_url=settings.database_url)

    console.print(
        f"[bold]1. Sandbox[/bold]: a synthetic SOR ({profile} profile), days 0..{DAYS}, "
        f"in {escape(str(directory / SANDBOX))}"
    )
    sandbox = directory / SANDBOX
    generate(
        sandbox,
        profile=profile,
        seed=DEMO_SEED,
        days=DAYS,
        columns=settings.csv_columns,
        message_types=settings.message_types,
    )
    upgrade(settings.database_url)

    with (
        SandboxServer(
            sandbox,
            day=0,
            xml_path=settings.sources.sor_xml_path,
            csv_path=settings.sources.sor_csv_path,
            columns=settings.csv_columns,
            message_types=settings.message_types,
        ) as server,
        SoapSandboxServer(files=server) as soap,
    ):
        settings.soap.sorus.address = soap.url("sorus")
        with bootstrap(settings) as app:
            console.print(
                f"   served on {server.base_url} in the sor-filer layout; "
                f"SORUS on {soap.url('sorus')}"
            )
            code = _sync_and_show(console, app, server, story)
            if code:
                return code, story
            current = _current(app)
            steps: tuple[Callable[[], int], ...] = (
                lambda: _gateway(console, app, current, directory.resolve() / MESSAGES, story),
                lambda: _region(console, app, current, story),
                lambda: _medcom(console, app, current, server, story),
            )
            for step in steps:
                try:
                    code = step()
                except SorediError as exc:
                    console.print(f"[red]{escape(str(exc))}[/red]")
                    return 1, story
                if code:
                    return code, story
    return 0, story


# -- 2..6: syncing and what changed -------------------------------------------------------------


def _sync_and_show(console: Console, app: App, server: Any, story: _Story) -> int:
    from soredi_sync.cli_render import render_changes, render_gln

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
            render_gln(console, queries.show_gln(uow, gln), app.settings)
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


# -- 7: the conversion gateway ------------------------------------------------------------------


_Current = tuple[SnapshotInfo, Registry]


def _current(app: App) -> _Current:
    with app.uow() as uow:
        snapshot = uow.registry.current_snapshot()
        assert snapshot is not None
        return snapshot, uow.registry.load_registry(snapshot.id)


def _correspondence_receivers(registry: Registry, *, fhir: bool) -> Iterator[str]:
    """Active GLNs with a VANS that take FDIS91 (``fhir``), or XDIS91 and no FDIS91."""
    for gln in sorted(registry.glns):
        record = registry.glns[gln]
        if not record.active or record.only_internal or not record.vans:
            continue
        types = set(registry.message_types(gln))
        if (fhir and "FDIS91" in types) or (
            not fhir and "XDIS91" in types and "XBIN01" in types and "FDIS91" not in types
        ):
            yield gln


def _gateway(console: Console, app: App, current: _Current, messages: Path, story: _Story) -> int:
    """Route two CareCommunication bundles as ``route-message`` does: one native, one converted."""
    from soredi_sync.parsing.message import parse_message
    from soredi_sync.sandbox.messages import Document, care_communication, small_pdf

    settings = app.settings
    snapshot, registry = current
    day = snapshot.effective_date
    story.decided_on = day
    service = app.routing()
    resolver = service.resolver()
    sent_at = datetime.combine(day, time(10, 30), _COPENHAGEN_WINTER)
    report = Document("Blodprøvesvar", "application/pdf", small_pdf("Blodproevesvar, demo"))
    console.print(
        "[bold]7. The conversion gateway[/bold] routes two CareCommunication bundles (FHIR XML) "
        f"written for sandbox receivers, decided on {day} (the sandbox's day), as "
        "route-message does"
    )
    sender = next(_parties(registry, _correspondence_receivers(registry, fhir=True)), None)
    if sender is None:
        console.print("[red]   no sandbox unit sends CareCommunication[/red]")
        return 1
    # (what the story shows, whether the receiver takes FHIR, whether a conversion is made)
    wanted = (("delivered natively", True, False), ("one that must be converted", False, True))
    messages.mkdir(parents=True, exist_ok=True)
    for label, fhir, converted in wanted:
        found = None
        candidates = (g for g in _correspondence_receivers(registry, fhir=fhir) if g != sender.gln)
        for receiver in _parties(registry, candidates):
            data = care_communication(receiver, sender, sent_at=sent_at, attachments=[report])
            facts = parse_message(data, None, message_types=settings.message_types)
            request = facts.to_route_request(None, day, category_names=settings.category_names)
            decision = resolver.resolve(request, service.today())
            if decision.decision is Decision.DELIVER and bool(decision.conversion) is converted:
                found = (receiver, data, facts, decision)
                break
        if found is None:
            console.print(f"[red]   no sandbox receiver for a message {label}[/red]")
            return 1
        receiver, data, facts, decision = found
        path = messages / f"carecommunication-to-{receiver.gln}.xml"
        path.write_bytes(data)
        story.messages.append(path)
        console.print(
            f"   {label}: {facts.message_type} ({facts.syntax}) {facts.business_message} from "
            f"{escape(sender.name)} to {escape(receiver.name)} (GLN {receiver.gln}, SOR-ID "
            f"{receiver.sor_id}), 1 PDF attached; {path.name}"
        )
        _say_decision(console, decision, settings)
        story.gln = receiver.gln  # the converted one, last: its history is worth a look
    return 0


def _parties(registry: Registry, glns: Iterable[str]) -> Iterator[Party]:
    """The addressable units of ``glns``, in order (a GLN no unit uses is skipped)."""
    from soredi_sync.sandbox.messages import party

    for gln in glns:
        try:
            yield party(registry, gln)
        except LookupError:
            continue


def _say_decision(console: Console, decision: RouteDecision, settings: Settings) -> None:
    head = f"{decision.decision.value.upper()} as {decision.message_type} ({decision.syntax})"
    if decision.conversion:
        steps = ", ".join(
            f"{c.step} by VANS {c.by} {settings.vans_names.get(c.by or '', '')}".rstrip()
            for c in decision.conversion
        )
        head += f", converted: {steps}"
    else:
        head += ", native: no conversion"
    carried = ", ".join(f"attachment {a.index} {a.carried_as}" for a in decision.attachments)
    console.print(
        f"     [green]{escape(head)}[/green]" + (f"; {escape(carried)}" if carried else "")
    )
    identification = [e for e in decision.trace if e.rule in _IDENTIFICATION_RULES]
    console.print(
        f"     trace: {len(identification)} identification rules (GLN, SOR-ID and endpoint "
        "agree), then:"
    )
    for entry in decision.trace:
        if entry.rule in _IDENTIFICATION_RULES or entry.rule == "attachment":
            continue
        detail = f" ({entry.detail})" if entry.detail else ""
        console.print(f"       {escape(entry.rule)}: {escape(entry.outcome)}{escape(detail)}")


# -- 8: a region ---------------------------------------------------------------------------------


def _region(console: Console, app: App, current: _Current, story: _Story) -> int:
    """One region's audit summary: findings per rule, and what changed since day 0."""
    from soredi_sync.domain.audit import RULES, AdoptionDimension, adoption
    from soredi_sync.services.audit import run_audit

    context = app.settings.audit_context
    snapshot, registry = current
    region = _busiest_region(registry)
    if region is None:
        console.print("[red]   no GLN names a region[/red]")
        return 1
    with app.uow() as uow:
        report = run_audit(
            uow,
            context,
            snapshot_id=snapshot.id,
            region=region,
            since_snapshot=story.baseline,
            vans_names=app.settings.vans_names,
        )
    story.region = region
    name = context.region_names.get(region, region)
    severities = ", ".join(f"{n} {s}" for s, n in report.severity_counts.items())
    console.print(
        f"[bold]8. A region[/bold]: {escape(name)} ({region}) reads its audit summary of snapshot "
        f"{report.snapshot.id} ({report.on})"
    )
    console.print(
        f"   {len(report.findings)} findings ({severities}); since snapshot "
        f"{report.since.id if report.since else '-'}: {len(report.new or [])} new, "
        f"{len(report.resolved or [])} resolved"
    )
    titles = {rule.code: rule.title for rule in RULES}
    for code, count in sorted(report.counts.items(), key=lambda item: (-item[1], item[0])):
        if count:
            console.print(f"   {count:5d}  {code}: {escape(titles[code])}")
    groups = adoption(registry, context, snapshot.effective_date, AdoptionDimension.REGION)
    counts = groups.get(name)
    if counts is not None and counts.total:
        console.print(
            f"   CareCommunication adoption: {counts.fhir_only} GLNs take it only as FHIR, "
            f"{counts.both} both ways, {counts.legacy_only} legacy only "
            f"({100 * counts.accepts_fdis91 / counts.total:.0f} % take FDIS91)"
        )
    return 0


def _busiest_region(registry: Registry) -> str | None:
    """The region with the most active GLNs (the lowest code among equals)."""
    counts = Counter(g.region_code for g in registry.glns.values() if g.active and g.region_code)
    return min(counts, key=lambda code: (-counts[code], code)) if counts else None


# -- 9: MedCom -----------------------------------------------------------------------------------


def _medcom(console: Console, app: App, current: _Current, server: Any, story: _Story) -> int:
    """One municipality's switch plan: created, submitted to SORUS, verified the next day."""
    from soredi_sync.services.plans import create_plan, submit_plan, verify_open_plans

    context = app.settings.audit_context
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
    _say_outcome(console, f"   day {DAYS}", outcome)
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


# -- --keep: how to explore what is left --------------------------------------------------------


def _explore(console: Console, directory: Path, story: _Story) -> None:
    url = story.database_url
    run = f"soredi-sync --database-url {shlex.quote(url)}"
    console.print(
        f"Done. Kept in {escape(str(directory))}: the database ({DATABASE}), the sandbox "
        f"({SANDBOX}/, days 0..{DAYS} and the SORUS journal) and the messages ({MESSAGES}/). "
        "Explore it:"
    )
    lines = [
        f"{run} status",
        f"{run} changes --since 0 --limit 20",
    ]
    if story.gln:
        lines.append(f"{run} history gln {story.gln}")
    if story.messages and story.decided_on:
        message = shlex.quote(str(story.messages[-1]))
        lines.append(f"{run} route-message {message} --at {story.decided_on}")
    if story.region:
        lines.append(f"{run} audit --region {story.region}")
    if story.plan_id is not None:
        lines.append(f"{run} plan show {story.plan_id}")
    lines.append(f"{run} serve      # the HTTP API (tokens: soredi-sync token --help)")
    sandbox = shlex.quote(str(directory.resolve() / SANDBOX))
    lines.append(f"soredi-sync sandbox serve --dir {sandbox} --day {DAYS}")
    for line in lines:
        console.print(f"  {escape(line)}", soft_wrap=True)
