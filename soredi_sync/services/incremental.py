"""Use case: pull SOR-EDI capability changes from the SKRS replication feed between nightly files.

The feed gives versions of capability rows after an offset. Each page is folded into the
capability set of the current snapshot and stored, in ONE transaction, as the next snapshot
together with the feed offset it reached (``replication_cursors``). A crash between pages
therefore loses nothing and repeats nothing: the next run starts after the last stored page.

Units and GLNs come only from the files; the feed changes capabilities of GLNs the current
snapshot knows, and entries for other GLNs are counted and skipped. With no snapshot yet
(no full sync of the files), the sync is refused.

:func:`drift_report` compares the state built this way with the next full snapshot.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from soredi_sync.domain.days import today_in_denmark
from soredi_sync.domain.diff import ChangeSet, diff
from soredi_sync.domain.model import Capability, Registry
from soredi_sync.errors import MassChangeRefused, SorediError
from soredi_sync.ports.failures import DatabaseFailure, is_database_failure
from soredi_sync.ports.records import RunStatus, SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.liveness import RUN_LEASE_SECONDS
from soredi_sync.services.runs import OpenRun, RunSpec, recorded_run
from soredi_sync.soap.records import CapabilityVersion, ReplicationPage

logger = logging.getLogger(__name__)

SOURCE = "skrs"


class ReplicationSource(Protocol):
    """What the use case needs from :class:`~soredi_sync.soap.skrs.SkrsReplicationClient`."""

    def pages(
        self, offset: str | None = None, *, max_records: int | None = None
    ) -> Iterator[ReplicationPage]: ...


class NoBaseSnapshot(SorediError):
    def __init__(self) -> None:
        super().__init__(
            "no snapshot to apply replication entries to: run a full sync of the files first"
        )


class ConcurrentIncrementalSync(SorediError):
    def __init__(self, what: str, expected: object, found: object) -> None:
        super().__init__(
            f"the {what} changed while this sync worked (expected {expected!r}, found "
            f"{found!r}); the page was not stored, run again"
        )


@dataclass(frozen=True)
class IncrementalOutcome:
    run_id: int
    status: RunStatus
    snapshot: SnapshotInfo | None
    offset: str | None
    pages: int = 0
    snapshots: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.UNCHANGED)


# -- pure parts -------------------------------------------------------------------------------


def apply_entries(
    registry: Registry, entries: Iterable[CapabilityVersion], as_of: date
) -> tuple[Registry, int]:
    """Fold feed entries, in feed order, into ``registry``'s capabilities.

    A feed entry is one version of one row (GLN x EDI type, i.e. message type + version). A
    version current on ``as_of`` adds its version code to the GLN x type; any other version
    takes its version code away, and the type goes when no version is left. Several current
    versions of one type are joined, sorted, with commas, as the files path does
    (:class:`~soredi_sync.domain.model.Registry`). A row without a version code stands for
    the whole type. Entries for GLNs the registry does not hold are skipped.

    :returns: the new registry (units and GLNs unchanged) and the number of skipped entries
    """
    caps: dict[str, dict[str, Capability]] = {
        gln: dict(by_type) for gln, by_type in registry.capabilities.items()
    }
    skipped = 0
    for entry in entries:
        cap = entry.capability
        if cap.gln not in registry.glns:
            skipped += 1
            continue
        by_type = caps.setdefault(cap.gln, {})
        held = by_type.get(cap.message_type)
        versions = _versions(held) if held is not None else set()
        if entry.is_current_on(as_of):
            if cap.version_code:
                versions.add(cap.version_code)
            by_type[cap.message_type] = _with_versions(cap, versions)
        elif held is not None:
            if cap.version_code:
                versions.discard(cap.version_code)
            if cap.version_code and versions:
                by_type[cap.message_type] = _with_versions(cap, versions)
            else:
                del by_type[cap.message_type]
        if not by_type:
            del caps[cap.gln]
    updated = Registry(
        units=registry.units,
        glns=registry.glns,
        capabilities=caps,
        source_date=registry.source_date,
        notes=registry.notes,
    )
    return updated, skipped


def _versions(cap: Capability) -> set[str]:
    return set(cap.version_code.split(",")) if cap.version_code else set()


def _with_versions(cap: Capability, versions: set[str]) -> Capability:
    return Capability(cap.gln, cap.message_type, ",".join(sorted(versions)) or None)


def capability_changes(before: Registry, after: Registry, glns: Iterable[str]) -> ChangeSet:
    """The capability changes between two registries, compared only on ``glns``."""
    touched = set(glns)

    def only(registry: Registry) -> Registry:
        caps = {g: t for g, t in registry.capabilities.items() if g in touched}
        return Registry(units={}, glns={}, capabilities=caps)

    return diff(only(before), only(after))


def drift_report(incremental: Registry, full: Registry) -> dict[str, Any]:
    """GLN × message type pairs present in one registry and not the other, and version drift.

    Pairs of GLNs that only one registry holds are reported too: the feed cannot add GLNs, so
    a GLN new in the full snapshot shows its types as missing from the incremental state.
    """
    inc = {cap.key: cap.version_code for cap in incremental.iter_capabilities()}
    ful = {cap.key: cap.version_code for cap in full.iter_capabilities()}
    only_incremental = sorted(inc.keys() - ful.keys())
    only_full = sorted(ful.keys() - inc.keys())
    versions = sorted(k for k in inc.keys() & ful.keys() if inc[k] != ful[k])
    return {
        "in_sync": not (only_incremental or only_full or versions),
        "only_incremental": [{"gln": g, "message_type": t} for g, t in only_incremental],
        "only_full": [{"gln": g, "message_type": t} for g, t in only_full],
        "version_differs": [
            {"gln": g, "message_type": t, "incremental": inc[(g, t)], "full": ful[(g, t)]}
            for g, t in versions
        ],
        "counts": {
            "incremental": len(inc),
            "full": len(ful),
            "only_incremental": len(only_incremental),
            "only_full": len(only_full),
            "version_differs": len(versions),
        },
    }


# -- the use case -----------------------------------------------------------------------------


def sync_incremental(
    uow_factory: Callable[[], UnitOfWork],
    client: ReplicationSource,
    *,
    as_of: date | None = None,
    source: str = SOURCE,
    location: str = "SKRS replication",
    trigger: str = "cli",
    max_pages: int | None = None,
    max_records: int | None = None,
    max_removal_ratio: float = 0.10,
    accept_mass_change: bool = False,
    lease_seconds: float = RUN_LEASE_SECONDS,
) -> IncrementalOutcome:
    """Apply the feed after the stored cursor, one transaction (snapshot + cursor) per page.

    :param as_of: the day a version must be current on to count as present (default: today in
        Denmark)
    :param max_pages: stop after this many pages even if the feed is not caught up
    :param max_removal_ratio: refuse the page that would make this run remove more than this
        share of the capabilities the run started with (``guards.max_capability_removal_ratio``);
        the run is recorded as refused, the pages before it stay stored and the cursor stays
        before the refused page, so the next run meets it again
    :param accept_mass_change: store such pages anyway
    :returns: the outcome; a :class:`SorediError` is recorded and returned, anything else is
        recorded and re-raised. Pages stored before a failure stay stored.
    """
    day = as_of or today_in_denmark()
    progress = _Progress()
    with recorded_run(
        uow_factory,
        RunSpec(source, location, trigger, what="incremental sync run"),
        lambda uow: None,
        log=logger,
        explain=progress.expected_failure,
        failure_counts=progress.failure_counts,
        lease_seconds=lease_seconds,
    ) as run:
        feed = _FeedRun(uow_factory, run.id, source, day, max_removal_ratio, accept_mass_change)
        base = _read_base(uow_factory, source)
        progress.offset = base.offset
        last = _follow(feed, client, base, progress, max_pages, max_records)
        return _record_end(uow_factory, run, progress, base.offset, last)
    return _failed(run, progress)


@dataclass(frozen=True)
class _FeedRun:
    """What the stages of one run share."""

    uow_factory: Callable[[], UnitOfWork]
    run_id: int
    source: str
    day: date  # the day a version must be current on to count as present
    max_removal_ratio: float
    accept_mass_change: bool


@dataclass(frozen=True)
class _Base:
    """What the run starts from: the current snapshot, its registry and the stored offset."""

    snapshot: SnapshotInfo
    registry: Registry
    offset: str | None


@dataclass
class _Progress:
    """How far the run got: where its next page starts, and what a failure records."""

    offset: str | None = None  # the offset the stored pages reached
    pages: int = 0
    entries: int = 0
    skipped: int = 0
    snapshots: int = 0
    removed: int = 0

    def failure_counts(self) -> dict[str, Any]:
        return {"pages": self.pages, "snapshots": self.snapshots, "to_offset": self.offset}

    def expected_failure(self, exc: BaseException) -> SorediError | None:
        """A failure of the database, said in one line; None for a bug."""
        if not is_database_failure(exc):
            return None
        return DatabaseFailure(
            f"the sync was at the page after offset {self.offset or 'start'}; the pages before "
            "it stay stored",
            exc,
        )


def _read_base(uow_factory: Callable[[], UnitOfWork], source: str) -> _Base:
    with uow_factory() as uow:
        snapshot = uow.registry.current_snapshot()
        if snapshot is None:
            raise NoBaseSnapshot()
        registry = uow.registry.load_registry(snapshot.id)
        return _Base(snapshot, registry, uow.cursors.offset(source))


def _follow(
    feed: _FeedRun,
    client: ReplicationSource,
    base: _Base,
    progress: _Progress,
    max_pages: int | None,
    max_records: int | None,
) -> SnapshotInfo:
    """Fold the feed's pages after the base's offset into its registry, storing each page that
    moves the offset; returns the last snapshot stored, or the base's."""
    registry, last = base.registry, base.snapshot
    base_count = registry.capability_count
    for page in client.pages(progress.offset, max_records=max_records):
        if page.requested_offset != progress.offset:
            raise ConcurrentIncrementalSync(
                "requested offset", progress.offset, page.requested_offset
            )
        progress.pages += 1
        progress.entries += len(page.entries)
        updated, skipped = apply_entries(registry, page.entries, feed.day)
        progress.skipped += skipped
        changes = capability_changes(registry, updated, {e.capability.gln for e in page.entries})
        _refuse_mass_removal(feed, progress, len(changes.capabilities.removed), base_count)
        progress.removed += len(changes.capabilities.removed)
        if page.next_offset is not None and page.next_offset != progress.offset:
            last = _store_page(feed, page, page.next_offset, updated, changes, last, progress)
            progress.offset = page.next_offset
            registry = updated
            logger.info(
                "Stored SKRS page up to offset %s: %d entries, %d changes",
                progress.offset,
                len(page.entries),
                len(changes),
            )
        if max_pages is not None and progress.pages >= max_pages:
            break
    return last


