"""``soredi-sync traffic``: the decision log counted per day (kept after its retention)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import click

from soredi_sync.cli.common import (
    console,
    emit_json,
    json_option,
    open_app,
    parse_day,
    window_option,
)


@click.group("traffic")
def traffic_group() -> None:
    """Routing traffic: the decision log counted per day, receiver, sender and delivery."""


@traffic_group.command("update")
@click.pass_context
def traffic_update(ctx: click.Context) -> None:
    """Count the logged days not counted whole yet, through today (the daemon does this
    hourly)."""
    from soredi_sync.services.traffic import update_traffic

    with open_app(ctx) as app:
        done = update_traffic(app.uow, app.traffic_owners(), datetime.now(UTC))
    click.echo(_summary("counted", done.days, done.decisions))


@traffic_group.command("rebuild")
@click.option(
    "--since", callback=parse_day, metavar="YYYY-MM-DD", help="Only logged days from this one."
)
@click.pass_context
def traffic_rebuild(ctx: click.Context, since: date | None) -> None:
    """Count again every logged day the decision log still holds whole; days the retention
    has purged keep their counts. Owners are those of the current snapshot."""
    from soredi_sync.services.traffic import rebuild_traffic

    with open_app(ctx) as app:
        done = rebuild_traffic(app.uow, app.traffic_owners(), datetime.now(UTC), since)
    click.echo(_summary("recounted", done.days, done.decisions))


PARTY = ("gln", "sor_id", "owner")


def _summary(verb: str, days: tuple[date, ...], decisions: int) -> str:
    if not days:
        return "nothing to count: the decision log is empty"
    return f"{verb} {decisions:,} decisions logged on {len(days)} day(s), {days[0]}..{days[-1]}"


@traffic_group.command("show")
@window_option("The days routed for, ending today.")
@click.option(
    "--by", type=click.Choice(["receiver", "sender", "pair"]), default="receiver", show_default=True
)
@click.option("--top", type=click.IntRange(1), default=20, show_default=True)
@click.option("--owner", "owners", multiple=True, metavar="SOR-ID", help="Only these owners'.")
@json_option
@click.pass_context
def traffic_show(
    ctx: click.Context, window: int, by: str, top: int, owners: tuple[str, ...], as_json: bool
) -> None:
    """The receivers (senders, pairs) with the most messages in the window, by delivery:
    native, converted, rejected."""
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.domain.traffic import totals

    last = today_in_denmark()
    first = last - timedelta(days=window - 1)
    with open_app(ctx) as app, app.uow() as uow:
        counts = uow.traffic.counts(first, last, frozenset(owners))
    found = totals(counts, by)[:top]
    parties = {"receiver": ["receiver"], "sender": ["sender"], "pair": ["sender", "receiver"]}
    if as_json:
        emit_json(
            {
                "first": first,
                "last": last,
                "by": by,
                "totals": [
                    {
                        **{
                            party: dict(zip(PARTY, t.key[i * 3 : i * 3 + 3], strict=True))
                            for i, party in enumerate(parties[by])
                        },
                        "messages": t.messages,
                        "native": t.native,
                        "converted": t.converted,
                        "rejected": t.rejected,
                    }
                    for t in found
                ],
            }
        )
        return
    from rich.table import Table

    table = Table(
        *(f"{p} (GLN / SOR-ID, owner)" for p in parties[by]),
        "messages",
        "native",
        "converted",
        "rejected",
        title=f"traffic routed for {first}..{last}, by {by}",
    )
    for t in found:
        names = [_party(t.key[i : i + 3]) for i in range(0, len(t.key), 3)]
        numbers = (t.messages, t.native, t.converted, t.rejected)
        table.add_row(*names, *(f"{n:,}" for n in numbers))
    console().print(table)


def _party(key: tuple[str | None, ...]) -> str:
    gln, sor_id, owner = key
    who = " / ".join(x for x in (gln, sor_id) if x) or "(not named)"
    return f"{who}, owner {owner}" if owner else who
