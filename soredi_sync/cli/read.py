"""Reading the local copy: ``status``, ``show unit|gln``, ``history gln`` and ``changes``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING, TypeVar

import click

from soredi_sync.cli.common import (
    at_option,
    console,
    database_errors,
    emit_json,
    fail,
    json_option,
    open_app,
    reference_of,
    settings_of,
)
from soredi_sync.errors import SorediError

if TYPE_CHECKING:
    from rich.console import Console

    from soredi_sync.ports.storage import UnitOfWork

T = TypeVar("T")


@click.command("status")
@click.option("--runs", default=10, show_default=True, help="How many recent runs to list.")
@json_option
@click.pass_context
def status(ctx: click.Context, runs: int, as_json: bool) -> None:
    """Recent sync runs, the current snapshot and the age of the data."""
    from soredi_sync.services import queries

    with database_errors(ctx, "reading the status"), open_app(ctx) as app, app.uow() as uow:
        result = queries.status(uow, runs)
    if as_json:
        emit_json(result)
        return
    from rich.table import Table

    out = console()
    if result.current is None:
        out.print("No snapshot yet: run `soredi-sync sync`.")
    else:
        snap = result.current
        out.print(
            f"Current snapshot {snap.id} of {snap.effective_date} "
            f"(taken {snap.taken_at:%Y-%m-%d %H:%M} UTC, {_age(result.data_age_seconds)} old): "
            f"{snap.unit_count} units, "
            f"{snap.gln_count} GLNs, {snap.capability_count} GLN message types; "
            f"change cursor {result.last_change_cursor}"
        )
    table = Table("run", "started (UTC)", "status", "seconds", "snapshot", "detail")
    for run in result.runs:
        detail = run.error or str(run.counts.get("reason") or "")
        table.add_row(
            str(run.id),
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            run.status.value,
            f"{run.duration_seconds:.1f}" if run.duration_seconds is not None else "",
            str(run.snapshot_id or ""),
            detail[:120],
        )
    out.print(table)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _show(
    ctx: click.Context,
    query: Callable[[UnitOfWork], T],
    render: Callable[[Console, T, Mapping[str, str]], None],
    as_json: bool,
) -> None:
    """Run a read query in one unit of work; print it as JSON or with ``render``."""
    with open_app(ctx) as app, app.uow() as uow:
        try:
            result = query(uow)
        except SorediError as exc:
            fail(ctx, exc)
    if as_json:
        emit_json(result)
    else:
        render(console(), result, app.reference.vans_names)


@click.group("show")
def show() -> None:
    """Show a unit or a GLN, now or on an earlier date."""


@show.command("unit")
@click.argument("sor_id")
@at_option
@click.option("--live", is_flag=True, help="Ask SORLS (NSP) now instead of the local copy.")
@json_option
@click.pass_context
def show_unit(ctx: click.Context, sor_id: str, at: date | None, live: bool, as_json: bool) -> None:
    """A SOR unit: attributes, its place in the tree and its effective GLN."""
    from soredi_sync.reports.console import render_unit
    from soredi_sync.services import queries

    if live:
        _show_live_unit(ctx, sor_id, at, as_json)
        return
    _show(ctx, lambda uow: queries.show_unit(uow, sor_id, at), render_unit, as_json)


def _show_live_unit(ctx: click.Context, sor_id: str, at: date | None, as_json: bool) -> None:
    """``show unit --live``: one SORLS GetSorEntity call, no database (default date: today in
    Denmark, whatever the machine's zone)."""
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.soap.sorls import make_sorls_client

    settings = settings_of(ctx)
    try:
        client = make_sorls_client(settings.soap)
        looked_up = client.get_sor_entity(sor_id, at or today_in_denmark())
    except SorediError as exc:
        fail(ctx, exc)
    if as_json:
        emit_json(looked_up)
        return
    from soredi_sync.reports.console import render_live_unit

    render_live_unit(console(), looked_up, reference_of(ctx).vans_names)


@show.command("gln")
@click.argument("gln")
@at_option
@json_option
@click.pass_context
def show_gln(ctx: click.Context, gln: str, at: date | None, as_json: bool) -> None:
    """A GLN: attributes, VANS, message types, units using it and how."""
    from soredi_sync.reports.console import render_gln
    from soredi_sync.services import queries

    _show(ctx, lambda uow: queries.show_gln(uow, gln, at), render_gln, as_json)


@click.group("history")
def history() -> None:
    """How a record changed across snapshots."""


@history.command("gln")
@click.argument("gln")
@json_option
@click.pass_context
def history_gln(ctx: click.Context, gln: str, as_json: bool) -> None:
    """Every version of a GLN and when each message type came and went."""
    from soredi_sync.reports.console import render_gln_history
    from soredi_sync.services import queries

    _show(ctx, lambda uow: queries.gln_history(uow, gln), render_gln_history, as_json)


@click.command("changes")
@click.option("--since", "cursor", type=int, default=0, show_default=True, help="Cursor.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@click.pass_context
def changes(ctx: click.Context, cursor: int, limit: int, as_json: bool) -> None:
    """Change events after a cursor; the last cursor printed is where to continue."""
    from soredi_sync.services import queries

    with open_app(ctx) as app, app.uow() as uow:
        events = queries.changes_since(uow, cursor, limit)
    next_cursor = events[-1].cursor if events else cursor
    if as_json:
        emit_json({"changes": events, "next_cursor": next_cursor})
        return
    from soredi_sync.reports.console import render_changes

    render_changes(console(), events, next_cursor)
