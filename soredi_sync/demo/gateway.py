"""Step 7 of the demo: the conversion gateway routes two CareCommunication bundles written for
sandbox receivers, one delivered natively and one converted by the receiver's VANS."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from soredi_sync.bootstrap import App
from soredi_sync.demo.story import Current, Story
from soredi_sync.domain.model import Registry
from soredi_sync.domain.routing import Decision, RouteDecision
from soredi_sync.reference_data import ReferenceData

if TYPE_CHECKING:
    from soredi_sync.sandbox.messages import Party

_COPENHAGEN_WINTER = timezone(timedelta(hours=1))  # the sandbox's days are in November
# Trace rules about reading the receiver's identifiers; the demo sums them up in one line.
_IDENTIFICATION_RULES = frozenset({"identifier", "addressed-by", "identification"})


def route_bundles(
    console: Console, app: App, current: Current, messages: Path, story: Story
) -> int:
    """Route two CareCommunication bundles as ``route-message`` does: one native, one converted."""
    from soredi_sync.parsing.message import parse_message
    from soredi_sync.sandbox.messages import Document, care_communication, small_pdf

    reference = app.reference
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
            facts = parse_message(data, None, message_types=reference.message_types)
            request = facts.to_route_request(None, day, category_names=reference.category_names)
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
        _say_decision(console, decision, reference)
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


def _say_decision(console: Console, decision: RouteDecision, reference: ReferenceData) -> None:
    head = f"{decision.decision.value.upper()} as {decision.message_type} ({decision.syntax})"
    if decision.conversion:
        steps = ", ".join(
            f"{c.step} by VANS {c.by} {reference.vans_names.get(c.by or '', '')}".rstrip()
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
