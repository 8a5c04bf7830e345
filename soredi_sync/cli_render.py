"""Human-readable rendering of query results for the CLI (rich)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from soredi_sync.config import Settings
from soredi_sync.db.repository import ChangeRecord
from soredi_sync.domain.model import Gln
from soredi_sync.domain.routing import Decision, RouteDecision
from soredi_sync.services.queries import GlnHistory, GlnView, UnitView


def _vans(settings: Settings, code: str | None) -> str:
    if not code:
        return "(none)"
    name = settings.vans_names.get(code)
    return f"{code} {name}" if name else code


def _gln_lines(gln: Gln, settings: Settings) -> list[str]:
    return [
        f"active: {'yes' if gln.active else 'NO (NonActiveIndicator)'}"
        + ("; only internal" if gln.only_internal else ""),
        f"VANS: {_vans(settings, gln.vans)}",
        f"system: supplier {gln.system_supplier or '-'}, type {gln.system_type or '-'}",
        f"region code: {gln.region_code or '-'}; EDI administrator: {gln.edi_administrator or '-'}",
        f"valid: {gln.from_date or '?'} .. {gln.to_date or 'open'}",
    ]


def render_unit(console: Console, view: UnitView, settings: Settings) -> None:
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
            for line in _gln_lines(view.gln, settings):
                console.print(f"    {line}")
        console.print(
            "    message types: " + (", ".join(c.message_type for c in view.message_types) or "-")
        )
    if view.children:
        console.print(f"  children: {len(view.children)}")
        for child in view.children[:20]:
            console.print(f"    {child.sor_id} {child.name}")


def render_gln(console: Console, view: GlnView, settings: Settings) -> None:
    console.print(
        f"[bold]GLN {view.gln.gln}[/bold]  snapshot {view.snapshot.id} of "
        f"{view.snapshot.effective_date}"
    )
    for line in _gln_lines(view.gln, settings):
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


def render_gln_history(console: Console, result: GlnHistory, _settings: Settings) -> None:
    console.print(f"[bold]History of GLN {result.gln}[/bold]")
    table = Table("from", "until", "what")
    for span in result.versions:
        gln: Any = span.record
        table.add_row(
            _snap_label(result, span.valid_from),
            _snap_label(result, span.valid_to),
            f"active={gln.active} VANS={gln.vans} system={gln.system_type}",
        )
    for span in result.capabilities:
        cap: Any = span.record
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


def render_decision(console: Console, decision: RouteDecision, now: datetime) -> None:
    colour = "green" if decision.decision is Decision.DELIVER else "red"
    head = f"[bold {colour}]{decision.decision.value.upper()}[/bold {colour}]"
    if decision.decision is Decision.DELIVER:
        head += f" as {decision.message_type} ({decision.syntax})"
        if len(decision.message_types) > 1:
            head += f"; also takes {', '.join(decision.message_types[1:])}"
    else:
        head += f": {decision.reason.value if decision.reason else '?'}"
    console.print(head)
    address = decision.address
    console.print(
        f"  address: SOR-ID {address.sor_id or '-'}, GLN {address.gln or '-'}"
        + (f" (inherited from {address.inherited_from})" if address.inherited_from else "")
    )
    if decision.conversion:
        steps = ", ".join(f"{c.step} by VANS {c.by}" for c in decision.conversion)
        console.print(f"  conversion: {steps}")
    elif decision.decision is Decision.DELIVER:
        console.print("  conversion: none (native)")
    if decision.attachments:
        carried = {a.carried_as for a in decision.attachments}
        console.print(
            f"  attachments: {len(decision.attachments)}, "
            + ("inline" if carried == {"inline"} else "one " + "/".join(sorted(carried)) + " each")
        )
    for warning in decision.warnings:
        console.print(f"  [yellow]warning[/yellow]: {warning}")
    console.print(
        f"  decided on {decision.decided_on} with snapshot {decision.snapshot.id} "
        f"({decision.age_seconds(now) / 3600:.1f} h old)"
    )
    console.print("  trace:")
    for entry in decision.trace:
        console.print(
            f"    {entry.rule}: {entry.outcome}" + (f" ({entry.detail})" if entry.detail else "")
        )


def render_live_unit(console: Console, looked_up: Any, settings: Settings) -> None:
    """A unit as SORLS answered it just now (not from the local copy)."""
    unit = looked_up.unit
    console.print(
        f"[bold]{unit.name}[/bold]  SOR {unit.sor_id}  ({unit.kind.value}), live from SORLS"
    )
    console.print(f"  parent: {unit.parent_sor_id or '-'}; owner: {unit.owner_sor_id}")
    console.print(f"  valid: {unit.from_date or '?'} .. {unit.to_date or 'open'}")
    console.print(f"  GLN mode: {unit.gln_mode.value}" + (f", GLN {unit.gln}" if unit.gln else ""))
    if looked_up.gln is not None:
        for line in _gln_lines(looked_up.gln, settings):
            console.print(f"    {line}")
