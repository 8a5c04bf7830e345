"""The ``soredi-sync`` command line: one click group, settings loaded lazily.

Exit codes: 0 success, 1 a sync failed, 2 usage error, 3 a sync was refused as implausible,
4 not found, 5 the database schema needs ``soredi-sync db upgrade``, 6 a routing decision was
"reject".
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Literal

import click

from soredi_sync import __version__
from soredi_sync.config import Settings
from soredi_sync.errors import NoSnapshot, NotFound, SorediError

logger = logging.getLogger(__name__)

EXIT_SYNC_FAILED = 1
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_SCHEMA = 5
EXIT_REJECTED = 6


class LazySettings:
    """Settings built on first use, so ``--help`` works with no configuration at all."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        self._settings: Settings | None = None

    @property
    def overrides(self) -> dict[str, Any]:
        """What the command line set (``--database-url``)."""
        return dict(self._overrides)

    def get(self) -> Settings:
        if self._settings is None:
            self._settings = Settings(**self._overrides)
        return self._settings


def _settings(ctx: click.Context) -> Settings:
    lazy: LazySettings = ctx.find_object(LazySettings)  # type: ignore[assignment]
    return lazy.get()


@contextmanager
def _app(ctx: click.Context, *, migrate_empty: bool = False) -> Iterator[Any]:
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.services.schema import SchemaState, prepare

    settings = _settings(ctx)
    app = bootstrap(settings)
    try:
        # Several processes may start on an empty database at once: one migrates, the
        # others wait for it (services/schema.py).
        state = prepare(app.engine, settings.database_url, migrate_empty=migrate_empty)
        if state is not SchemaState.CURRENT:
            click.echo(
                f"The database {settings.safe_database_url()} is {state.value}: "
                "run `soredi-sync db upgrade` first.",
                err=True,
            )
            ctx.exit(EXIT_SCHEMA)
        yield app
    finally:
        app.close()


@contextmanager
def _database_errors(ctx: click.Context, doing: str) -> Iterator[None]:
    """A database that fails under a command (a full disk, a lost connection) is one line for
    the operator and exit code 1, not a traceback."""
    from soredi_sync.db.engine import DatabaseFailure, is_database_failure

    try:
        yield
        return
    except DatabaseFailure as exc:
        failure = exc
    except Exception as exc:
        if not is_database_failure(exc):
            raise
        failure = DatabaseFailure(doing, exc)
    click.echo(f"error: {failure} [{_settings(ctx).safe_database_url()}]", err=True)
    ctx.exit(EXIT_SYNC_FAILED)


def jsonable(value: Any) -> Any:
    from soredi_sync.services.queries import jsonable as to_json

    return to_json(value)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _fail(ctx: click.Context, error: SorediError) -> None:
    click.echo(f"error: {error}", err=True)
    code = EXIT_NOT_FOUND if isinstance(error, NotFound | NoSnapshot) else 1
    ctx.exit(code)


def _parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
at_option = click.option(
    "--at", "at", callback=_parse_day, metavar="DATE", help="As it was on this date."
)


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


# -- config --------------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """The configuration: an editable copy, the effective settings."""


@config_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are there already.")
@click.pass_context
def config_init(ctx: click.Context, directory: Path, force: bool) -> None:
    """Write editable copies of every configuration file (settings, routing policy, data
    tables) to DIRECTORY; SOREDI_CONFIG_DIR=DIRECTORY makes soredi-sync read them."""
    import shutil

    from soredi_sync.config import default_config_files

    files = default_config_files()
    there = [directory / f.name for f in files if (directory / f.name).exists()]
    if there and not force:
        names = ", ".join(p.name for p in there)
        click.echo(f"error: {directory} has {names} already (--force overwrites)", err=True)
        ctx.exit(1)
    directory.mkdir(parents=True, exist_ok=True)
    for source in files:
        shutil.copyfile(source, directory / source.name)
        click.echo(f"wrote {directory / source.name}")
    click.echo(f"Use them with: export SOREDI_CONFIG_DIR={directory.resolve()}")


@config_group.command("show")
@json_option
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """The effective settings and where each comes from: default (the code or the package's
    soredi-sync.toml), file (an operator's), environment (SOREDI_*) or command line. Secrets
    are masked."""
    from soredi_sync.config import effective_settings, mask_secrets

    lazy: LazySettings = ctx.find_object(LazySettings)  # type: ignore[assignment]
    try:
        _, report = effective_settings(lazy.overrides)
    except ValueError as exc:  # pydantic's ValidationError; its text quotes the input
        click.echo(f"error: invalid configuration: {mask_secrets(str(exc))}", err=True)
        ctx.exit(1)
        return
    if as_json:
        _emit_json(report.as_json())
        return
    click.echo(report.as_text())


# -- db ------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from soredi_sync.services.schema import upgrade

    settings = _settings(ctx)
    upgrade(settings.database_url, revision)
    click.echo(f"{settings.safe_database_url()} is at {revision}")


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    from soredi_sync.services.schema import downgrade

    downgrade(_settings(ctx).database_url, revision)
    click.echo(f"downgraded to {revision}")


