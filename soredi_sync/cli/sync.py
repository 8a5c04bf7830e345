"""``soredi-sync sync``: pull a source, store a new snapshot (fail closed), then what follows a
stored snapshot (:mod:`soredi_sync.services.after_sync`), and say how it went."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from soredi_sync.cli.common import (
    EXIT_REFUSED,
    EXIT_SYNC_FAILED,
    database_errors,
    emit_json,
    fail,
    json_option,
    open_app,
    settings_of,
)
from soredi_sync.errors import SorediError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from soredi_sync.bootstrap import App
    from soredi_sync.clients.sor_files import ProgressCallback
    from soredi_sync.services.after_sync import FollowUp, StepFailure
    from soredi_sync.services.incremental import IncrementalOutcome
    from soredi_sync.services.sync import StageCallback, SyncOutcome


@click.command("sync")
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
        with database_errors(ctx, "syncing"):
            _sync_incremental(ctx, max_pages, as_json, accept_mass_change)
        return
    with (
        database_errors(ctx, "opening it for the sync; no run was recorded"),
        open_app(ctx, migrate_empty=True) as app,
    ):
        outcome = _sync_files(
            app,
            base_url=base_url,
            from_dir=from_dir,
            accept_mass_change=accept_mass_change,
            force=force,
            show_progress=not as_json,
        )
        follow_up = _after_sync(app, outcome)
    if as_json:
        emit_json(_outcome_json(outcome))
    else:
        _print_outcome(outcome)
        _print_verified(follow_up)
    _exit_for(ctx, outcome, follow_up)


def _sync_incremental(
    ctx: click.Context, max_pages: int | None, as_json: bool, accept_mass_change: bool
) -> None:
    """``sync --source skrs``: apply the replication feed after the stored cursor."""
    from soredi_sync.services.incremental import sync_incremental
    from soredi_sync.soap.skrs import make_skrs_client

    with open_app(ctx, migrate_empty=True) as app:
        soap = app.settings.soap
        try:
            client = make_skrs_client(soap)
        except SorediError as exc:
            fail(ctx, exc)
        outcome = sync_incremental(
            app.uow_factory,
            client,
            location=soap.skrs.address or soap.skrs.wsdl,
            max_pages=max_pages,
            max_removal_ratio=app.settings.guards.max_capability_removal_ratio,
            accept_mass_change=accept_mass_change,
        )
        follow_up = _after_sync(app, outcome)
    if as_json:
        emit_json(outcome)
    elif outcome.ok:
        click.echo(
            f"run {outcome.run_id}: {outcome.status.value}; {outcome.pages} pages, "
            f"{outcome.snapshots} snapshots stored, cursor at {outcome.offset or '-'}"
            + (f"; now snapshot {outcome.snapshot.id}" if outcome.snapshot else "")
        )
        _print_verified(follow_up)
    else:
        click.echo(f"run {outcome.run_id}: {outcome.status.value}: {outcome.error}", err=True)
    _exit_for(ctx, outcome, follow_up)


def _sync_files(
    app: App,
    *,
    base_url: str | None,
    from_dir: Path | None,
    show_progress: bool,
    accept_mass_change: bool,
    force: bool,
) -> SyncOutcome:
    from soredi_sync.services.sync import sync_source

    client = app.files_client(base_url=base_url, from_dir=from_dir)
    with _progress(show_progress and sys.stderr.isatty()) as (on_stage, on_download):
        return sync_source(
            app.uow_factory,
            client,
            app.sync_config(),
            on_stage=on_stage,
            on_download=on_download,
            accept_mass_change=accept_mass_change,
            force=force,
        )


def _after_sync(app: App, outcome: SyncOutcome | IncrementalOutcome) -> FollowUp:
    """Verify the open change plans on a stored snapshot, store its audit summary and its FHIR
    directory versions."""
    from soredi_sync.services.after_sync import after_sync

    reference = app.reference
    return after_sync(
        app.uow_factory,
        reference.audit_context,
        outcome,
        directory_context=reference.directory_context,
    )


@contextmanager
def _progress(
    enabled: bool,
) -> Iterator[tuple[StageCallback | None, ProgressCallback | None]]:
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
    tasks: dict[str, TaskID] = {}
    current: list[TaskID] = []

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


def _outcome_json(outcome: SyncOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "status": outcome.status.value,
        "snapshot": outcome.snapshot,
        "error": outcome.error,
        "counts": outcome.counts,
        "duration_seconds": round(outcome.duration_seconds, 3),
    }


def _print_outcome(outcome: SyncOutcome) -> None:
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


def _print_verified(follow_up: FollowUp) -> None:
    for result in follow_up.verified:
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
        click.echo(f"plan {result.plan_id} verified on snapshot {result.snapshot_id}: {counts}")


def _exit_for(
    ctx: click.Context, outcome: SyncOutcome | IncrementalOutcome, follow_up: FollowUp
) -> None:
    """Exit 3 for a refused run, 1 for a failed one or a failed follow-up (the snapshot
    stands; the error says which step failed)."""
    from soredi_sync.ports.records import RunStatus

    if outcome.status is RunStatus.REFUSED:
        ctx.exit(EXIT_REFUSED)
    if not outcome.ok:
        ctx.exit(EXIT_SYNC_FAILED)
    for failure in follow_up.failures:
        click.echo(_failure_line(ctx, failure, outcome.run_id), err=True)
    if follow_up.failures:
        ctx.exit(EXIT_SYNC_FAILED)


def _failure_line(ctx: click.Context, failure: StepFailure, run_id: int) -> str:
    from soredi_sync.db.engine import safe_database_url
    from soredi_sync.ports.failures import DatabaseFailure, is_database_failure

    error = failure.error
    if is_database_failure(error) and not isinstance(error, DatabaseFailure):
        error = DatabaseFailure(f"running the {failure.step} after run {run_id}", error)
    if isinstance(error, DatabaseFailure):
        return f"error: {error} [{safe_database_url(settings_of(ctx).database_url)}]"
    return f"error: the {failure.step} after run {run_id} failed: {error}"
