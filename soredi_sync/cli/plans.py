"""``soredi-sync plan``: change plans for SOR-EDI (create, show, export, submit, verify)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from soredi_sync.cli.common import (
    actor_name,
    actor_option,
    console,
    emit_json,
    fail,
    json_option,
    jsonable,
    open_app,
    split_values,
    window_option,
)
from soredi_sync.errors import SorediError

if TYPE_CHECKING:
    from soredi_sync.ports.records import Plan, PlanEvent


def _plan_json(plan: Plan, events: Sequence[PlanEvent] | None = None) -> dict[str, Any]:
    from soredi_sync.services.plans import plan_counts

    data: dict[str, Any] = {**jsonable(plan), "counts": plan_counts(plan)}
    if events is not None:
        data["events"] = jsonable(events)
    return data


def _print_plan(plan: Plan) -> None:
    from rich.table import Table

    from soredi_sync.services.plans import plan_counts

    counts = ", ".join(f"{k} {v}" for k, v in plan_counts(plan).items() if v)
    out = console()
    out.print(
        f"Plan {plan.id} ({plan.goal}) for owners {', '.join(plan.owners) or '(none)'}"
        f"{f' [{plan.owner_kind}]' if plan.owner_kind else ''}, built on snapshot "
        f"{plan.snapshot_id} by {plan.created_by} at {plan.created_at:%Y-%m-%d %H:%M} UTC: "
        f"{len(plan.items)} items{f' ({counts})' if counts else ''}"
    )
    table = Table("GLN", "owner", "action", "message type", "version", "reason", "state")
    for i in plan.items:
        table.add_row(
            i.gln,
            i.owner_sor_id,
            i.action.value,
            i.message_type,
            i.version_code or "",
            i.reason,
            i.state.value,
        )
    out.print(table)


@click.group("plan")
def plan_group() -> None:
    """Change plans for SOR-EDI: create, show, export, submit, verify."""


@plan_group.command("create")
@click.option(
    "--owner",
    "owners",
    multiple=True,
    metavar="SOR_ID",
    help="An institution owner (SOR-ID); repeat or comma-separate.",
)
@click.option(
    "--owner-kind",
    type=click.Choice(["region", "municipality", "private", "other"]),
    help="Every institution owner of this kind (MedCom: municipality).",
)
@click.option(
    "--switch-to",
    type=click.Choice(["carecommunication"]),
    help="Add FDIS91 and FCTL, remove DIS91/XDIS91 on every active legacy GLN.",
)
@click.option(
    "--from-findings",
    "from_findings",
    metavar="CODE",
    help="Resolve these findings: FDIS91_WITH_LEGACY or FHIR_WITHOUT_FCTL.",
)
@actor_option
@json_option
@click.pass_context
def plan_create(
    ctx: click.Context,
    owners: tuple[str, ...],
    owner_kind: str | None,
    switch_to: str | None,
    from_findings: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Build a change plan on the current snapshot (every item planned)."""
    from soredi_sync.services.plans import PlanRequestError, create_plan

    with open_app(ctx) as app, app.uow() as uow:
        try:
            created = create_plan(
                uow,
                app.reference.audit_context,
                actor=actor_name(actor),
                owners=split_values(owners),
                owner_kind=owner_kind,
                switch_to=switch_to,
                findings=from_findings,
            )
        except PlanRequestError as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            fail(ctx, exc)
    if as_json:
        emit_json(_plan_json(created))
    else:
        _print_plan(created)


@plan_group.command("show")
@click.argument("plan_id", metavar="ID", type=int)
@json_option
@click.pass_context
def plan_show(ctx: click.Context, plan_id: int, as_json: bool) -> None:
    """A plan, its items and (with --json) the record of every state change."""
    from soredi_sync.services.plans import get_plan, plan_events

    with open_app(ctx) as app, app.uow() as uow:
        try:
            found = get_plan(uow, plan_id)
            events = plan_events(uow, plan_id)
        except SorediError as exc:
            fail(ctx, exc)
    if as_json:
        emit_json(_plan_json(found, events))
    else:
        _print_plan(found)