@db.command("current")
@json_option
@click.pass_context
def db_current(ctx: click.Context, as_json: bool) -> None:
    """Show the database's schema revision and the code's head revision."""
    from soredi_sync.services.schema import revisions

    settings = _settings(ctx)
    current, head = revisions(settings.database_url)
    if as_json:
        _emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        click.echo(f"current: {current or '(empty)'}\nhead:    {head}")


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Fail if the models and the migrations disagree (alembic check)."""
    from soredi_sync.services.schema import check

    problem = check(_settings(ctx).database_url)
    if problem:
        click.echo(f"error: {problem}", err=True)
        ctx.exit(1)
    click.echo("models and migrations agree")


# -- sync ----------------------------------------------------------------------------------


@cli.command()
@click.option("--base-url", help="Pull from this sor-filer style base URL instead of config.")
@click.option(
    "--from-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read sor.zip and Sor_complete.zip from a directory.",
)
@click.option(
    "--accept-mass-change",
    is_flag=True,
    help="Store the pull even if it removes more than the configured share of the registry.",
)
@click.option("--force", is_flag=True, help="Download and compare even if nothing changed.")
@click.option(
    "--source",
    type=click.Choice(["sor-filer", "skrs"]),
    default="sor-filer",
    show_default=True,
    help="The nightly files, or the SKRS replication feed (incremental, on top of them).",
)
@click.option("--max-pages", type=click.IntRange(1), help="skrs: stop after this many feed pages.")
@json_option
@click.pass_context
def sync(
    ctx: click.Context,
    base_url: str | None,
    from_dir: Path | None,
    accept_mass_change: bool,
    force: bool,
    source: str,
    max_pages: int | None,
    as_json: bool,
) -> None:
    """Pull the sources, validate, diff and store a new snapshot (fail closed)."""
    if base_url and from_dir:
        raise click.UsageError("give --base-url or --from-dir, not both")
    if source == "skrs":
        with _database_errors(ctx, "syncing"):
            _sync_incremental(ctx, max_pages, as_json, accept_mass_change)
        return
    with (
        _database_errors(ctx, "opening it for the sync; no run was recorded"),
        _app(ctx, migrate_empty=True) as app,
    ):
        outcome = _run_sync(
            app,
            base_url=base_url,
            from_dir=from_dir,
            accept_mass_change=accept_mass_change,
            force=force,
            show_progress=not as_json,
        )
        with _database_errors(ctx, f"verifying change plans after run {outcome.run_id}"):
            verified = _verify_plans_after(app, outcome)
    if as_json:
        _emit_json(_outcome_json(outcome))
    else:
        _print_outcome(outcome)
        _print_verified(verified)
    _exit_for(ctx, outcome)


def _verify_plans_after(app: Any, outcome: Any) -> list[Any]:
    """After a sync that stored a snapshot, judge every open change plan on it."""
    from soredi_sync.db.models import RunStatus
    from soredi_sync.services.plans import verify_open_plans

    if outcome.status is not RunStatus.SUCCEEDED:
        return []
    with _plan_uow(app) as uow:
        return verify_open_plans(uow, actor="sync")


def _print_verified(results: list[Any]) -> None:
    for result in results:
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
        click.echo(f"plan {result.plan_id} verified on snapshot {result.snapshot_id}: {counts}")


def _sync_incremental(
    ctx: click.Context, max_pages: int | None, as_json: bool, accept_mass_change: bool
) -> None:
    """``sync --source skrs``: apply the replication feed after the stored cursor."""
    from soredi_sync.services.incremental import sync_incremental
    from soredi_sync.soap.skrs import make_skrs_client

    with _app(ctx, migrate_empty=True) as app:
        soap = app.settings.soap
        try:
            client = make_skrs_client(soap)
        except SorediError as exc:
            _fail(ctx, exc)
            return
        outcome = sync_incremental(
            app.uow_factory,
            client,
            location=soap.skrs.address or soap.skrs.wsdl,
            max_pages=max_pages,
            max_removal_ratio=app.settings.guards.max_capability_removal_ratio,
            accept_mass_change=accept_mass_change,
        )
        verified = _verify_plans_after(app, outcome)
    if as_json:
        _emit_json(outcome)
    elif outcome.ok:
        click.echo(
            f"run {outcome.run_id}: {outcome.status.value}; {outcome.pages} pages, "
            f"{outcome.snapshots} snapshots stored, cursor at {outcome.offset or '-'}"
            + (f"; now snapshot {outcome.snapshot.id}" if outcome.snapshot else "")
        )
        _print_verified(verified)
    else:
        click.echo(f"run {outcome.run_id}: {outcome.status.value}: {outcome.error}", err=True)
    _exit_for(ctx, outcome)


def _run_sync(app: Any, *, show_progress: bool, **kwargs: Any) -> Any:
    from soredi_sync.services.sync import sync_source

    client = app.files_client(base_url=kwargs.pop("base_url"), from_dir=kwargs.pop("from_dir"))
    with _progress(show_progress and sys.stderr.isatty()) as (on_stage, on_download):
        return sync_source(
            app.uow_factory,
            client,
            app.sync_config(),
            on_stage=on_stage,
            on_download=on_download,
            **kwargs,
        )


@contextmanager
def _progress(enabled: bool) -> Iterator[tuple[Callable[[str], None] | None, Any]]:
    """A rich progress display on a terminal; silent callbacks otherwise."""
    if not enabled:
        yield None, None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}
    current: list[Any] = []

    def on_stage(name: str) -> None:
        if current:
            progress.update(current[-1], completed=1, total=1)
        if not name.startswith("download"):
            current.append(progress.add_task(name, total=None))

    def on_download(name: str, done: int, total: int | None) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(f"download {name}", total=total)
            current.append(tasks[name])
        progress.update(tasks[name], completed=done, total=total)

    with progress:
        yield on_stage, on_download


def _outcome_json(outcome: Any) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "status": outcome.status.value,
        "snapshot": outcome.snapshot,
        "error": outcome.error,
        "counts": outcome.counts,
        "duration_seconds": round(outcome.duration_seconds, 3),
    }


def _print_outcome(outcome: Any) -> None:
    status = outcome.status.value
    if outcome.ok:
        snap = outcome.snapshot
        click.echo(
            f"run {outcome.run_id}: {status}"
            + (f" ({outcome.counts.get('reason')})" if outcome.counts.get("reason") else "")
            + (
                f"; snapshot {snap.id} of {snap.effective_date}: {snap.unit_count} units, "
                f"{snap.gln_count} GLNs, {snap.capability_count} GLN message types"
                if snap
                else ""
            )
            + f" [{outcome.duration_seconds:.1f} s]"
        )
        if outcome.changes is not None and outcome.snapshot and not outcome.snapshot.baseline:
            _print_change_counts(outcome.changes.counts())
    else:
        click.echo(f"run {outcome.run_id}: {status}: {outcome.error}", err=True)
        if outcome.snapshot:
            click.echo(
                f"kept snapshot {outcome.snapshot.id} of {outcome.snapshot.effective_date}",
                err=True,
            )


def _print_change_counts(counts: dict[str, dict[str, int]]) -> None:
    for entity, by_kind in counts.items():
        parts = ", ".join(f"{n} {kind}" for kind, n in by_kind.items() if n)
        click.echo(f"  {entity}: {parts or 'no changes'}")


def _exit_for(ctx: click.Context, outcome: Any) -> None:
    from soredi_sync.db.models import RunStatus

    if outcome.status is RunStatus.REFUSED:
        ctx.exit(EXIT_REFUSED)
    if not outcome.ok:
        ctx.exit(EXIT_SYNC_FAILED)


# -- reads ----------------------------------------------------------------------------------


@cli.command()
@click.option("--runs", default=10, show_default=True, help="How many recent runs to list.")
@json_option
@click.pass_context
def status(ctx: click.Context, runs: int, as_json: bool) -> None:
    """Recent sync runs, the current snapshot and the age of the data."""
    from soredi_sync.services import queries

    with _database_errors(ctx, "reading the status"), _app(ctx) as app, app.uow() as uow:
        result = queries.status(uow, runs)
    if as_json:
        _emit_json(result)
        return
    from rich.table import Table

    console = _console()
    if result.current is None:
        console.print("No snapshot yet: run `soredi-sync sync`.")
    else:
        snap = result.current
        console.print(
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
    console.print(table)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@cli.group()
def show() -> None:
    """Show a unit or a GLN, now or on an earlier date."""


def _show(ctx: click.Context, query: Callable[[Any], Any], render: str, as_json: bool) -> None:
    """Run a read query in one unit of work; print it as JSON or with ``cli_render.<render>``."""
    from soredi_sync import cli_render

    with _app(ctx) as app, app.uow() as uow:
        try:
            result = query(uow)
        except SorediError as exc:
            _fail(ctx, exc)
            return
    if as_json:
        _emit_json(result)
    else:
        getattr(cli_render, render)(_console(), result, _settings(ctx))


@show.command("unit")
@click.argument("sor_id")
@at_option
@click.option("--live", is_flag=True, help="Ask SORLS (NSP) now instead of the local copy.")
@json_option
@click.pass_context
def show_unit(ctx: click.Context, sor_id: str, at: date | None, live: bool, as_json: bool) -> None:
    """A SOR unit: attributes, its place in the tree and its effective GLN."""
    from soredi_sync.services import queries

    if live:
        _show_live_unit(ctx, sor_id, at, as_json)
        return
    _show(ctx, lambda uow: queries.show_unit(uow, sor_id, at), "render_unit", as_json)


def _show_live_unit(ctx: click.Context, sor_id: str, at: date | None, as_json: bool) -> None:
    """``show unit --live``: one SORLS GetSorEntity call, no database (default date: today in
    Denmark, whatever the machine's zone)."""
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.soap.sorls import make_sorls_client

    settings = _settings(ctx)
    try:
        client = make_sorls_client(settings.soap)
        looked_up = client.get_sor_entity(sor_id, at or today_in_denmark())
    except SorediError as exc:
        _fail(ctx, exc)
        return
    if as_json:
        _emit_json(looked_up)
        return
    from soredi_sync.cli_render import render_live_unit

    render_live_unit(_console(), looked_up, settings)


@show.command("gln")
@click.argument("gln")
@at_option
@json_option
@click.pass_context
def show_gln(ctx: click.Context, gln: str, at: date | None, as_json: bool) -> None:
    """A GLN: attributes, VANS, message types, units using it and how."""
    from soredi_sync.services import queries

    _show(ctx, lambda uow: queries.show_gln(uow, gln, at), "render_gln", as_json)


@cli.group()
def history() -> None:
    """How a record changed across snapshots."""


@history.command("gln")
@click.argument("gln")
@json_option
@click.pass_context
def history_gln(ctx: click.Context, gln: str, as_json: bool) -> None:
    """Every version of a GLN and when each message type came and went."""
    from soredi_sync.services import queries

    _show(ctx, lambda uow: queries.gln_history(uow, gln), "render_gln_history", as_json)


@cli.command()
@click.option("--since", "cursor", type=int, default=0, show_default=True, help="Cursor.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@click.pass_context
def changes(ctx: click.Context, cursor: int, limit: int, as_json: bool) -> None:
    """Change events after a cursor; the last cursor printed is where to continue."""
    from soredi_sync.services import queries

    with _app(ctx) as app, app.uow() as uow:
        events = queries.changes_since(uow, cursor, limit)
    next_cursor = events[-1].cursor if events else cursor
    if as_json:
        _emit_json({"changes": events, "next_cursor": next_cursor})
        return
    from soredi_sync.cli_render import render_changes

    render_changes(_console(), events, next_cursor)


# -- routing ---------------------------------------------------------------------------------


def _attachment(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> Any:
    from soredi_sync.domain.routing import Attachment

    result = []
    for value in values:
        mime, sep, size = value.rpartition(":")
        if not sep or not mime or not size.isdigit():
            raise click.BadParameter(f"{value!r} is not MIME:BYTES (e.g. application/pdf:20000)")
        result.append(Attachment(mime, int(size)))
    return tuple(result)


@cli.command()
@click.option(
    "--receiver",
    required=True,
    metavar="GLN|SOR_ID",
    help="The receiver's GLN or SOR-ID (prefix gln: or sor: to say which).",
)
@click.option("--message", "business_message", default="correspondence", show_default=True)
@click.option(
    "--sender-syntax",
    type=click.Choice(["fhir", "oioxml", "edifact"]),
    default="fhir",
    show_default=True,
)
@click.option(
    "--attachment", "attachments", multiple=True, callback=_attachment, metavar="MIME:BYTES"
)
@click.option("--text-length", type=click.IntRange(0), help="Characters of message text.")
@click.option("--subject", help="Subject as a legacy receiver would get it.")
@click.option("--total-size", type=click.IntRange(0), help="Bytes of the whole message.")
@at_option
@json_option
@click.pass_context
def route(
    ctx: click.Context,
    receiver: str,
    business_message: str,
    sender_syntax: str,
    attachments: tuple[Any, ...],
    text_length: int | None,
    subject: str | None,
    total_size: int | None,
    at: date | None,
    as_json: bool,
) -> None:
    """Decide how a message to RECEIVER is delivered (deliver natively, convert, or reject)."""
    from soredi_sync.domain.routing import RouteRequest

    def build(resolver: Any) -> Any:
        gln, sor_id = _receiver(receiver, resolver.index.registry)
        return RouteRequest(
            business_message=business_message,
            sender_syntax=sender_syntax,
            receiver_gln=gln,
            receiver_sor_id=sor_id,
            text_length=text_length,
            subject=subject,
            attachments=attachments,
            total_size=total_size,
            at=at,
        )

    _route_and_print(ctx, build, as_json)


_MESSAGE_HELP = (
    "Decide for a message exactly as a gateway holds it: a FHIR message Bundle (XML or JSON; "
    "CareCommunication, Acknowledgement, HospitalNotification), an OIOXML Emessage (XDIS91, "
    "XCTL03, XBIN01, ...) or an EDIFACT interchange (DIS91, CTL03, ...). The sender syntax is "
    "read from the file; --sender-syntax routes a FHIR message as if sent in another."
)


@cli.command("route-message", help=_MESSAGE_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sender-syntax",
    type=click.Choice(["fhir", "oioxml", "edifact"]),
    help="Route a FHIR message as if sent in this syntax (default: the file's own).",
)
@at_option
@json_option
@click.pass_context
def route_message(
    ctx: click.Context, file: Path, sender_syntax: str | None, at: date | None, as_json: bool
) -> None:
    from soredi_sync.domain.routing import RoutingInputError
    from soredi_sync.parsing.message import parse_message, route_request_for

    settings = _settings(ctx)
    try:
        facts = parse_message(file.read_bytes(), None, message_types=settings.message_types)
    except SorediError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        ctx.exit(2)
        return
    try:
        request = route_request_for(
            facts, sender_syntax, at, category_names=settings.category_names
        )
    except RoutingInputError as exc:
        raise click.UsageError(f"{file.name}: {exc}") from None
    read = {
        "syntax": facts.syntax,
        "message_type": facts.message_type,
        "business_message": facts.business_message,
        "message_id": facts.message_id,
    }
    _route_and_print(ctx, lambda _resolver: request, as_json, read=read)


# The older name, for scripts that call it: the same command.
cli.add_command(
    click.Command(
        "route-bundle",
        callback=route_message.callback,
        params=route_message.params,
        help="The same as route-message (its older name).",
    )
)


def _receiver(value: str, registry: Any) -> tuple[str | None, str | None]:
    """(GLN, SOR-ID) for a --receiver value: explicit prefix, else whichever the snapshot knows."""
    kind, sep, rest = value.partition(":")
    if sep and kind in ("gln", "sor"):
        return (rest, None) if kind == "gln" else (None, rest)
    if value in registry.glns:
        return value, None
    if value in registry.units:
        return None, value
    # Unknown either way: a 13-digit number is read as a GLN (SOR-IDs are mostly longer).
    return (value, None) if len(value) == 13 and value.isdigit() else (None, value)


def _route_and_print(
    ctx: click.Context,
    build: Callable[[Any], Any],
    as_json: bool,
    *,
    read: dict[str, Any] | None = None,
) -> None:
    """Decide for the request ``build(resolver)`` makes and print the decision; ``read`` is
    what was read from a message file (syntax, message type, business message, message id)."""
    from soredi_sync.domain.routing import RoutingInputError

    with _app(ctx) as app:
        service = app.routing()
        try:
            resolver = service.resolver()
            request = build(resolver)
            decision = resolver.resolve(request, service.today())
        except RoutingInputError as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            _fail(ctx, exc)
            return
        now = service.now()
    if as_json:
        data = jsonable(decision)
        data["snapshot"]["age_seconds"] = round(decision.age_seconds(now), 1)
        if read is not None:
            data["message"] = read
        _emit_json(data)
    else:
        from soredi_sync.cli_render import describe_read, render_decision

        render_decision(
            _console(),
            decision,
            now,
            read=describe_read(read, request) if read is not None else None,
        )
    if decision.decision.value == "reject":
        ctx.exit(EXIT_REJECTED)


# -- sandbox and demo ------------------------------------------------------------------------


@cli.group()
def sandbox() -> None:
    """A synthetic SOR served on loopback, for trying soredi-sync and for tests."""


@sandbox.command("generate")
@click.option(
    "--profile",
    type=click.Choice(["tiny", "small", "national"]),
    default="small",
    show_default=True,
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--days", type=click.IntRange(0, 365), default=3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.pass_context
def sandbox_generate(ctx: click.Context, profile: str, seed: int, days: int, out: Path) -> None:
    """Write day 0..DAYS of a synthetic SOR (sor.zip + Sor_complete.zip per day)."""
    from soredi_sync.sandbox.generate import generate

    settings = _settings(ctx)
    manifest = generate(out, profile=profile, seed=seed, days=days, columns=settings.csv_columns)
    click.echo(f"wrote {out} ({_manifest_summary(manifest)})")


def _manifest_summary(manifest: Any) -> str:
    counts = manifest.day(0).counts
    return (
        f"days 0..{manifest.days}; day 0: {counts['units']} units, {counts['glns']} GLNs, "
        f"{counts['capabilities']} GLN message types"
    )


@sandbox.command("serve")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--day", type=click.IntRange(0), default=0, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option(
    "--soap-port",
    type=click.IntRange(0, 65535),
    help="Also serve SORLS, SKRS and SORUS (SOAP) on this port, following the served day.",
)
@click.option(
    "--sts-port",
    type=click.IntRange(0, 65535),
    help="Also run a SOSI STS issuing DGWS ID cards on this port.",
)
@click.pass_context
def sandbox_serve(
    ctx: click.Context,
    directory: Path,
    port: int,
    day: int,
    host: str,
    soap_port: int | None,
    sts_port: int | None,
) -> None:
    """Serve a generated sandbox in the sor-filer URL layout until interrupted.

    Control it while it runs: POST /_sandbox/day/N switches the day, POST /_sandbox/fault
    injects a fault, GET /_sandbox/state shows both and the SORUS journal. Port 0 picks a free
    port; the URLs are printed once listening.

    With --soap-port the SOAP services answer for the day being served: SORLS (lookup), SKRS
    (replication feed) and SORUS (SubmitEdiTypeChanges). Changes SORUS accepts on day N are
    kept in DIR/sorus-journal.json (so a restart keeps them) and show in the files, the feed
    and the lookups from day N+1: switching to that day regenerates the days from N+1 on. On
    the last generated day SORUS refuses changes; generate more days. With --sts-port an STS
    issues DGWS ID cards (signed with a throwaway key) for clients that use one.
    """
    from contextlib import ExitStack

    from soredi_sync.sandbox.server import SandboxServer, is_loopback_host, serve_forever

    if not is_loopback_host(host):
        raise click.BadParameter(f"{host!r} is not a loopback address", param_hint="--host")
    columns = _settings(ctx).csv_columns
    with ExitStack() as stack:

        def on_ready(server: SandboxServer) -> None:
            # The SOAP line comes first: scripts wait for it before they call the services.
            if soap_port is not None:
                _start_sandbox_soap(stack, server, host, soap_port)
            if sts_port is not None:
                from soredi_sync.sandbox.sts import StsSandboxServer

                sts = stack.enter_context(StsSandboxServer(host=host, port=sts_port))
                click.echo(f"STS: {sts.url}")
            click.echo(
                f"serving {directory} day {server.day} on {server.base_url} (Ctrl-C to stop)"
            )

        try:
            serve_forever(
                directory, host=host, port=port, day=day, on_ready=on_ready, columns=columns
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc


def _start_sandbox_soap(stack: Any, server: Any, host: str, port: int) -> None:
    """SORLS, SKRS and SORUS linked to the running HTTP sandbox ``server``."""
    from soredi_sync.sandbox.soap import SoapSandboxServer

    soap = stack.enter_context(SoapSandboxServer(files=server, host=host, port=port))
    click.echo(
        f"SOAP: SORLS {soap.wsdl_url('sorls')}, SKRS {soap.wsdl_url('skrs')}, "
        f"SORUS {soap.wsdl_url('sorus')}"
    )


@cli.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Leave the database, the sandbox and the messages in DIR and print the commands "
    "to explore them (default: a temporary folder, removed at the end).",
)
@click.option("--dir", "old_dir", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@click.option("--profile", type=click.Choice(["tiny", "small"]), default="small", show_default=True)
@click.pass_context
def demo(ctx: click.Context, keep: Path | None, old_dir: Path | None, profile: str) -> None:
    """Offline tour: a sandbox SOR served on loopback and synced for two days; then a gateway's
    routing decisions on CareCommunication bundles, a region's audit summary, and a
    municipality's switch plan submitted to the sandbox SORUS and verified the next day."""
    from soredi_sync.demo import run_demo

    if keep is not None and old_dir is not None:
        raise click.UsageError("--dir is the older name of --keep: give one of them")
    ctx.exit(run_demo(keep or old_dir, profile=profile, console=_console()))


# -- HTTP API: tokens, decision log, server --------------------------------------------------


def _api_uow_factory(app: Any) -> Callable[[], Any]:
    factory: Callable[[], Any] = app.uow
    return factory


def _split_values(values: tuple[str, ...]) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@cli.group()
def token() -> None:
    """Bearer tokens of the HTTP API (only their SHA-256 is stored)."""


@token.command("create")
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

    owner_ids = _split_values(owners)
    with _app(ctx) as app:
        try:
            issued = create_token(_api_uow_factory(app), _split_values(scopes), owner_ids, name)
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


@token.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """Every token: id, name, scopes, owners, when created, last used and revoked."""
    from soredi_sync.services.tokens import list_tokens

    with _app(ctx) as app:
        records = list_tokens(_api_uow_factory(app))
    if as_json:
        _emit_json([{**jsonable(r), "revoked": r.revoked} for r in records])
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
    _console().print(table)


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke token ID. Running servers refuse it within their token cache time (30 s)."""
    from soredi_sync.api.settings import api_settings
    from soredi_sync.services.tokens import revoke_token

    with _app(ctx) as app:
        try:
            record = revoke_token(_api_uow_factory(app), token_id)
        except SorediError as exc:
            _fail(ctx, exc)
            return
    ttl = api_settings(_settings(ctx))[0].token_cache_seconds
    click.echo(
        f"revoked token {record.id} {record.name!r}; running servers refuse it within {ttl:g} s"
    )


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """A UTC datetime from an ISO date/time (UTC unless it names a zone) or a duration ago."""
    if value is None:
        return None
    from datetime import UTC, datetime, timedelta

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


@cli.command()
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
def decisions(ctx: click.Context, since: Any, limit: int, purge: bool, as_json: bool) -> None:
    """Routing decisions served by the HTTP API, oldest first (or purge old ones)."""
    from datetime import UTC, datetime

    from soredi_sync.api.settings import api_settings
    from soredi_sync.services.decision_log import (
        decisions_since,
        purge_decisions,
        retention_cutoff,
    )

    if purge == (since is not None):
        raise click.UsageError("give --since or --purge")
    with _app(ctx) as app:
        if purge:
            retention = api_settings(_settings(ctx))[1].retention_days
            cutoff = retention_cutoff(datetime.now(UTC), retention)
            count = purge_decisions(_api_uow_factory(app), cutoff)
            click.echo(f"purged {count} decisions older than {cutoff:%Y-%m-%d %H:%M} UTC")
            return
        entries = decisions_since(_api_uow_factory(app), since, limit)
    if as_json:
        _emit_json(entries)
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
    _console().print(table)


@cli.command()
@click.option("--host", help="Address to bind (default from [api] in config: 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default from config: 8080).")
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log each request line (never headers, so never a token).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, access_log: bool) -> None:
    """Serve the HTTP API (one uvicorn worker) until interrupted; OpenAPI at /openapi.json."""
    from soredi_sync.api.server import serve as serve_api
    from soredi_sync.api.settings import api_settings

    settings, log_settings = api_settings(_settings(ctx))
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    with _app(ctx) as app:
        serve_api(
            app,
            settings,
            log_settings,
            access_log=access_log,
            json_logs=ctx.meta.get("soredi.log_format") == "json",
        )


@cli.command("openapi")
def openapi_document() -> None:
    """Print the API's OpenAPI document as committed in docs/openapi.json.

    Needs no configuration or database: `soredi-sync openapi > docs/openapi.json`.
    """
    from soredi_sync.api.openapi import build_document, render

    click.echo(render(build_document()), nl=False)


@cli.command("run")
@click.option("--no-api", is_flag=True, help="Run the scheduled jobs only (a worker).")
@click.option("--host", help="API address (default from config [api]).")
@click.option("--port", type=click.IntRange(0, 65535), help="API port (default from config).")
@click.pass_context
def run_daemon(ctx: click.Context, no_api: bool, host: str | None, port: int | None) -> None:
    """Run the scheduler and the HTTP API until SIGTERM or Ctrl-C.

    Jobs ([daemon] in the configuration): the full pull (daily 05:15 Europe/Copenhagen by
    default), the incremental SKRS pull where configured, after each stored snapshot the plan
    verification, audit summary and webhook deliveries, and the decision-log retention. On
    PostgreSQL several replicas elect one leader that runs the jobs; the others serve the API.
    """
    from soredi_sync.api.settings import api_settings
    from soredi_sync.daemon.runner import engine_note, run
    from soredi_sync.observability.logging import configure_logging

    settings = _settings(ctx)
    log_format = ctx.meta.get("soredi.log_format", "text")
    # The service logs at [logging] level (INFO by default); -v goes further down.
    configure_logging(log_format, settings.logging.level, ctx.meta.get("soredi.verbose", 0))
    api, _log = api_settings(settings)
    api = api.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )

    def ready(daemon: Any) -> None:
        where = "no API" if no_api else f"API on http://{api.host}:{api.port}/"
        click.echo(f"soredi-sync running ({where}); {engine_note(daemon.app)}", err=True)

    from soredi_sync.daemon.runner import EXIT_ABANDONED

    with _app(ctx, migrate_empty=True) as app:
        code = run(app, with_api=not no_api, api=api, on_ready=ready, log_format=log_format)
    if code == EXIT_ABANDONED:
        # A job thread is stuck (e.g. in a download); do not wait for it.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
    ctx.exit(code)


# -- audits and adoption -----------------------------------------------------------------------


@cli.command()
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
) -> None:
    """Findings in SOR-EDI on the current snapshot (or --snapshot/--at), per rule and owner."""
    from soredi_sync import reports
    from soredi_sync.services.audit import run_audit

    if fmt in ("xlsx", "html") and out is None:
        raise click.UsageError(f"--format {fmt} needs --out FILE")
    if snapshot_id is not None and at is not None:
        raise click.UsageError("give --snapshot or --at, not both")
    owner = owner.strip() if owner else None
    owners = [owner] if owner and owner.isdigit() else None
    owner_name = owner if owner and not owner.isdigit() else None
    settings = _settings(ctx)
    with _app(ctx) as app, app.uow() as uow:
        try:
            report = run_audit(
                uow,
                settings.audit_context,
                snapshot_id=snapshot_id,
                at=at,
                owners=owners,
                owner_name=owner_name,
                region=region,
                vans=vans,
                since_snapshot=since,
                vans_names=settings.vans_names,
            )
        except SorediError as exc:
            _fail(ctx, exc)
            return
    if fmt == "table":
        reports.render_table(_console(), report)
        return
    if fmt == "xlsx" or fmt == "html":
        assert out is not None
        (reports.to_xlsx if fmt == "xlsx" else reports.to_html)(report, out)
        click.echo(f"wrote {out} ({len(report.findings)} findings)", err=True)
        return
    text = reports.to_csv(report) if fmt == "csv" else _json_text(reports.to_json(report))
    _write_or_echo(text, out)


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write_or_echo(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@cli.command()
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
    from soredi_sync import reports
    from soredi_sync.services.audit import adoption_series

    if plot is not None and plot.suffix.lower() not in (".png", ".html", ".htm"):
        raise click.BadParameter("use a .png or .html file", param_hint="--plot")
    settings = _settings(ctx)
    with _app(ctx) as app, app.uow() as uow:
        series = adoption_series(uow, settings.audit_context, by=by)
    if not series:
        _fail(ctx, NoSnapshot())
        return
    text = (
        reports.adoption_csv(series) if fmt == "csv" else _json_text(reports.adoption_json(series))
    )
    _write_or_echo(text, out)
    if plot is not None:
        try:
            reports.adoption_plot(series, plot)
        except SorediError as exc:  # a PNG without the [plot] extra
            _fail(ctx, exc)
        click.echo(f"wrote {plot}", err=True)


@cli.command()
@click.option(
    "--date",
    "on",
    required=True,
    callback=_parse_day,
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
@json_option
@click.pass_context
def cutover(ctx: click.Context, on: date, owners: tuple[str, ...], as_json: bool) -> None:
    """Receivers each sender syntax reaches today but could not reach if the configured
    conversions ended on DATE (decided by the routing policy in force)."""
    from soredi_sync.services.cutover import cutover as cutover_report

    settings = _settings(ctx)
    with _app(ctx) as app:
        try:
            resolver = app.routing().resolver()
        except NoSnapshot as error:
            _fail(ctx, error)
            return
        with app.uow() as uow:
            info = uow.registry.get_snapshot(resolver.index.snapshot.id)
        today = info.effective_date if info else None
        report = cutover_report(
            resolver,
            on,
            owners=list(owners) if owners else None,
            audit_context=settings.audit_context,
            today=today,
        )
    if as_json:
        _emit_json(
            {
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
        )
        return
    from rich.table import Table

    console = _console()
    console.print(
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
        console.print(table)


# -- change plans -------------------------------------------------------------------------------


def _plan_uow(app: Any) -> Any:

    return app.uow()


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


actor_option = click.option(
    "--actor", metavar="NAME", help="Who makes the change, for the record (default: login name)."
)


def _plan_json(plan: Any, events: Any = None) -> dict[str, Any]:
    from soredi_sync.services.plans import plan_counts

    data: dict[str, Any] = {**jsonable(plan), "counts": plan_counts(plan)}
    if events is not None:
        data["events"] = jsonable(events)
    return data


def _print_plan(plan: Any) -> None:
    from rich.table import Table

    from soredi_sync.services.plans import plan_counts

    counts = ", ".join(f"{k} {v}" for k, v in plan_counts(plan).items() if v)
    console = _console()
    console.print(
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
    console.print(table)


@cli.group()
def plan() -> None:
    """Change plans for SOR-EDI: create, show, export, submit, verify."""


@plan.command("create")
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

    settings = _settings(ctx)
    with _app(ctx) as app, _plan_uow(app) as uow:
        try:
            created = create_plan(
                uow,
                settings.audit_context,
                actor=_actor(actor),
                owners=_split_values(owners),
                owner_kind=owner_kind,
                switch_to=switch_to,
                findings=from_findings,
            )
        except PlanRequestError as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            _fail(ctx, exc)
            return
    if as_json:
        _emit_json(_plan_json(created))
    else:
        _print_plan(created)


@plan.command("show")
@click.argument("plan_id", metavar="ID", type=int)
@json_option
@click.pass_context
def plan_show(ctx: click.Context, plan_id: int, as_json: bool) -> None:
    """A plan, its items and (with --json) the record of every state change."""
    from soredi_sync.services.plans import get_plan, plan_events

    with _app(ctx) as app, _plan_uow(app) as uow:
        try:
            found = get_plan(uow, plan_id)
            events = plan_events(uow, plan_id)
        except SorediError as exc:
            _fail(ctx, exc)
            return
    if as_json:
        _emit_json(_plan_json(found, events))
    else:
        _print_plan(found)


@plan.command("export")
@click.argument("plan_id", metavar="ID", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def plan_export(ctx: click.Context, plan_id: int, fmt: str, out: Path) -> None:
    """Write the worklist for the SOR-EDI application (GLN, owner, action, type, version,
    reason)."""
    from soredi_sync.services.plans import get_plan, write_worklist

    with _app(ctx) as app, _plan_uow(app) as uow:
        try:
            found = get_plan(uow, plan_id)
        except SorediError as exc:
            _fail(ctx, exc)
            return
    write_worklist(found, fmt, out)
    click.echo(f"wrote {out} ({len(found.items)} items)", err=True)


@plan.command("submit")
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
    settings = _settings(ctx)
    with _app(ctx) as app, _plan_uow(app) as uow:
        try:
            sorus = None
            if channel == "sorus":
                sorus = app.sorus()
            submitted = submit_plan(
                uow,
                plan_id,
                channel,
                actor=_actor(actor),
                out=out,
                fmt=fmt,
                sorus=sorus,
                batch_size=settings.soap.sorus_batch_size,
            )
        except SorediError as exc:
            _fail(ctx, exc)
            return
        reasons = {
            e.item_id: str(e.details.get("reason", ""))
            for e in plan_events(uow, plan_id)
            if e.to_state == "rejected"
        }
    counts = plan_counts(submitted)
    if as_json:
        _emit_json({"plan_id": plan_id, "channel": channel, "counts": counts})
        return
    if out is not None:
        click.echo(f"wrote {out}", err=True)
    rejected = f", {counts['rejected']} rejected" if counts["rejected"] else ""
    click.echo(f"plan {plan_id}: {counts['submitted']} items submitted via {channel}{rejected}")
    for item in submitted.items:
        if item.state == "rejected":
            why = reasons.get(item.id) or "no reason given"
            click.echo(f"  rejected: {item.gln} {item.action.value} {item.message_type}: {why}")


@plan.command("verify")
@click.argument("plan_id", metavar="ID", type=int)
@actor_option
@json_option
@click.pass_context
def plan_verify(ctx: click.Context, plan_id: int, actor: str | None, as_json: bool) -> None:
    """Judge each submitted item against the current snapshot: confirmed, pending or
    diverged."""
    from soredi_sync.services.plans import verify_plan

    with _app(ctx) as app, _plan_uow(app) as uow:
        try:
            result = verify_plan(uow, plan_id, actor=_actor(actor))
        except SorediError as exc:
            _fail(ctx, exc)
            return
    if as_json:
        _emit_json(result)
        return
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
    click.echo(
        f"plan {plan_id} on snapshot {result.snapshot_id}: {result.changed} items changed "
        f"state; {counts or 'no items'}"
    )


# -- change subscriptions (webhooks) ----------------------------------------------------------


def _webhook_uow(app: Any) -> Any:

    return app.uow()


def _webhook_json(sub: Any, counts: dict[str, int]) -> dict[str, Any]:
    from soredi_sync.services.webhooks import WebhookFilter

    data: dict[str, Any] = jsonable(sub)
    data["filters"] = WebhookFilter.of(sub.filters).as_dict()
    data["deliveries"] = counts
    return data


def _filter_text(sub: Any) -> str:
    from soredi_sync.services.webhooks import WebhookFilter

    parts = [f"{k}={','.join(v)}" for k, v in WebhookFilter.of(sub.filters).as_dict().items() if v]
    return " ".join(parts) or "everything"


@cli.group()
def webhook() -> None:
    """Change subscriptions: changes POSTed, signed, after each sync (see also `changes`)."""


@webhook.command("add")
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
            glns=_split_values(glns),
            owners=_split_values(owners),
            message_types=_split_values(message_types),
            kinds=kinds,
            entities=entities,
        )
    except InvalidWebhook as exc:
        raise click.UsageError(str(exc)) from None
    with _app(ctx) as app, _webhook_uow(app) as uow:
        try:
            created = create_subscription(
                uow,
                name=name,
                url=url,
                webhook_filter=webhook_filter,
                actor=_actor(actor),
                policy=address_policy(app.settings.webhooks),
            )
        except InvalidWebhook as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            _fail(ctx, exc)
            return
    sub = created.subscription
    click.echo(
        f"created webhook {sub.id} {sub.name!r} for {_filter_text(sub)}, from change "
        f"{sub.cursor} on. Its signing secret follows; store it now: it is not shown again.",
        err=True,
    )
    click.echo(created.secret)


@webhook.command("list")
@json_option
@click.pass_context
def webhook_list(ctx: click.Context, as_json: bool) -> None:
    """Every subscription (configured and registered, active or removed) and its deliveries."""
    from soredi_sync.services.webhooks import delivery_counts, list_subscriptions

    with _app(ctx) as app, _webhook_uow(app) as uow:
        subs = list_subscriptions(uow)
        counts = delivery_counts(uow)
    if as_json:
        _emit_json([_webhook_json(s, counts.get(s.id, {})) for s in subs])
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
    _console().print(table)


@webhook.command("remove")
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

    with _app(ctx) as app, _webhook_uow(app) as uow:
        try:
            found = find_subscription(uow, name)
            sub = deactivate_subscription(uow, found.id, actor=_actor(actor))
        except WebhookConflict as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            _fail(ctx, exc)
            return
    click.echo(f"removed webhook {sub.id} {sub.name!r}")


@webhook.command("deliveries")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@json_option
@click.pass_context
def webhook_deliveries(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """The recent deliveries of subscription NAME, newest first, and how each went."""
    from soredi_sync.services.webhooks import find_subscription, recent_deliveries

    with _app(ctx) as app, _webhook_uow(app) as uow:
        try:
            sub = find_subscription(uow, name)
            deliveries = recent_deliveries(uow, sub.id, limit)
        except SorediError as exc:
            _fail(ctx, exc)
            return
    if as_json:
        _emit_json(deliveries)
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
    _console().print(table)


@webhook.command("dispatch")
@json_option
@click.pass_context
def webhook_dispatch(ctx: click.Context, as_json: bool) -> None:
    """Apply the configured subscriptions, enqueue new changes and deliver what is due, now.

    Each POST ends within webhooks.timeout; deliveries a running daemon is sending are claimed
    and skipped here, so nothing is sent twice at once."""
    from soredi_sync.services.webhooks import dispatch

    with _app(ctx) as app:
        report = dispatch(app)
    if as_json:
        _emit_json(report)
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


def main() -> None:
    from soredi_sync.errors import MissingExtra

    try:
        cli(prog_name="soredi-sync")
    except MissingExtra as exc:  # e.g. a PostgreSQL URL without the [postgres] extra
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