def _refuse_mass_removal(
    feed: _FeedRun, progress: _Progress, page_removed: int, base_count: int
) -> None:
    """Refuse the page that would make the run remove more than the allowed share of the
    capabilities it started with."""
    removed = progress.removed + page_removed
    if (
        not feed.accept_mass_change
        and page_removed
        and removed > feed.max_removal_ratio * base_count
    ):
        raise MassChangeRefused(
            [
                f"the feed after offset {progress.offset or 'start'} would remove "
                f"{removed} of {base_count} GLN message types in "
                f"this run (more than {feed.max_removal_ratio:.0%})"
            ]
        )


def _store_page(
    feed: _FeedRun,
    page: ReplicationPage,
    to_offset: str,
    updated: Registry,
    changes: ChangeSet,
    last: SnapshotInfo,
    progress: _Progress,
) -> SnapshotInfo:
    """Store the page's snapshot (if it changes anything) and the offset it reaches, in one
    transaction; returns the snapshot current after it."""
    with feed.uow_factory() as uow:
        # One writer of snapshots at a time (files or feed, any process);
        # whatever another committed before shows up in the check.
        uow.registry.lock_snapshots()
        _check_unchanged(uow, feed.source, last, progress.offset)
        if not changes.is_empty:
            last = uow.registry.add_snapshot(
                updated,
                changes,
                run_id=feed.run_id,
                source=feed.source,
                content_hash=_page_hash(feed.source, page),
                baseline=False,
            )
            progress.snapshots += 1
        uow.cursors.advance(feed.source, to_offset, last.id)
        uow.commit()
    return last


