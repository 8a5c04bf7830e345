"""Use case: pull the sor-filer files, validate, diff and store them as the next snapshot.

Fail closed at every step: whatever goes wrong before the final commit leaves the current
snapshot exactly as it was, and the run is recorded as failed or refused with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soredi_sync.clients.sor_files import FetchedFile, ProgressCallback, SorFilesClient, Validators
from soredi_sync.config import GuardSettings, SourceSettings
from soredi_sync.domain.diff import ChangeSet, diff, implausible_removals
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Registry
from soredi_sync.errors import MassChangeRefused, SorediError
from soredi_sync.parsing.load import load_registry
from soredi_sync.ports.failures import DISK_ERRNOS, DatabaseFailure, is_database_failure
from soredi_sync.ports.records import RunStatus, SnapshotInfo, SyncRunInfo
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.reference_data import CsvColumns
from soredi_sync.services.liveness import RUN_LEASE_SECONDS
from soredi_sync.services.runs import OpenRun, RunSpec, recorded_run

logger = logging.getLogger(__name__)

SOURCE = "sor-filer"


class ConcurrentSync(SorediError):
    """Another writer stored a snapshot after this sync read the one it diffed against.

    The text is the same on every engine: writers of snapshots take one lock and re-check the
    current snapshot under it (``uow.registry.lock_snapshots()``), so the loser of a race
    always ends here, never in a unique-index violation.
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

    The stages: download both files (unchanged if the server or the content hashes say so),
    parse and validate them, compare them with the current snapshot (unchanged if they bring
    no change; refused if they remove more than the guards allow), store the next snapshot.
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
    stage = _Stages(on_stage)
    with recorded_run(
        uow_factory,
        RunSpec(SOURCE, client.location, trigger),
        _Baseline.read,
        log=logger,
        explain=lambda exc: _expected_failure(exc, stage.current),
        lease_seconds=lease_seconds,
    ) as run:
        pulled = _pull(client, config, run.at_start, stage, force=force, on_download=on_download)
        compared = (
            _compare(uow_factory, config.guards, pulled, stage, accept_mass_change)
            if isinstance(pulled, _Pulled)
            else pulled
        )
        if isinstance(compared, _Unchanged):
            return _record_unchanged(uow_factory, run, compared)
        return _store(uow_factory, run, compared, stage)
    return _failed(run)


class _Stages:
    """The stage callback, remembering the last stage (for a database failure's message)."""

    def __init__(self, callback: StageCallback | None) -> None:
        self._callback = callback
        self.current = "start"

    def __call__(self, name: str) -> None:
        self.current = name
        if self._callback is not None:
            self._callback(name)


def _expected_failure(exc: BaseException, stage: str) -> SorediError | None:
    """A failure of the machine or the database, said in one line; None for a bug."""
    if isinstance(exc, OSError):
        return LocalDiskFailure(exc) if exc.errno in DISK_ERRNOS else None
    if is_database_failure(exc):
        return DatabaseFailure(f"the sync was at {stage!r}; nothing was stored", exc)
    return None


# -- what the stages hand on ------------------------------------------------------------------


@dataclass(frozen=True)
class _Baseline:
    """What a pull is compared with, read in the transaction that records the run's start."""

    last: SyncRunInfo | None  # the last accepted run of the files
    current: SnapshotInfo | None

    @classmethod
    def read(cls, uow: UnitOfWork) -> _Baseline:
        return cls(uow.runs.last_accepted(SOURCE), uow.registry.current_snapshot())

    def validators(self, name: str, force: bool) -> Validators | None:
        # Conditional GET only makes sense when the last accepted copy is the one we hold.
        if force or self.last is None or self.current is None:
            return None
        return Validators(self.last.etags.get(name), self.last.last_modified.get(name))

    def holds(self, content_hash: str) -> bool:
        """The current snapshot, or the last accepted pull, came from this content."""
        seen_before = {self.current.content_hash if self.current else None}
        if self.last is not None:
            seen_before.add(self.last.content_hashes.get("combined"))
        return content_hash in seen_before


