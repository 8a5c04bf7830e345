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
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from soredi_sync.db.engine import (
    DatabaseFailure,
    database_failures_as,
    is_database_failure,
)
from soredi_sync.db.models import ReplicationCursor, RunStatus
from soredi_sync.db.repository import SnapshotInfo
from soredi_sync.db.unit_of_work import UnitOfWork
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.domain.diff import ChangeSet, diff
from soredi_sync.domain.model import Capability, Registry
from soredi_sync.errors import MassChangeRefused, SorediError
from soredi_sync.observability.logging import bind_run
from soredi_sync.services.liveness import (
    RUN_LEASE_SECONDS,
    kept_alive,
    lease_until,
    process_name,
    record_run_failure,
)
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


# -- storage of the cursor --------------------------------------------------------------------


def _session(uow: UnitOfWork) -> Session:
    return uow.registry.session


def read_cursor(uow: UnitOfWork, source: str = SOURCE) -> str | None:
    """The stored offset of ``source``; None when nothing was stored yet (start from the top)."""
    row = _session(uow).get(ReplicationCursor, source)
    return row.offset if row is not None else None


def _write_cursor(uow: UnitOfWork, source: str, offset: str, snapshot_id: int | None) -> None:
    session = _session(uow)
    row = session.get(ReplicationCursor, source)
    now = datetime.now(UTC)
    if row is None:
        session.add(
            ReplicationCursor(source=source, offset=offset, updated_at=now, snapshot_id=snapshot_id)
        )
    else:
        row.offset = offset
        row.updated_at = now
        row.snapshot_id = snapshot_id
    session.flush()


def _page_hash(source: str, page: ReplicationPage) -> str:
    text = f"{source}:{page.requested_offset or ''}->{page.next_offset or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


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
    started = time.monotonic()
    holder = process_name()
    with (
        database_failures_as("recording the start of the sync (no run recorded)"),
        uow_factory() as uow,
    ):
        run_id = uow.runs.start(
            source, location, trigger, holder=holder, lease_until=lease_until(lease_seconds)
        )
        uow.commit()
    with (
        bind_run(run_id, source),
        kept_alive(uow_factory, run_id, holder=holder, ttl=lease_seconds),
    ):
        logger.info("Incremental sync run %d started from %s", run_id, location)

        pages = snapshots = entries = skipped = 0
        offset: str | None = None
        last: SnapshotInfo | None = None
        try:
            with uow_factory() as uow:
                last = uow.registry.current_snapshot()
                if last is None:
                    raise NoBaseSnapshot()
                registry = uow.registry.load_registry(last.id)
                offset = read_cursor(uow, source)
            start_offset = offset
            base_count = registry.capability_count
            removed = 0

            for page in client.pages(offset, max_records=max_records):
                if page.requested_offset != offset:
                    raise ConcurrentIncrementalSync(
                        "requested offset", offset, page.requested_offset
                    )
                pages += 1
                entries += len(page.entries)
                updated, page_skipped = apply_entries(registry, page.entries, day)
                skipped += page_skipped
                changes = capability_changes(
                    registry, updated, {e.capability.gln for e in page.entries}
                )
                page_removed = len(changes.capabilities.removed)
                if (
                    not accept_mass_change
                    and page_removed
                    and removed + page_removed > max_removal_ratio * base_count
                ):
                    raise MassChangeRefused(
                        [
                            f"the feed after offset {offset or 'start'} would remove "
                            f"{removed + page_removed} of {base_count} GLN message types in "
                            f"this run (more than {max_removal_ratio:.0%})"
                        ]
                    )
                removed += page_removed
                if page.next_offset is not None and page.next_offset != offset:
                    with uow_factory() as uow:
                        # One writer of snapshots at a time (files or feed, any process);
                        # whatever another committed before shows up in the check.
                        uow.registry.lock_snapshots()
                        _check_unchanged(uow, source, last, offset)
                        if not changes.is_empty:
                            last = uow.registry.add_snapshot(
                                updated,
                                changes,
                                run_id=run_id,
                                source=source,
                                content_hash=_page_hash(source, page),
                                baseline=False,
                            )
                            snapshots += 1
                        _write_cursor(uow, source, page.next_offset, last.id)
                        uow.commit()
                    offset = page.next_offset
                    registry = updated
                    logger.info(
                        "Stored SKRS page up to offset %s: %d entries, %d changes",
                        offset,
                        len(page.entries),
                        len(changes),
                    )
                if max_pages is not None and pages >= max_pages:
                    break

            counts: dict[str, Any] = {
                "pages": pages,
                "entries": entries,
                "skipped_unknown_gln": skipped,
                "snapshots": snapshots,
                "capabilities_removed": removed,
                "from_offset": start_offset,
                "to_offset": offset,
            }
            status = RunStatus.SUCCEEDED if snapshots else RunStatus.UNCHANGED
            with uow_factory() as uow:
                uow.runs.finish(run_id, status, counts=counts, snapshot_id=last.id)
                uow.commit()
            return IncrementalOutcome(
                run_id,
                status,
                last,
                offset,
                pages,
                snapshots,
                counts,
                None,
                time.monotonic() - started,
            )
        except SorediError as exc:
            return _finish_failed(uow_factory, run_id, started, exc, offset, pages, snapshots)
        except Exception as exc:
            if not is_database_failure(exc):
                _finish_failed(uow_factory, run_id, started, exc, offset, pages, snapshots)
                raise
            failure = DatabaseFailure(
                f"the sync was at the page after offset {offset or 'start'}; the pages before "
                "it stay stored",
                exc,
            )
            return _finish_failed(uow_factory, run_id, started, failure, offset, pages, snapshots)
        except BaseException as exc:
            _finish_failed(uow_factory, run_id, started, exc, offset, pages, snapshots)
            raise


def _check_unchanged(
    uow: UnitOfWork, source: str, expected: SnapshotInfo, offset: str | None
) -> None:
    """Refuse to store a page if another writer moved the snapshot or the cursor meanwhile."""
    current = uow.registry.current_snapshot()
    if current is None or current.id != expected.id:
        raise ConcurrentIncrementalSync(
            "current snapshot", expected.id, current.id if current else None
        )
    stored = read_cursor(uow, source)
    if stored != offset:
        raise ConcurrentIncrementalSync("stored offset", offset, stored)


def _finish_failed(
    uow_factory: Callable[[], UnitOfWork],
    run_id: int,
    started: float,
    exc: BaseException,
    offset: str | None,
    pages: int,
    snapshots: int,
) -> IncrementalOutcome:
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, SorediError):
        message = f"{type(exc).__name__}: {message}"
    status = RunStatus.REFUSED if isinstance(exc, MassChangeRefused) else RunStatus.FAILED
    counts = {"pages": pages, "snapshots": snapshots, "to_offset": offset}
    current, message = record_run_failure(
        uow_factory, run_id, status, message, counts=counts, what="incremental sync run"
    )
    logger.error("Incremental sync run %d %s: %s", run_id, status.value, message)
    return IncrementalOutcome(
        run_id,
        status,
        current,
        offset,
        pages,
        snapshots,
        counts,
        message,
        time.monotonic() - started,
    )
