"""``soredi-sync webhook``: change subscriptions (add, list, remove, deliveries, dispatch)."""

from __future__ import annotations

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
)
from soredi_sync.errors import SorediError

if TYPE_CHECKING:
    from soredi_sync.ports.records import Subscription


def _webhook_json(sub: Subscription, counts: dict[str, int]) -> dict[str, Any]:
    from soredi_sync.services.webhooks import WebhookFilter

    data: dict[str, Any] = jsonable(sub)
    data["filters"] = WebhookFilter.of(sub.filters).as_dict()
    data["deliveries"] = counts
    return data


def _filter_text(sub: Subscription) -> str:
    from soredi_sync.services.webhooks import WebhookFilter

    parts = [f"{k}={','.join(v)}" for k, v in WebhookFilter.of(sub.filters).as_dict().items() if v]
    return " ".join(parts) or "everything"


@click.group("webhook")
def webhook_group() -> None:
    """Change subscriptions: changes POSTed, signed, after each sync (see also `changes`)."""


@webhook_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--gln", "glns", multiple=True, metavar="GLN", help="Repeat or comma-separate.")
@click.option(
    "--owner",
    "owners",
    multiple=True,
    metavar="SOR_ID",
    help="An institution owner (SOR-ID); repeat or comma-separate.",
)
@click.option("--message-type", "message_types", multiple=True, metavar="TYPE", help="e.g. FDIS91.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["added", "removed", "changed"]))
@click.option(
    "--entity", "entities", multiple=True, type=click.Choice(["unit", "gln", "capability"])
)
@actor_option
@click.pass_context
def webhook_add(
    ctx: click.Context,
    name: str,
    url: str,
    glns: tuple[str, ...],
    owners: tuple[str, ...],
    message_types: tuple[str, ...],
    kinds: tuple[str, ...],
    entities: tuple[str, ...],
    actor: str | None,
) -> None:
    """Register subscription NAME posting to URL; prints its secret once on stdout.

    It gets the changes made from now on that pass the filters: options of one kind are ORed,
    different ones ANDed; none at all: every change.
    """
    from soredi_sync.services.webhooks import (
        InvalidWebhook,
        WebhookFilter,
        address_policy,
        create_subscription,
    )

    try:
        webhook_filter = WebhookFilter.build(
            glns=split_values(glns),
            owners=split_values(owners),
            message_types=split_values(message_types),
            kinds=kinds,
            entities=entities,
        )
    except InvalidWebhook as exc:
        raise click.UsageError(str(exc)) from None
    with open_app(ctx) as app, app.uow() as uow:
        try:
            created = create_subscription(
                uow,
                name=name,
                url=url,
                webhook_filter=webhook_filter,
                actor=actor_name(actor),
                policy=address_policy(app.settings.webhooks),
            )
        except InvalidWebhook as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            fail(ctx, exc)
    sub = created.subscription
    click.echo(
        f"created webhook {sub.id} {sub.name!r} for {_filter_text(sub)}, from change "
        f"{sub.cursor} on. Its signing secret follows; store it now: it is not shown again.",
        err=True,
    )
    click.echo(created.secret)


@webhook_group.command("list")
@json_option
@click.pass_context
def webhook_list(ctx: click.Context, as_json: bool) -> None:
    """Every subscription (configured and registered, active or removed) and its deliveries."""
    from soredi_sync.services.webhooks import delivery_counts, list_subscriptions

    with open_app(ctx) as app, app.uow() as uow:
        subs = list_subscriptions(uow)
        counts = delivery_counts(uow)
    if as_json:
        emit_json([_webhook_json(s, counts.get(s.id, {})) for s in subs])
        return
    from rich.table import Table

    table = Table("id", "name", "url", "origin", "active", "filters", "cursor", "deliveries")
    for s in subs:
        done = ", ".join(f"{k} {v}" for k, v in counts.get(s.id, {}).items() if v)
        table.add_row(
            str(s.id),
            s.name,
            s.url,
            s.origin,
            "yes" if s.active else "no",
            _filter_text(s),
            str(s.cursor),
            done,
        )
    console().print(table)


@webhook_group.command("remove")
@click.argument("name")
@actor_option
@click.pass_context
def webhook_remove(ctx: click.Context, name: str, actor: str | None) -> None:
    """Stop subscription NAME and cancel its pending deliveries (it stays listed, inactive)."""
    from soredi_sync.services.webhooks import (
        WebhookConflict,
        deactivate_subscription,
        find_subscription,
    )

    with open_app(ctx) as app, app.uow() as uow:
        try:
            found = find_subscription(uow, name)
            sub = deactivate_subscription(uow, found.id, actor=actor_name(actor))
        except WebhookConflict as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            fail(ctx, exc)
    click.echo(f"removed webhook {sub.id} {sub.name!r}")


@webhook_group.command("deliveries")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@json_option
@click.pass_context
def webhook_deliveries(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """The recent deliveries of subscription NAME, newest first, and how each went."""
    from soredi_sync.services.webhooks import find_subscription, recent_deliveries

    with open_app(ctx) as app, app.uow() as uow:
        try:
            sub = find_subscription(uow, name)
            deliveries = recent_deliveries(uow, sub.id, limit)
        except SorediError as exc:
            fail(ctx, exc)
    if as_json:
        emit_json(deliveries)
        return
    from rich.table import Table

    table = Table(
        "id", "changes", "status", "attempts", "last answer", "next attempt (UTC)", "created"
    )
    for d in deliveries:
        answer = d.last_error or (f"HTTP {d.last_status_code}" if d.last_status_code else "")
        table.add_row(
            str(d.id),
            f"{d.change_count} ({d.first_change_id}-{d.last_change_id})",
            d.status,
            str(d.attempts),
            answer,
            f"{d.next_attempt_at:%Y-%m-%d %H:%M:%S}" if d.next_attempt_at else "",
            f"{d.created_at:%Y-%m-%d %H:%M}",
        )
    console().print(table)


@webhook_group.command("dispatch")
@json_option
@click.pass_context
def webhook_dispatch(ctx: click.Context, as_json: bool) -> None:
    """Apply the configured subscriptions, enqueue new changes and deliver what is due, now.

    Each POST ends within webhooks.timeout; deliveries a running daemon is sending are claimed
    and skipped here, so nothing is sent twice at once."""
    from soredi_sync.services.webhooks import dispatch

    with open_app(ctx) as app:
        report = dispatch(app.uow_factory, app.settings.webhooks, app.webhook_sender())
    if as_json:
        emit_json(report)
        return
    c, e, d = report.configured, report.enqueued, report.delivered
    configured = ", ".join(
        f"{what} {len(names)}"
        for what, names in (
            ("added", c.added),
            ("updated", c.updated),
            ("restarted", c.reactivated),
            ("deactivated", c.deactivated),
            ("skipped", c.skipped),
        )
        if names
    )
    click.echo(
        f"configured subscriptions: {configured or 'unchanged'}; enqueued {e.deliveries} "
        f"deliveries ({e.changes} changes of {e.scanned} scanned); delivered {d.delivered}, "
        f"retrying {d.retrying}, failed {d.failed}"
    )