@dataclass(frozen=True)
class _Download:
    """The files' validators (for the next conditional GET) and hashes (none if not fetched)."""

    etags: dict[str, str]
    last_modified: dict[str, str]
    hashes: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Unchanged:
    """A pull that brings nothing new: the run is recorded as unchanged."""

    reason: str
    snapshot: SnapshotInfo | None
    download: _Download


@dataclass(frozen=True)
class _Pulled:
    """The files, parsed and validated."""

    download: _Download
    content_hash: str
    registry: Registry
    csv_report: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class _Compared:
    """A pull ready to store: its changes from the snapshot it was compared with."""

    pulled: _Pulled
    current: SnapshotInfo | None  # still current when the store commits, or nothing is stored
    changes: ChangeSet
    counts: dict[str, Any]
    accepted_mass_change: bool


# -- the stages -------------------------------------------------------------------------------


def _pull(
    client: SorFilesClient,
    config: SyncConfig,
    baseline: _Baseline,
    stage: _Stages,
    *,
    force: bool,
    on_download: ProgressCallback | None,
) -> _Pulled | _Unchanged:
    """Download both files and parse them, unless they are what the current snapshot holds."""
    names = (config.sources.sor_xml_path, config.sources.sor_csv_path)
    current = baseline.current
    with tempfile.TemporaryDirectory(prefix="soredi-sync-") as tmp:
        workdir = Path(tmp)
        fetched = []
        for name in names:
            stage(f"download {name}")
            validators = baseline.validators(name, force)
            fetched.append(client.fetch(name, workdir, validators, on_download))
        etags = {f.name: f.etag for f in fetched if f.etag}
        modified = {f.name: f.last_modified for f in fetched if f.last_modified}
        if current is not None and all(f.not_modified for f in fetched):
            return _Unchanged("not modified", current, _Download(etags, modified))
        if current is not None and any(f.not_modified for f in fetched):
            # One file changed and the other did not: fetch both for a consistent pair.
            fetched = [client.fetch(name, workdir, None, on_download) for name in names]
        content_hash = _combined_hash(fetched)
        hashes = {f.name: f.sha256 for f in fetched} | {"combined": content_hash}
        download = _Download(etags, modified, hashes)
        if current is not None and not force and baseline.holds(content_hash):
            return _Unchanged("same content", current, download)
        stage("parse and validate")
        registry, csv_report = _parse(fetched, config)
    return _Pulled(download, content_hash, registry, csv_report)


def _combined_hash(files: list[FetchedFile]) -> str:
    digest = hashlib.sha256()
    for fetched in sorted(files, key=lambda f: f.name):
        digest.update(f"{fetched.name}={fetched.sha256}\n".encode())
    return digest.hexdigest()


def _parse(
    fetched: list[FetchedFile], config: SyncConfig
) -> tuple[Registry, dict[str, dict[str, Any]]]:
    """The registry the two files hold, and which header each CSV column was read from."""
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
    return registry, csv_report


def _compare(
    uow_factory: Callable[[], UnitOfWork],
    guards: GuardSettings,
    pulled: _Pulled,
    stage: _Stages,
    accept_mass_change: bool,
) -> _Compared | _Unchanged:
    """Diff the pull with the snapshot current now; refuse implausible removals."""
    stage("compare with the current snapshot")
    with uow_factory() as uow:
        current = uow.registry.current_snapshot()
        previous = uow.registry.load_registry(current.id) if current else None
    registry = pulled.registry
    changes = diff(previous, registry)
    counts: dict[str, Any] = {
        "units": len(registry.units),
        "glns": len(registry.glns),
        "capabilities": registry.capability_count,
        "changes": changes.counts(),
        # Which header each CSV column was read from (aliases in csv-columns.toml).
        "csv": pulled.csv_report,
    }
    if current is not None and previous is not None and current.source != SOURCE:
        counts["drift"] = _drift(current, previous, registry)
    if previous is not None and changes.is_empty:
        return _Unchanged("no data changes", current, pulled.download)
    reasons = implausible_removals(
        previous, changes, guards.max_gln_removal_ratio, guards.max_capability_removal_ratio
    )
    if reasons and not accept_mass_change:
        raise MassChangeRefused(reasons)
    # The change set holds what the store needs; the old registry goes before the write.
    return _Compared(pulled, current, changes, counts, accepted_mass_change=bool(reasons))


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


