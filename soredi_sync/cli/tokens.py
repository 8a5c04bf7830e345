"""``soredi-sync token``: the HTTP API's bearer tokens (only their SHA-256 is stored)."""

from __future__ import annotations

import click

from soredi_sync.cli.common import (
    console,
    emit_json,
    fail,
    json_option,
    jsonable,
    open_app,
    settings_of,
    split_values,
)
from soredi_sync.errors import SorediError


@click.group("token")
def token_group() -> None:
    """Bearer tokens of the HTTP API (only their SHA-256 is stored)."""


@token_group.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help="route:read, registry:read, audit:read, plan:write or webhook:admin; repeat or "
    "comma-separate.",
)
@click.option(
    "--owner",
    "owners",
    multiple=True,
    metavar="SOR_ID",
    help="Restrict the token to this institution owner's units (a region or municipality); "
    "repeat or comma-separate.",
)
@click.option("--name", help="Name in lists and the decision log (default: token-<fingerprint>).")
@click.pass_context
def token_create(
    ctx: click.Context, scopes: tuple[str, ...], owners: tuple[str, ...], name: str | None
) -> None:
    """Create a token and print it once on stdout; it cannot be shown again."""
    from soredi_sync.services.tokens import (
        InvalidTokenRequest,
        create_token,
        owners_not_in_snapshot,
    )

    owner_ids = split_values(owners)
    with open_app(ctx) as app:
        try:
            issued = create_token(app.uow, split_values(scopes), owner_ids, name)
        except InvalidTokenRequest as exc:
            raise click.UsageError(str(exc)) from None
        with app.uow() as uow:
            unknown = owners_not_in_snapshot(uow, owner_ids)
    record = issued.record
    restriction = f", owners {', '.join(sorted(record.owners))}" if record.owners else ""
    click.echo(
        f"created token {record.id} {record.name!r} with scopes "
        f"{', '.join(sorted(record.scopes))}{restriction}. Store it now: it is not shown again.",
        err=True,
    )
    if unknown:
        click.echo(
            f"warning: {', '.join(unknown)} are not institution owners in the current snapshot",
            err=True,
        )
    click.echo(issued.token)


@token_group.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """Every token: id, name, scopes, owners, when created, last used and revoked."""
    from soredi_sync.services.tokens import list_tokens

    with open_app(ctx) as app:
        records = list_tokens(app.uow)
    if as_json:
        emit_json([{**jsonable(r), "revoked": r.revoked} for r in records])
        return
    from rich.table import Table

    table = Table("id", "name", "scopes", "owners", "created (UTC)", "last used", "revoked")
    for r in records:
        table.add_row(
            str(r.id),
            r.name,
            ", ".join(sorted(r.scopes)),
            ", ".join(sorted(r.owners)) or "all",
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "",
            f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
        )
    console().print(table)


@token_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke token ID. Running servers refuse it within their token cache time (30 s)."""
    from soredi_sync.api.settings import api_settings
    from soredi_sync.services.tokens import revoke_token

    with open_app(ctx) as app:
        try:
            record = revoke_token(app.uow, token_id)
        except SorediError as exc:
            fail(ctx, exc)
    ttl = api_settings(settings_of(ctx))[0].token_cache_seconds
    click.echo(
        f"revoked token {record.id} {record.name!r}; running servers refuse it within {ttl:g} s"
    )
