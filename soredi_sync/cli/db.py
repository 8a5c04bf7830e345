"""``soredi-sync db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from soredi_sync.cli.common import emit_json, json_option, settings_of


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from soredi_sync.db.engine import safe_database_url
    from soredi_sync.db.schema import upgrade

    settings = settings_of(ctx)
    upgrade(settings.database_url, revision)
    click.echo(f"{safe_database_url(settings.database_url)} is at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    from soredi_sync.db.schema import downgrade

    downgrade(settings_of(ctx).database_url, revision)
    click.echo(f"downgraded to {revision}")


@db_group.command("current")
@json_option
@click.pass_context
def db_current(ctx: click.Context, as_json: bool) -> None:
    """Show the database's schema revision and the code's head revision."""
    from soredi_sync.db.schema import revisions

    current, head = revisions(settings_of(ctx).database_url)
    if as_json:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        click.echo(f"current: {current or '(empty)'}\nhead:    {head}")


@db_group.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Fail if the models and the migrations disagree (alembic check)."""
    from soredi_sync.db.schema import check

    problem = check(settings_of(ctx).database_url)
    if problem:
        click.echo(f"error: {problem}", err=True)
        ctx.exit(1)
    click.echo("models and migrations agree")