def _store(
    uow_factory: Callable[[], UnitOfWork],
    run: OpenRun[_Baseline],
    compared: _Compared,
    stage: _Stages,
) -> SyncOutcome:
    """Store the next snapshot and record the run as succeeded, in one transaction."""
    stage("store snapshot")
    pulled, current = compared.pulled, compared.current
    with uow_factory() as uow:
        # Under the lock no other writer can commit a snapshot until this transaction
        # ends; one that did before shows up in the check below.
        uow.registry.lock_snapshots()
        _check_still_current(uow, current)
        snapshot = uow.registry.add_snapshot(
            pulled.registry,
            compared.changes,
            run_id=run.id,
            source=SOURCE,
            content_hash=pulled.content_hash,
            baseline=current is None,
        )
        duration = run.elapsed()
        uow.runs.finish(
            run.id,
            RunStatus.SUCCEEDED,
            etags=pulled.download.etags,
            last_modified=pulled.download.last_modified,
            content_hashes=pulled.download.hashes,
            counts=compared.counts,
            snapshot_id=snapshot.id,
            accepted_mass_change=compared.accepted_mass_change,
        )
        uow.commit()
    counts = compared.counts
    logger.info(
        "Sync run %d stored snapshot %d: %d units, %d GLNs, %d capabilities, %d changes",
        run.id,
        snapshot.id,
        counts["units"],
        counts["glns"],
        counts["capabilities"],
        len(compared.changes),
    )
    return SyncOutcome(
        run.id, RunStatus.SUCCEEDED, snapshot, compared.changes, None, counts, duration
    )


def _check_still_current(uow: UnitOfWork, expected: SnapshotInfo | None) -> None:
    """Refuse to store if another writer stored a snapshot after this sync read its own."""
    expected_id = expected.id if expected else None
    found = uow.registry.current_snapshot()
    if (found.id if found else None) != expected_id:
        raise ConcurrentSync(expected_id, found.id if found else None)


def _record_unchanged(
    uow_factory: Callable[[], UnitOfWork], run: OpenRun[_Baseline], unchanged: _Unchanged
) -> SyncOutcome:
    snapshot = unchanged.snapshot
    with uow_factory() as uow:
        uow.runs.finish(
            run.id,
            RunStatus.UNCHANGED,
            etags=unchanged.download.etags,
            last_modified=unchanged.download.last_modified,
            content_hashes=unchanged.download.hashes,
            counts={"reason": unchanged.reason},
            snapshot_id=snapshot.id if snapshot else None,
        )
        uow.commit()
    logger.info("Sync run %d: source unchanged (%s)", run.id, unchanged.reason)
    return SyncOutcome(
        run.id,
        RunStatus.UNCHANGED,
        snapshot,
        None,
        None,
        {"reason": unchanged.reason},
        run.elapsed(),
    )


def _failed(run: OpenRun[_Baseline]) -> SyncOutcome:
    """The outcome of a run that failed as expected (recorded by :func:`recorded_run`)."""
    failure = run.failure
    assert failure is not None, "recorded_run swallows only a failure it recorded"
    return SyncOutcome(
        run.id, failure.status, failure.snapshot, None, failure.error, {}, failure.duration_seconds
    )