def _page_hash(source: str, page: ReplicationPage) -> str:
    text = f"{source}:{page.requested_offset or ''}->{page.next_offset or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def _check_unchanged(
    uow: UnitOfWork, source: str, expected: SnapshotInfo, offset: str | None
) -> None:
    """Refuse to store a page if another writer moved the snapshot or the cursor meanwhile."""
    current = uow.registry.current_snapshot()
    if current is None or current.id != expected.id:
        raise ConcurrentIncrementalSync(
            "current snapshot", expected.id, current.id if current else None
        )
    stored = uow.cursors.offset(source)
    if stored != offset:
        raise ConcurrentIncrementalSync("stored offset", offset, stored)


def _record_end(
    uow_factory: Callable[[], UnitOfWork],
    run: OpenRun[None],
    progress: _Progress,
    start_offset: str | None,
    last: SnapshotInfo,
) -> IncrementalOutcome:
    counts: dict[str, Any] = {
        "pages": progress.pages,
        "entries": progress.entries,
        "skipped_unknown_gln": progress.skipped,
        "snapshots": progress.snapshots,
        "capabilities_removed": progress.removed,
        "from_offset": start_offset,
        "to_offset": progress.offset,
    }
    status = RunStatus.SUCCEEDED if progress.snapshots else RunStatus.UNCHANGED
    with uow_factory() as uow:
        uow.runs.finish(run.id, status, counts=counts, snapshot_id=last.id)
        uow.commit()
    return IncrementalOutcome(
        run.id,
        status,
        last,
        progress.offset,
        progress.pages,
        progress.snapshots,
        counts,
        None,
        run.elapsed(),
    )


def _failed(run: OpenRun[None], progress: _Progress) -> IncrementalOutcome:
    """The outcome of a run that failed as expected (recorded by :func:`recorded_run`)."""
    failure = run.failure
    assert failure is not None, "recorded_run swallows only a failure it recorded"
    return IncrementalOutcome(
        run.id,
        failure.status,
        failure.snapshot,
        progress.offset,
        progress.pages,
        progress.snapshots,
        failure.counts,
        failure.error,
        failure.duration_seconds,
    )
