"""Use case: pull the sor-filer files, validate, diff and store them as the next snapshot.

Fail closed at every step: whatever goes wrong before the final commit leaves the current
snapshot exactly as it was, and the run is recorded as failed or refused with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soredi_sync.clients.sor_files import FetchedFile, ProgressCallback, SorFilesClient, Validators
from soredi_sync.config import CsvColumns, GuardSettings, SourceSettings
from soredi_sync.db.engine import (
    DISK_ERRNOS,
    DatabaseFailure,
    database_failures_as,
    is_database_failure,
)
from soredi_sync.db.models import RunStatus
from soredi_sync.db.repository import SnapshotInfo, SyncRunInfo
from soredi_sync.db.unit_of_work import UnitOfWork
from soredi_sync.domain.diff import ChangeSet, diff, implausible_removals
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Registry
from soredi_sync.errors import MassChangeRefused, SorediError
from soredi_sync.observability.logging import bind_run
from soredi_sync.parsing.load import load_registry
from soredi_sync.services.liveness import (
    RUN_LEASE_SECONDS,
    kept_alive,
    lease_until,
    process_name,
    record_run_failure,
)

logger = logging.getLogger(__name__)

SOURCE = "sor-filer"


class ConcurrentSync(SorediError):
    """Another writer stored a snapshot after this sync read the one it diffed against.

    The text is the same on every engine: writers of snapshots take one lock and re-check the
    current snapshot under it (:meth:`SqlAlchemyRegistryRepository.lock_snapshots`), so the
    loser of a race always ends here, never in a unique-index violation.
    """

    def __init__(self, expected: int | None, found: int | None) -> None:
        self.expected = expected
        self.found = found
        worked_from = f"snapshot {expected}" if expected is not None else "an empty database"
        super().__init__(
            f"another sync stored a snapshot first (snapshot {found}, while this one worked "
            f"from {worked_from}); nothing was stored, run again"
        )


class LocalDiskFailure(SorediError):
    """A local file (a download, the temporary directory) could not be written or read."""

    def __init__(self, exc: OSError) -> None:
        where = f" ({exc.filename})" if exc.filename else ""
        super().__init__(
            f"a local file could not be written or read: {exc.strerror or exc}{where} "
            "(is the disk full or failing?); nothing was stored"
        )


@dataclass(frozen=True)
class SyncConfig:
    """Everything the use case needs to know besides where the files come from."""

    sources: SourceSettings
    columns: CsvColumns
    guards: GuardSettings
    message_types: MessageTypeRegistry


@dataclass(frozen=True)
class SyncOutcome:
    run_id: int
    status: RunStatus
    snapshot: SnapshotInfo | None
    changes: ChangeSet | None = None
    error: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.UNCHANGED)


StageCallback = Callable[[str], None]


def _drift(current: SnapshotInfo, incremental: Registry, full: Registry) -> dict[str, Any]:
    """How the state an incremental source built differs from this full pull (logged, and
    kept in the run's counts). Changes published after the feed's last page show up too."""
    from soredi_sync.services.incremental import drift_report

    report = drift_report(incremental, full)
    summary = {"from_snapshot": current.id, "source": current.source, **report["counts"]}
    summary["in_sync"] = report["in_sync"]
    if report["in_sync"]:
        logger.info("The %s state of snapshot %d matches the full pull", current.source, current.id)
    else:
        examples = [
            f"{row['gln']}:{row['message_type']}"
            for row in (report["only_incremental"] + report["only_full"])[:5]
        ]
        logger.warning(
            "Drift between the %s state (snapshot %d) and the full pull: %d only in the feed's "
            "state, %d only in the files, %d version differences (e.g. %s)",
            current.source,
            current.id,
            report["counts"]["only_incremental"],
            report["counts"]["only_full"],
            report["counts"]["version_differs"],
            ", ".join(examples) or "-",
        )
    return summary


def _combined_hash(files: list[FetchedFile]) -> str:
    digest = hashlib.sha256()
    for fetched in sorted(files, key=lambda f: f.name):
        digest.update(f"{fetched.name}={fetched.sha256}\n".encode())
    return digest.hexdigest()


def sync_source(
    uow_factory: Callable[[], UnitOfWork],
    client: SorFilesClient,
    config: SyncConfig,
    *,
    trigger: str = "cli",
    accept_mass_change: bool = False,
    force: bool = False,
    on_stage: StageCallback | None = None,
    on_download: ProgressCallback | None = None,
    lease_seconds: float = RUN_LEASE_SECONDS,
) -> SyncOutcome:
    """Run one sync of the sor-filer files and record it.

    While it runs, the run holds a liveness lease that this process renews
    (:mod:`~soredi_sync.services.liveness`), so that no daemon leader takes it for abandoned.

    :param force: download even if the server says nothing changed (skips conditional GET)
    :param accept_mass_change: store a pull that removes more than the guards allow
    :param lease_seconds: how long the run's liveness lease lasts after each renewal
    :returns: the outcome; failures are recorded and returned, not raised, except for
        programming errors, which are recorded and then re-raised
    :raises DatabaseFailure: the database could not even record the start of the run (a full
        disk, no connection); nothing was fetched or stored
    """
    holder = process_name()
    started = time.monotonic()
    with (
        database_failures_as("recording the start of the sync (no run recorded)"),
        uow_factory() as uow,
    ):
        run_id = uow.runs.start(
            SOURCE,
            client.location,
            trigger,
            holder=holder,
            lease_until=lease_until(lease_seconds),
        )
        last = uow.runs.last_accepted(SOURCE)
        current = uow.registry.current_snapshot()
        uow.commit()
    with (
        bind_run(run_id, SOURCE),
        kept_alive(uow_factory, run_id, holder=holder, ttl=lease_seconds),
    ):
        return _sync(
            uow_factory,
            client,
            config,
            run_id=run_id,
            started=started,
            last=last,
            current=current,
            accept_mass_change=accept_mass_change,
            force=force,
            stage=_Stages(on_stage),
            on_download=on_download,
        )


class _Stages:
    """The stage callback, remembering the last stage (for a database failure's message)."""

    def __init__(self, callback: StageCallback | None) -> None:
        self._callback = callback
        self.current = "start"

    def __call__(self, name: str) -> None:
        self.current = name
        if self._callback is not None:
            self._callback(name)


def _sync(
    uow_factory: Callable[[], UnitOfWork],
    client: SorFilesClient,
    config: SyncConfig,
    *,
    run_id: int,
    started: float,
    last: SyncRunInfo | None,
    current: SnapshotInfo | None,
    accept_mass_change: bool,
    force: bool,
    stage: _Stages,
    on_download: ProgressCallback | None,
) -> SyncOutcome:
    logger.info("Sync run %d started from %s", run_id, client.location)

    names = (config.sources.sor_xml_path, config.sources.sor_csv_path)
    # Conditional GET only makes sense when the last accepted copy is the one we hold.
    use_validators = not force and last is not None and current is not None
    try:
        with tempfile.TemporaryDirectory(prefix="soredi-sync-") as workdir:
            fetched = []
            for name in names:
                stage(f"download {name}")
                validators = (
                    Validators(last.etags.get(name), last.last_modified.get(name))
                    if use_validators and last is not None
                    else None
                )
                fetched.append(client.fetch(name, Path(workdir), validators, on_download))
            etags = {f.name: f.etag for f in fetched if f.etag}
            modified = {f.name: f.last_modified for f in fetched if f.last_modified}

            if current is not None and all(f.not_modified for f in fetched):
                return _finish_unchanged(
                    uow_factory, run_id, started, current, etags, modified, "not modified"
                )
            if current is not None and any(f.not_modified for f in fetched):
                # One file changed and the other did not: fetch both for a consistent pair.
                fetched = [client.fetch(name, Path(workdir), None, on_download) for name in names]
            content_hash = _combined_hash(fetched)
            hashes = {f.name: f.sha256 for f in fetched} | {"combined": content_hash}
            seen_before = {current.content_hash if current else None}
            if last is not None:
                seen_before.add(last.content_hashes.get("combined"))
            if current is not None and not force and content_hash in seen_before:
                return _finish_unchanged(
                    uow_factory,
                    run_id,
                    started,
                    current,
                    etags,
                    modified,
                    "same content",
                    hashes,
                )

            stage("parse and validate")
            xml_file, csv_file = (f.path for f in fetched)
            assert xml_file is not None and csv_file is not None
            csv_report: dict[str, dict[str, Any]] = {}
            registry = load_registry(
                xml_file,
                csv_file,
                config.sources,
                config.columns,
                config.guards,
                config.message_types,
                csv_report,
            )

        stage("compare with the current snapshot")
        with uow_factory() as uow:
            current = uow.registry.current_snapshot()
            previous = uow.registry.load_registry(current.id) if current else None
        changes = diff(previous, registry)
        counts: dict[str, Any] = {
            "units": len(registry.units),
            "glns": len(registry.glns),
            "capabilities": registry.capability_count,
            "changes": changes.counts(),
            # Which header each CSV column was read from (aliases in csv-columns.toml).
            "csv": csv_report,
        }
        if current is not None and previous is not None and current.source != SOURCE:
            counts["drift"] = _drift(current, previous, registry)
        if previous is not None and changes.is_empty:
            return _finish_unchanged(
                uow_factory,
                run_id,
                started,
                current,
                etags,
                modified,
                "no data changes",
                hashes,
            )
        reasons = implausible_removals(
            previous,
            changes,
            config.guards.max_gln_removal_ratio,
            config.guards.max_capability_removal_ratio,
        )
        if reasons and not accept_mass_change:
            raise MassChangeRefused(reasons)
        baseline = previous is None
        # The change set holds what the store needs; the old registry can go before the write.
        del previous

        stage("store snapshot")
        with uow_factory() as uow:
            # Under the lock no other writer can commit a snapshot until this transaction
            # ends; one that did before shows up in the re-read below.
            uow.registry.lock_snapshots()
            now_current = uow.registry.current_snapshot()
            if (now_current.id if now_current else None) != (current.id if current else None):
                raise ConcurrentSync(
                    current.id if current else None, now_current.id if now_current else None
                )
            snapshot = uow.registry.add_snapshot(
                registry,
                changes,
                run_id=run_id,
                source=SOURCE,
                content_hash=content_hash,
                baseline=baseline,
            )
            duration = time.monotonic() - started
            uow.runs.finish(
                run_id,
                RunStatus.SUCCEEDED,
                etags=etags,
                last_modified=modified,
                content_hashes=hashes,
                counts=counts,
                snapshot_id=snapshot.id,
                accepted_mass_change=bool(reasons),
            )
            uow.commit()
        logger.info(
            "Sync run %d stored snapshot %d: %d units, %d GLNs, %d capabilities, %d changes",
            run_id,
            snapshot.id,
            counts["units"],
            counts["glns"],
            counts["capabilities"],
            len(changes),
        )
        return SyncOutcome(run_id, RunStatus.SUCCEEDED, snapshot, changes, None, counts, duration)
    except MassChangeRefused as exc:
        return _finish_failed(uow_factory, run_id, started, RunStatus.REFUSED, exc)
    except SorediError as exc:
        return _finish_failed(uow_factory, run_id, started, RunStatus.FAILED, exc)
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            _finish_failed(uow_factory, run_id, started, RunStatus.FAILED, exc)
            raise
        return _finish_failed(uow_factory, run_id, started, RunStatus.FAILED, LocalDiskFailure(exc))
    except Exception as exc:
        if not is_database_failure(exc):
            _finish_failed(uow_factory, run_id, started, RunStatus.FAILED, exc)
            raise
        return _finish_failed(
            uow_factory,
            run_id,
            started,
            RunStatus.FAILED,
            DatabaseFailure(f"the sync was at {stage.current!r}; nothing was stored", exc),
        )
    except BaseException as exc:
        # Not an expected failure (a bug, an interrupt): record it, keep the data, re-raise.
        _finish_failed(uow_factory, run_id, started, RunStatus.FAILED, exc)
        raise


def _finish_unchanged(
    uow_factory: Callable[[], UnitOfWork],
    run_id: int,
    started: float,
    current: SnapshotInfo | None,
    etags: dict[str, str],
    modified: dict[str, str],
    why: str,
    hashes: dict[str, str | None] | None = None,
) -> SyncOutcome:
    with uow_factory() as uow:
        uow.runs.finish(
            run_id,
            RunStatus.UNCHANGED,
            etags=etags,
            last_modified=modified,
            content_hashes=hashes or {},
            counts={"reason": why},
            snapshot_id=current.id if current else None,
        )
        uow.commit()
    logger.info("Sync run %d: source unchanged (%s)", run_id, why)
    return SyncOutcome(
        run_id,
        RunStatus.UNCHANGED,
        current,
        None,
        None,
        {"reason": why},
        time.monotonic() - started,
    )


def _finish_failed(
    uow_factory: Callable[[], UnitOfWork],
    run_id: int,
    started: float,
    status: RunStatus,
    exc: BaseException,
) -> SyncOutcome:
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, SorediError):
        message = f"{type(exc).__name__}: {message}"
    current, message = record_run_failure(uow_factory, run_id, status, message)
    logger.error("Sync run %d %s: %s", run_id, status.value, message)
    return SyncOutcome(run_id, status, current, None, message, {}, time.monotonic() - started)
