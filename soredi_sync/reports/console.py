"""Query results and routing decisions on a rich console: the text output of the CLI's reads
and routing commands, and of the demo."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from rich.console import Console
from rich.table import Table
from rich.text import Text

from soredi_sync.domain.identifiers import (
    IdentifierKind,
    IdentifierSource,
    SystemSpelling,
    read_identifier,
)
from soredi_sync.domain.model import Capability, Gln
from soredi_sync.domain.routing import (
    AttachmentContent,
    AttachmentPlan,
    Decision,
    RouteDecision,
    RouteRequest,
)
from soredi_sync.ports.records import ChangeRecord
from soredi_sync.services.queries import GlnHistory, GlnView, UnitView
from soredi_sync.soap.records import LookedUpUnit


def _vans(vans_names: Mapping[str, str], code: str | None) -> str:
    if not code:
        return "(none)"
    name = vans_names.get(code)
    return f"{code} {name}" if name else code


def _gln_lines(gln: Gln, vans_names: Mapping[str, str]) -> list[str]:
    return [
        f"active: {'yes' if gln.active else 'NO (NonActiveIndicator)'}"
        + ("; only internal" if gln.only_internal else ""),
        f"VANS: {_vans(vans_names, gln.vans)}",
        f"system: supplier {gln.system_supplier or '-'}, type {gln.system_type or '-'}",
        f"region code: {gln.region_code or '-'}; EDI administrator: {gln.edi_administrator or '-'}",
        f"valid: {gln.from_date or '?'} .. {gln.to_date or 'open'}",
    ]


def render_unit(console: Console, view: UnitView, vans_names: Mapping[str, str]) -> None:
    unit = view.unit
    console.print(f"[bold]{unit.name}[/bold]  SOR {unit.sor_id}  ({unit.kind.value})")
    console.print(f"snapshot {view.snapshot.id} of {view.snapshot.effective_date}")
    details = [
        f"type code: {unit.type_code or '-'}",
        f"valid: {unit.from_date or '?'} .. {unit.to_date or 'open'}",
    ]
    for label, value in (
        ("SHAK", unit.shak),
        ("ydernummer", unit.provider_number),
        ("pharmacy", unit.pharmacy_number),
        ("postal code", unit.postal_code),
    ):
        if value:
            details.append(f"{label}: {value}")
    for line in details:
        console.print(f"  {line}")
    path = " <- ".join([a.name + f" ({a.sor_id})" for a in reversed(view.ancestors)] + [unit.name])
    console.print(f"  tree: {path}")
    eff = view.effective
    if eff.gln is None:
        console.print(
            f"  GLN: none (gln mode {unit.gln_mode.value}; walked {' -> '.join(eff.path)})"
        )
    else:
        how = (
            "own"
            if eff.inherited_from is None
            else f"inherited from {eff.inherited_from} via {' -> '.join(eff.path)}"
        )
        console.print(f"  GLN: {eff.gln} ({how})")
        if view.gln:
            for line in _gln_lines(view.gln, vans_names):
                console.print(f"    {line}")
        console.print(
            "    message types: " + (", ".join(c.message_type for c in view.message_types) or "-")
        )
    if view.children:
        console.print(f"  children: {len(view.children)}")
        for child in view.children[:20]:
            console.print(f"    {child.sor_id} {child.name}")


def render_gln(console: Console, view: GlnView, vans_names: Mapping[str, str]) -> None:
    console.print(
        f"[bold]GLN {view.gln.gln}[/bold]  snapshot {view.snapshot.id} of "
        f"{view.snapshot.effective_date}"
    )
    for line in _gln_lines(view.gln, vans_names):
        console.print(f"  {line}")
    types = ", ".join(
        f"{c.message_type}" + (f" ({c.version_code})" if c.version_code else "")
        for c in view.message_types
    )
    console.print(f"  message types ({len(view.message_types)}): {types or '-'}")
    console.print(f"  owned by: {', '.join(f'{u.sor_id} {u.name}' for u in view.owners) or '-'}")
    if view.inheritors:
        console.print(f"  inherited by {len(view.inheritors)} units:")
        for unit in view.inheritors[:20]:
            console.print(f"    {unit.sor_id} {unit.name} (parent {unit.parent_sor_id})")
        if len(view.inheritors) > 20:
            console.print(f"    ... and {len(view.inheritors) - 20} more")


def _snap_label(result: GlnHistory, snapshot_id: int | None) -> str:
    if snapshot_id is None:
        return "now"
    snap = result.snapshots.get(snapshot_id)
    return f"#{snapshot_id} ({snap.effective_date})" if snap else f"#{snapshot_id}"


def render_gln_history(
    console: Console, result: GlnHistory, _vans_names: Mapping[str, str]
) -> None:
    console.print(f"[bold]History of GLN {result.gln}[/bold]")
    table = Table("from", "until", "what")
    for span in result.versions:
        gln = cast(Gln, span.record)
        table.add_row(
            _snap_label(result, span.valid_from),
            _snap_label(result, span.valid_to),
            f"active={gln.active} VANS={gln.vans} system={gln.system_type}",
        )
    for span in result.capabilities:
        cap = cast(Capability, span.record)
        table.add_row(
            _snap_label(result, span.valid_from),
            _snap_label(result, span.valid_to),
            f"{cap.message_type} {cap.version_code or ''}".strip(),
        )
    console.print(table)


def render_changes(console: Console, events: list[ChangeRecord], next_cursor: int) -> None:
    table = Table("cursor", "snapshot", "entity", "kind", "key", "detail")
    table.columns[4].no_wrap = True
    for event in events:
        if event.kind == "changed":
            fields = event.details.get("fields", {})
            detail = ", ".join(f"{k}: {v[0]!s} -> {v[1]!s}" for k, v in fields.items())
        else:
            record = event.details.get("after") or event.details.get("before") or {}
            detail = str(record.get("name") or record.get("version_code") or "")
        table.add_row(
            str(event.cursor),
            str(event.snapshot_id),
            event.entity,
            event.kind,
            event.key,
            detail[:100],
        )
    console.print(table)
    console.print(f"next cursor: {next_cursor}")


def render_decision(
    console: Console, decision: RouteDecision, now: datetime, *, read: str | None = None
) -> None:
    """A routing decision for people: what was read (``read``, for a message file), the
    decision, address, conversion, one line per attachment, the warnings with their codes and
    the trace.

    Everything that comes from a message or the registry is printed as plain text (a title
    with ``[/]`` or ``:smile:`` in it is shown as written, not taken as rich markup), and no
    line is re-wrapped: each line of the answer is one line of output, ending in a newline.
    """
    lines: list[Text] = []
    if read is not None:
        lines.append(Text(read))
    colour = "green" if decision.decision is Decision.DELIVER else "red"
    head = Text(decision.decision.value.upper(), style=f"bold {colour}")
    if decision.decision is Decision.DELIVER:
        head.append(f" as {decision.message_type} ({decision.syntax})")
        if len(decision.message_types) > 1:
            head.append(f"; also takes {', '.join(decision.message_types[1:])}")
    else:
        head.append(f": {decision.reason.value if decision.reason else '?'}")
    lines.append(head)
    address = decision.address
    lines.append(
        Text(
            f"  address: SOR-ID {address.sor_id or '-'}, GLN {address.gln or '-'}"
            + (f" (inherited from {address.inherited_from})" if address.inherited_from else "")
        )
    )
    if decision.conversion:
        steps = ", ".join(f"{c.step} by VANS {c.by}" for c in decision.conversion)
        lines.append(Text(f"  conversion: {steps}"))
    elif decision.decision is Decision.DELIVER:
        lines.append(Text("  conversion: none (native)"))
    if decision.attachments:
        lines.append(Text(f"  attachments: {len(decision.attachments)}"))
        lines.extend(Text(f"    {attachment_line(a)}") for a in decision.attachments)
    for warning in decision.warnings:
        line = Text("  warning ", style="yellow")
        line.append(warning.code.value, style="bold yellow")
        line.append(f": {warning.message}")
        lines.append(line)
    lines.append(
        Text(
            f"  decided on {decision.decided_on} with snapshot {decision.snapshot.id} "
            f"({decision.age_seconds(now) / 3600:.1f} h old)"
        )
    )
    lines.append(Text("  trace:"))
    lines.extend(
        Text(f"    {e.rule}: {e.outcome}" + (f" ({e.detail})" if e.detail else ""))
        for e in decision.trace
    )
    for line in lines:
        console.print(line, soft_wrap=True)


_TRAVELS = {
    AttachmentContent.DATA: "data",
    AttachmentContent.SEPARATE: "in a binary message of its own",
    AttachmentContent.LINK: "link only",
    AttachmentContent.NONE: "no data and no link",
}


def attachment_line(plan: AttachmentPlan) -> str:
    """``2. "Røntgen" declared image/png, bytes show application/pdf, 10334 bytes, data,
    carried XBIN01 as application/pdf``: the last part only when it travels under another
    type than the declared one."""
    # One line per attachment, whatever whitespace the title holds.
    title = f'"{" ".join(plan.title.split())}"' if plan.title else "(no title)"
    line = (
        f"{plan.index}. {title} declared {plan.declared_type or '(none)'}, "
        f"bytes show {plan.sniffed_type or '?'}, {plan.size} bytes, "
        f"{_TRAVELS[plan.content]}, carried {plan.carried_as}"
    )
    if plan.mime_type != plan.declared_type:
        line += f" as {plan.mime_type or '(no type)'}"
    return line


def describe_read(read: Mapping[str, str | None], request: RouteRequest) -> str:
    """``read: XDIS91 (oioxml) correspondence, receiver EAN 5790000120314``: what was read
    from a message file, and the receiver as the message names it."""
    return (
        f"read: {read['message_type']} ({read['syntax']}) {read['business_message']}, "
        f"receiver {receiver_words(request)}"
    )


_SOURCE_LABELS = {
    IdentifierSource.OIOXML: "EAN",
    IdentifierSource.EDIFACT: "UNB recipient",
}
_KIND_LABELS = {IdentifierKind.GLN: "GLN", IdentifierKind.SOR_ID: "SOR-ID"}


def receiver_words(request: RouteRequest) -> str:
    """Every identifier the request gives for its receiver, as the message wrote it."""
    if not request.receiver_identifiers:
        given = [
            f"{label} {value}"
            for label, value in (("GLN", request.receiver_gln), ("SOR-ID", request.receiver_sor_id))
            if value
        ]
        return ", ".join(given) or "(none)"
    words = []
    for identifier in request.receiver_identifiers:
        found = read_identifier(identifier)
        if identifier.source is IdentifierSource.ENDPOINT:
            words.append(
                f"endpoint SOR-ID {found.value}" if found.value else f"endpoint {identifier.value}"
            )
            continue
        label = _SOURCE_LABELS.get(identifier.source) or _KIND_LABELS.get(found.kind)
        if label is None or found.spelling in (SystemSpelling.MISSPELT, SystemSpelling.UNKNOWN):
            label = f"{label or 'identifier'} (system {identifier.system or '-'})"
        elif found.spelling is SystemSpelling.LEGACY:
            label = f"{label} (system {identifier.system})"
        words.append(f"{label} {identifier.value}")
    return ", ".join(words)


def render_live_unit(
    console: Console, looked_up: LookedUpUnit, vans_names: Mapping[str, str]
) -> None:
    """A unit as SORLS answered it just now (not from the local copy)."""
    unit = looked_up.unit
    console.print(
        f"[bold]{unit.name}[/bold]  SOR {unit.sor_id}  ({unit.kind.value}), live from SORLS"
    )
    console.print(f"  parent: {unit.parent_sor_id or '-'}; owner: {unit.owner_sor_id}")
    console.print(f"  valid: {unit.from_date or '?'} .. {unit.to_date or 'open'}")
    console.print(f"  GLN mode: {unit.gln_mode.value}" + (f", GLN {unit.gln}" if unit.gln else ""))
    if looked_up.gln is not None:
        for line in _gln_lines(looked_up.gln, vans_names):
            console.print(f"    {line}")