@plan_group.command("traffic")
@click.argument("plan_id", metavar="ID", type=int)
@window_option("The decisions logged in these days, ending today.")
@json_option
@click.pass_context
def plan_traffic(ctx: click.Context, plan_id: int, window: int, as_json: bool) -> None:
    """What the plan would change in real traffic: the messages logged to its GLNs decided
    today without and with its changes (native, converted, rejected; per day)."""
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.domain.traffic import CONVERTED, NATIVE, REJECTED
    from soredi_sync.services.cutover_traffic import price_plan
    from soredi_sync.services.plans import get_plan

    with open_app(ctx) as app, app.uow() as uow:
        try:
            found = get_plan(uow, plan_id)
            resolver = app.routing().resolver()
        except SorediError as exc:
            fail(ctx, exc)
        priced = price_plan(uow, resolver, found, window_days=window, today=today_in_denmark())
    kinds = (NATIVE, CONVERTED, REJECTED)
    if as_json:
        emit_json(
            {
                "plan_id": priced.plan_id,
                "first": priced.first,
                "last": priced.last,
                "days": priced.days,
                "messages": priced.messages,
                "not_replayable": priced.not_replayable,
                "before": {k: priced.before.get(k, 0) for k in kinds},
                "after": {k: priced.after.get(k, 0) for k in kinds},
                "fewer_per_day": {k: round(priced.fewer_per_day(k), 1) for k in kinds},
            }
        )
        return
    click.echo(
        f"Plan {plan_id}: {priced.messages:,} messages logged to its GLNs "
        f"{priced.first}..{priced.last} ({priced.days} days), decided today:"
    )
    for kind in kinds:
        before, after = priced.before.get(kind, 0), priced.after.get(kind, 0)
        fewer = priced.fewer_per_day(kind)
        click.echo(
            f"  {kind:9} {before:>9,} now, {after:>9,} after the plan: "
            f"{abs(fewer):,.1f} {'fewer' if fewer >= 0 else 'more'} a day"
        )


@plan_group.command("export")
@click.argument("plan_id", metavar="ID", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def plan_export(ctx: click.Context, plan_id: int, fmt: str, out: Path) -> None:
    """Write the worklist for the SOR-EDI application (GLN, owner, action, type, version,
    reason)."""
    from soredi_sync.services.plans import get_plan, write_worklist

    with open_app(ctx) as app, app.uow() as uow:
        try:
            found = get_plan(uow, plan_id)
        except SorediError as exc:
            fail(ctx, exc)
    write_worklist(found, fmt, out)
    click.echo(f"wrote {out} ({len(found.items)} items)", err=True)


@plan_group.command("submit")
@click.argument("plan_id", metavar="ID", type=int)
@click.option(
    "--channel",
    type=click.Choice(["worklist", "sorus"]),
    required=True,
    help="worklist: a file for the SOR-EDI application; sorus: the SOR update service (SOAP).",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Worklist file.")
@actor_option
@json_option
@click.pass_context
def plan_submit(
    ctx: click.Context,
    plan_id: int,
    channel: str,
    fmt: str,
    out: Path | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Hand the plan's items to SOR and record each outcome.

    worklist: planned items (and any SORUS rejected) become submitted; --out writes the file.
    sorus: planned items are sent to SORUS ([soap.sorus] in the configuration); accepted ones
    become submitted, refused ones rejected with SORUS's reason. Exit 1 if SORUS fails; the
    batches before the failure stay recorded.
    """
    from soredi_sync.services.plans import plan_counts, plan_events, submit_plan

    if channel == "sorus" and out is not None:
        raise click.BadParameter("--out is for --channel worklist", param_hint="--out")
    with open_app(ctx) as app, app.uow() as uow:
        try:
            sorus = app.sorus() if channel == "sorus" else None
            submitted = submit_plan(
                uow,
                plan_id,
                channel,
                actor=actor_name(actor),
                out=out,
                fmt=fmt,
                sorus=sorus,
                batch_size=app.settings.soap.sorus_batch_size,
            )
        except SorediError as exc:
            fail(ctx, exc)
        reasons = {
            e.item_id: str(e.details.get("reason", ""))
            for e in plan_events(uow, plan_id)
            if e.to_state == "rejected"
        }
    counts = plan_counts(submitted)
    if as_json:
        emit_json({"plan_id": plan_id, "channel": channel, "counts": counts})
        return
    if out is not None:
        click.echo(f"wrote {out}", err=True)
    rejected = f", {counts['rejected']} rejected" if counts["rejected"] else ""
    click.echo(f"plan {plan_id}: {counts['submitted']} items submitted via {channel}{rejected}")
    for item in submitted.items:
        if item.state == "rejected":
            why = reasons.get(item.id) or "no reason given"
            click.echo(f"  rejected: {item.gln} {item.action.value} {item.message_type}: {why}")


@plan_group.command("verify")
@click.argument("plan_id", metavar="ID", type=int)
@actor_option
@json_option
@click.pass_context
def plan_verify(ctx: click.Context, plan_id: int, actor: str | None, as_json: bool) -> None:
    """Judge each submitted item against the current snapshot: confirmed, pending or
    diverged."""
    from soredi_sync.services.plans import verify_plan

    with open_app(ctx) as app, app.uow() as uow:
        try:
            result = verify_plan(uow, plan_id, actor=actor_name(actor))
        except SorediError as exc:
            fail(ctx, exc)
    if as_json:
        emit_json(result)
        return
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
    click.echo(
        f"plan {plan_id} on snapshot {result.snapshot_id}: {result.changed} items changed "
        f"state; {counts or 'no items'}"
    )
