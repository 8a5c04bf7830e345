"""Reports on a snapshot: ``audit`` (findings in SOR-EDI), ``adoption`` (FDIS91 over the
snapshots) and ``cutover`` (receivers lost if the conversions ended)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soredi_sync.cli.common import (
    DAYS,
    at_option,
    console,
    emit_json,
    fail,
    json_option,
    json_text,
    open_app,
    parse_day,
    window_option,
    write_or_echo,
)
from soredi_sync.errors import NoSnapshot, SorediError

if TYPE_CHECKING:
    from soredi_sync.ports.storage import UnitOfWork
    from soredi_sync.services.audit import AuditReport
    from soredi_sync.services.cutover import CutoverReport


@click.command("audit")
@click.option(
    "--owner",
    metavar="SOR_ID_OR_NAME",
    help="Only this institution owner: a SOR-ID (all digits) or a name fragment.",
)
@click.option("--region", metavar="CODE", help="Only GLNs of this region code (1081-1085).")
@click.option("--vans", metavar="CODE", help="Only GLNs of this VANS (communication supplier).")
@click.option(
    "--since",
    "since",
    type=click.IntRange(1),
    metavar="SNAPSHOT_ID",
    help="Also list findings new and resolved since this snapshot.",
)
@click.option("--snapshot", "snapshot_id", type=click.IntRange(1), help="Audit this snapshot.")
@at_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "xlsx", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (required for xlsx and html).",
)
@click.option(
    "--by-traffic",
    is_flag=True,
    help="Rank the findings by the messages converted and rejected at their GLN (the traffic "
    "counts, `soredi-sync traffic`); table, csv or json.",
)
@window_option("With --by-traffic: the days routed for, ending today.")
@click.option("--top", type=click.IntRange(1), help="With --by-traffic: only the first N.")
@click.pass_context
def audit(
    ctx: click.Context,
    owner: str | None,
    region: str | None,
    vans: str | None,
    since: int | None,
    snapshot_id: int | None,
    at: date | None,
    fmt: str,
    out: Path | None,
    by_traffic: bool,
    window: int,
    top: int | None,
) -> None:
    """Findings in SOR-EDI on the current snapshot (or --snapshot/--at), per rule and owner."""
    from soredi_sync.reports import audit as report_files
    from soredi_sync.reports.audit_page import to_html
    from soredi_sync.services.audit import run_audit

    if fmt in ("xlsx", "html") and out is None:
        raise click.UsageError(f"--format {fmt} needs --out FILE")
    if by_traffic and (fmt in ("xlsx", "html") or since is not None):
        raise click.UsageError("--by-traffic writes a table, csv or json, without --since")
    if snapshot_id is not None and at is not None:
        raise click.UsageError("give --snapshot or --at, not both")
    owner = owner.strip() if owner else None
    owners = [owner] if owner and owner.isdigit() else None
    owner_name = owner if owner and not owner.isdigit() else None
    with open_app(ctx) as app, app.uow() as uow:
        try:
            report = run_audit(
                uow,
                app.reference.audit_context,
                snapshot_id=snapshot_id,
                at=at,
                owners=owners,
                owner_name=owner_name,
                region=region,
                vans=vans,
                since_snapshot=since,
                vans_names=app.reference.vans_names,
            )
        except SorediError as exc:
            fail(ctx, exc)
        if by_traffic:
            _by_traffic(report, uow, window, top, fmt, out)
            return
    if fmt == "table":
        report_files.render_table(console(), report)
        return
    if fmt == "xlsx" or fmt == "html":
        assert out is not None
        (report_files.to_xlsx if fmt == "xlsx" else to_html)(report, out)
        click.echo(f"wrote {out} ({len(report.findings)} findings)", err=True)
        return
    if fmt == "csv":
        text = report_files.to_csv(report)
    else:
        text = json_text(report_files.to_json(report))
    write_or_echo(text, out)


def _by_traffic(
    report: AuditReport, uow: UnitOfWork, window: int, top: int | None, fmt: str, out: Path | None
) -> None:
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.reports.traffic import render_weighed, weighed_csv, weighed_json
    from soredi_sync.services.traffic import weigh_audit

    weighed = weigh_audit(uow, report, window, today_in_denmark())
    if fmt == "table":
        render_weighed(console(), weighed, top)
    elif fmt == "csv":
        write_or_echo(weighed_csv(weighed, top), out)
    else:
        write_or_echo(json_text(weighed_json(weighed, top)), out)


@click.command("adoption")
@click.option(
    "--by",
    type=click.Choice(["region", "owner-type", "vans"]),
    help="Count per region, owner type or VANS (default: the whole registry).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png|FILE.html",
    help="Also plot the FDIS91 share over the snapshots.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
def adoption(
    ctx: click.Context, by: str | None, fmt: str, plot: Path | None, out: Path | None
) -> None:
    """CareCommunication (FDIS91) adoption among active GLNs on every snapshot, oldest first."""
    from soredi_sync.reports.adoption import adoption_csv, adoption_json, adoption_plot
    from soredi_sync.services.audit import adoption_series

    if plot is not None and plot.suffix.lower() not in (".png", ".html", ".htm"):
        raise click.BadParameter("use a .png or .html file", param_hint="--plot")
    with open_app(ctx) as app, app.uow() as uow:
        series = adoption_series(uow, app.reference.audit_context, by=by)
    if not series:
        fail(ctx, NoSnapshot())
    text = adoption_csv(series) if fmt == "csv" else json_text(adoption_json(series))
    write_or_echo(text, out)
    if plot is not None:
        try:
            adoption_plot(series, plot)
        except SorediError as exc:  # a PNG without the [plot] extra
            fail(ctx, exc)
        click.echo(f"wrote {plot}", err=True)


@click.command("cutover")
@click.option(
    "--date",
    "on",
    required=True,
    callback=parse_day,
    metavar="DATE",
    help="The day the conversion paths would be gone (YYYY-MM-DD).",
)
@click.option(
    "--owner",
    "owners",
    multiple=True,
    metavar="SOR_ID",
    help="Only receivers of this institution owner (repeatable).",
)
@click.option(
    "--traffic-window",
    type=DAYS,
    metavar="DAYS",
    help="Also price it in messages: the decisions logged in the last DAYS days decided "
    "again for DATE (the decision log's own retention limits how far back).",
)
@json_option
@click.pass_context
def cutover(
    ctx: click.Context,
    on: date,
    owners: tuple[str, ...],
    traffic_window: int | None,
    as_json: bool,
) -> None:
    """Receivers each sender syntax reaches today but could not reach if the configured
    conversions ended on DATE (decided by the routing policy in force)."""
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.reports.traffic import print_priced
    from soredi_sync.services.cutover import cutover as cutover_report
    from soredi_sync.services.cutover_traffic import price_cutover, priced_json

    priced = None
    with open_app(ctx) as app:
        try:
            resolver = app.routing().resolver()
        except NoSnapshot as error:
            fail(ctx, error)
        with app.uow() as uow:
            info = uow.registry.get_snapshot(resolver.index.snapshot.id)
            if traffic_window is not None:
                priced = price_cutover(
                    uow,
                    resolver,
                    app.traffic_owners(),
                    on,
                    window_days=traffic_window,
                    today=today_in_denmark(),
                    restrict=frozenset(owners),
                )
        report = cutover_report(
            resolver,
            on,
            owners=list(owners) if owners else None,
            audit_context=app.reference.audit_context,
            today=info.effective_date if info else None,
        )
    if as_json:
        data: dict[str, object] = {
            "snapshot_id": report.snapshot.id,
            "today": report.today,
            "date": report.on,
            "receivers": report.receivers,
            "counts": report.counts,
            "senders": [
                {"sender_syntax": s.sender_syntax, "count": s.count, "lost": s.lost}
                for s in report.senders
            ],
        }
        if priced is not None:
            data["traffic"] = priced_json(priced)
        emit_json(data)
        return
    _print_cutover(report)
    if priced is not None:
        print_priced(console(), priced)


def _print_cutover(report: CutoverReport) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"Snapshot {report.snapshot.id}: {report.receivers} correspondence receivers; "
        f"reached on {report.today}, not on {report.on}:"
    )
    for sender in report.senders:
        table = Table(
            "GLN",
            "owner",
            "VANS",
            "types taken",
            "reached today by",
            title=f"{sender.sender_syntax} senders: {sender.count} lost",
        )
        for r in sender.lost:
            owner = f"{r.owner.name} ({r.owner.sor_id})" if r.owner else ""
            table.add_row(
                r.gln,
                owner,
                r.vans or "",
                "/".join(r.message_types),
                " then ".join(r.reached_today_by),
            )
        out.print(table)
