"""The long-running side: ``serve`` (the HTTP API), ``run`` (the daemon: scheduler and API),
``openapi`` (the API's document) and ``decisions`` (the decisions the API served)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from soredi_sync.cli.common import (
    console,
    emit_json,
    json_option,
    open_app,
    settings_of,
)

if TYPE_CHECKING:
    from soredi_sync.daemon.runner import Daemon

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_since(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    """A UTC datetime from an ISO date/time (UTC unless it names a zone) or a duration ago."""
    if value is None:
        return None
    text = value.strip()
    number, unit = text[:-1], text[-1:].lower()
    if number.isdigit() and unit in _DURATION_UNITS:
        return datetime.now(UTC) - timedelta(seconds=int(number) * _DURATION_UNITS[unit])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a date/time (2026-11-26T08:00) nor a duration (90m, 2h, 7d)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@click.command("decisions")
@click.option(
    "--since",
    callback=_parse_since,
    metavar="DATETIME|DURATION",
    help="From this UTC date/time (2026-11-26T08:00) or this long ago (30m, 2h, 7d).",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option(
    "--purge", is_flag=True, help="Delete decisions older than the retention ([decision_log])."
)
@json_option
@click.pass_context
def decisions(
    ctx: click.Context, since: datetime | None, limit: int, purge: bool, as_json: bool
) -> None:
    """Routing decisions served by the HTTP API, oldest first (or purge old ones)."""
    from soredi_sync.api.settings import api_settings
    from soredi_sync.services.decision_log import (
        decisions_since,
        purge_decisions,
        retention_cutoff,
    )

    if purge == (since is not None):
        raise click.UsageError("give --since or --purge")
    with open_app(ctx) as app:
        if since is None:  # --purge (one of the two, checked above)
            retention = api_settings(settings_of(ctx))[1].retention_days
            cutoff = retention_cutoff(datetime.now(UTC), retention)
            count = purge_decisions(app.uow, cutoff)
            click.echo(f"purged {count} decisions older than {cutoff:%Y-%m-%d %H:%M} UTC")
            return
        entries = decisions_since(app.uow, since, limit)
    if as_json:
        emit_json(entries)
        return
    from rich.table import Table

    table = Table(
        "decided (UTC)", "caller", "message id", "receiver", "message", "outcome", "snapshot"
    )
    for e in entries:
        receiver = " / ".join(x for x in (e.receiver_gln, e.receiver_sor_id) if x)
        outcome = f"{e.outcome} {e.message_type or e.reason or ''}".strip()
        table.add_row(
            f"{e.decided_at:%Y-%m-%d %H:%M:%S}",
            e.caller,
            e.message_id or "",
            receiver,
            f"{e.business_message} ({e.sender_syntax})",
            outcome,
            str(e.snapshot_id),
        )
    console().print(table)


@click.command("serve")
@click.option("--host", help="Address to bind (default from [api] in config: 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default from config: 8080).")
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log each request line (never headers, so never a token).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes answering on the one port (default from config [api]: 1); each holds "
    "its own routing index.",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, access_log: bool, workers: int | None
) -> None:
    """Serve the HTTP API until interrupted; OpenAPI at /openapi.json."""
    from soredi_sync.api.server import serve as serve_api
    from soredi_sync.api.settings import api_settings

    settings, log_settings = api_settings(settings_of(ctx))
    given = {"host": host, "port": port, "workers": workers}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    with open_app(ctx) as app:
        code = serve_api(
            app,
            settings,
            log_settings,
            access_log=access_log,
            json_logs=ctx.meta.get("soredi.log_format") == "json",
        )
    ctx.exit(code)


@click.command("openapi")
def openapi_document() -> None:
    """Print the API's OpenAPI document as committed in docs/openapi.json.

    Needs no configuration or database: `soredi-sync openapi > docs/openapi.json`.
    """
    from soredi_sync.api.openapi import build_document, render

    click.echo(render(build_document()), nl=False)


@click.command("run")
@click.option("--no-api", is_flag=True, help="Run the scheduled jobs only (a worker).")
@click.option("--host", help="API address (default from config [api]).")
@click.option("--port", type=click.IntRange(0, 65535), help="API port (default from config).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes answering the API on the one port (default from config [api]: 1); each "
    "holds its own routing index.",
)
@click.pass_context
def run_daemon(
    ctx: click.Context, no_api: bool, host: str | None, port: int | None, workers: int | None
) -> None:
    """Run the scheduler and the HTTP API until SIGTERM or Ctrl-C.

    Jobs ([daemon] in the configuration): the full pull (daily 05:15 Europe/Copenhagen by
    default), the incremental SKRS pull where configured, after each stored snapshot the plan
    verification, audit summary and webhook deliveries, and the decision-log retention. On
    PostgreSQL several replicas elect one leader that runs the jobs; the others serve the API.
    With --workers N (or [api] workers) the API runs in N processes beside the scheduler.
    """
    from soredi_sync.api.settings import api_settings
    from soredi_sync.daemon.runner import EXIT_ABANDONED, engine_note, run
    from soredi_sync.observability.logging import configure_logging

    settings = settings_of(ctx)
    log_format = ctx.meta.get("soredi.log_format", "text")
    # The service logs at [logging] level (INFO by default); -v goes further down.
    configure_logging(log_format, settings.logging.level, ctx.meta.get("soredi.verbose", 0))
    api, _log = api_settings(settings)
    given = {"host": host, "port": port, "workers": workers}
    api = api.model_copy(update={k: v for k, v in given.items() if v is not None})

    def ready(daemon: Daemon) -> None:
        where = "no API" if no_api else f"API on http://{api.host}:{api.port}/"
        if not no_api and api.workers > 1:
            where += f" in {api.workers} workers"
        click.echo(f"soredi-sync running ({where}); {engine_note(daemon.app)}", err=True)

    with open_app(ctx, migrate_empty=True) as app:
        code = run(app, with_api=not no_api, api=api, on_ready=ready, log_format=log_format)
    if code == EXIT_ABANDONED:
        # A job thread is stuck (e.g. in a download); do not wait for it.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
    ctx.exit(code)
