"""The ``soredi-sync`` command line: one click group, settings loaded lazily.

Exit codes: 0 success, 1 a sync failed, 2 usage error or a broken file in the config folder,
3 a sync was refused as implausible, 4 not found, 5 the database schema needs
``soredi-sync db upgrade``, 6 a routing decision was "reject".

One module per group of commands, registered below; what they share (lazy settings, exit codes,
options, output) is in :mod:`soredi_sync.cli.common`. A command imports what it needs when it
runs, so ``soredi-sync --help`` and shell completion stay fast.
"""

from __future__ import annotations

import sys
from typing import Literal

import click

from soredi_sync import __version__
from soredi_sync.cli import (
    config,
    db,
    export,
    plans,
    read,
    reports,
    route,
    sandbox,
    serve,
    sync,
    tokens,
    traffic,
    webhooks,
)
from soredi_sync.cli.common import LazySettings


@click.group()
@click.option(
    "--database-url",
    envvar="SOREDI_DATABASE_URL",
    help="SQLAlchemy URL (default from config: a SQLite file).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines on stderr as text or JSON objects (default from config [logging]).",
)
@click.version_option(__version__, prog_name="soredi-sync")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, verbose: int, log_format: str | None) -> None:
    """Keep a versioned local copy of SOR and SOR-EDI, and answer questions about it."""
    overrides = {"database_url": database_url} if database_url else {}
    ctx.obj = LazySettings(overrides)
    _configure_logging(ctx, ctx.obj, log_format, verbose)


def _configure_logging(
    ctx: click.Context, lazy: LazySettings, log_format: str | None, verbose: int
) -> None:
    """Logs to stderr, secrets masked, zeep's and signxml's envelope dumps never (see
    :func:`~soredi_sync.observability.logging.configure_logging`).

    The format is ``--log-format``, else ``[logging] format``. Commands log at WARNING (``-v``
    INFO, ``-vv`` DEBUG) so their output stays readable; ``[logging] level`` is the long-running
    daemon's, which reconfigures with ``ctx.meta["soredi.log_format"]`` and ``["soredi.verbose"]``.
    """
    from soredi_sync.observability.logging import configure_logging

    if log_format is None:
        try:
            log_format = lazy.get().logging.format
        except (ValueError, OSError):
            # A broken configuration is reported by the command that needs it (and --help
            # must work without one): log as text until then.
            log_format = "text"
    fmt: Literal["text", "json"] = "json" if log_format == "json" else "text"
    configure_logging(fmt, "WARNING", min(verbose, 2))
    ctx.meta["soredi.log_format"] = fmt
    ctx.meta["soredi.verbose"] = verbose


for _command in (
    config.config_group,
    db.db_group,
    sync.sync,
    read.status,
    read.show,
    read.history,
    read.changes,
    route.route,
    route.route_message,
    route.route_bundle,
    sandbox.sandbox_group,
    sandbox.demo,
    tokens.token_group,
    serve.decisions,
    serve.serve,
    serve.openapi_document,
    serve.run_daemon,
    reports.audit,
    reports.adoption,
    reports.cutover,
    plans.plan_group,
    export.export_group,
    webhooks.webhook_group,
    traffic.traffic_group,
):
    cli.add_command(_command)


def main() -> None:
    """The ``soredi-sync`` script."""
    from soredi_sync.errors import MissingExtra, ReferenceDataError

    try:
        cli(prog_name="soredi-sync")
    except MissingExtra as exc:  # e.g. a PostgreSQL URL without the [postgres] extra
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ReferenceDataError as exc:  # a broken file in the config folder, named in exc
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
