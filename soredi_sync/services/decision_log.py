"""The decision log: every routing decision served, kept for audit for a retention period.

Serving a decision must stay far under a millisecond, so the API never writes the log on the
request path: :meth:`DecisionLog.record` appends to an in-memory buffer, and a
:class:`BackgroundFlusher` thread writes the buffer in one transaction every second or as soon as
``batch_size`` decisions are waiting, and once more on shutdown.

This fails *open*: when the database cannot take the log (down, locked by a long sync on
SQLite), decisions are still served and the buffer is kept for the next flush, up to
``max_pending`` entries; beyond that new entries are dropped and the number dropped is logged.
Refusing to route because the audit log is behind would stop message traffic for the whole
region, which is worse than a gap in the audit trail that the log itself reports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from soredi_sync.domain.routing import RouteDecision, RouteRequest
from soredi_sync.domain.routing.facts import facts_of
from soredi_sync.ports.failures import is_storage_error
from soredi_sync.ports.records import DecisionEntry
from soredi_sync.ports.storage import UnitOfWork

logger = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]

# Column widths of the ``decisions`` table: values from callers are cut to fit rather than
# failing a whole batch on one over-long message id.
_WIDTHS = {
    "caller": 100,
    "message_id": 200,
    "receiver_gln": 13,
    "receiver_sor_id": 20,
    "business_message": 40,
    "sender_syntax": 20,
    "reason": 60,
    "message_type": 40,
    "address_sor_id": 20,
    "address_gln": 13,
    "sender_gln": 13,
    "sender_sor_id": 20,
    "conversion": 100,
}


def _clip(name: str, value: str | None) -> str | None:
    return value[: _WIDTHS[name]] if value is not None else None


def decision_entry(
    request: RouteRequest,
    decision: RouteDecision,
    *,
    caller: str,
    decided_at: datetime,
    token_id: int | None = None,
) -> DecisionEntry:
    """The log entry of ``decision``, made for ``request`` on behalf of ``caller``."""
    return DecisionEntry(
        decided_at=decided_at,
        caller=_clip("caller", caller) or "",
        token_id=token_id,
        message_id=_clip("message_id", request.message_id),
        receiver_gln=_clip("receiver_gln", request.receiver_gln),
        receiver_sor_id=_clip("receiver_sor_id", request.receiver_sor_id),
        business_message=_clip("business_message", request.business_message) or "",
        sender_syntax=_clip("sender_syntax", request.sender_syntax) or "",
        outcome=decision.decision.value,
        reason=_clip("reason", decision.reason.value if decision.reason else None),
        message_type=_clip("message_type", decision.message_type),
        address_sor_id=_clip("address_sor_id", decision.address.sor_id),
        address_gln=_clip("address_gln", decision.address.gln),
        snapshot_id=decision.snapshot.id,
        facts=facts_of(request),
        sender_gln=_clip("sender_gln", request.sender_gln),
        sender_sor_id=_clip("sender_sor_id", request.sender_sor_id),
        conversion=_clip("conversion", ",".join([c.step for c in decision.conversion]) or None),
    )


class DecisionLog:
    """An in-memory buffer of decisions, written to the database by :meth:`flush`.

    Thread-safe: request threads call :meth:`record`, the flusher thread calls :meth:`flush`.

    :param batch_size: waiting entries that wake the flusher before its interval is up
    :param max_pending: entries kept in memory at most while the database is unavailable
    """

    def __init__(
        self, uow_factory: UowFactory, *, batch_size: int = 500, max_pending: int = 100_000
    ) -> None:
        self._uow_factory = uow_factory
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[DecisionEntry] = []
        self._dropped = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.on_backlog: Callable[[], None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, entry: DecisionEntry) -> None:
        """Buffer ``entry``; never touches the database."""
        self.record_many((entry,))

    def record_many(self, entries: Sequence[DecisionEntry]) -> None:
        """Buffer ``entries`` (a batch's decisions) under one lock; never touches the database."""
        with self._lock:
            before = len(self._pending)
            room = max(self._max_pending - before, 0)
            self._pending.extend(entries[:room])
            self._dropped += max(len(entries) - room, 0)
            backlog = before < self._batch_size <= len(self._pending)
        if backlog and self.on_backlog is not None:
            self.on_backlog()

    def flush(self) -> int:
        """Write every buffered entry in one transaction; returns how many were written.

        On a database error the entries go back to the buffer (as many as fit) and 0 is returned.
        """
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                dropped, self._dropped = self._dropped, 0
            if dropped:
                logger.warning(
                    "Decision log dropped %d decisions: the buffer was full while the database "
                    "was unavailable",
                    dropped,
                )
            if not batch:
                return 0
            try:
                with self._uow_factory() as uow:
                    uow.decisions.add_many(batch)
                    uow.commit()
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                logger.warning(
                    "Writing %d decisions to the log failed; keeping them for the next flush",
                    len(batch),
                    exc_info=True,
                )
                self._requeue(batch)
                return 0
            return len(batch)

    def _requeue(self, batch: list[DecisionEntry]) -> None:
        with self._lock:
            room = max(self._max_pending - len(self._pending), 0)
            kept = batch[:room]  # the oldest: they have waited longest
            self._pending[:0] = kept
            self._dropped += len(batch) - len(kept)


class BackgroundFlusher:
    """A daemon thread that calls each of ``jobs`` every ``interval`` seconds, sooner when
    :meth:`wake` is called, and once more when stopped.

    A job that raises is logged and does not stop the thread or the other jobs.
    """

    def __init__(
        self, jobs: Sequence[Callable[[], object]], interval: float = 1.0, name: str = "flusher"
    ) -> None:
        self._jobs = tuple(jobs)
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after one last run of every job."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self._run_jobs()
        self._run_jobs()

    def _run_jobs(self) -> None:
        for job in self._jobs:
            try:
                job()
            except Exception:
                logger.exception("Background flush job %r failed", job)


def record_decisions(uow_factory: UowFactory, entries: Sequence[DecisionEntry]) -> None:
    """Write ``entries`` now, in one transaction (for one-off callers such as the CLI)."""
    with uow_factory() as uow:
        uow.decisions.add_many(entries)
        uow.commit()


def decisions_since(
    uow_factory: UowFactory, since: datetime, limit: int = 1000
) -> list[DecisionEntry]:
    """Logged decisions at or after ``since``, oldest first, at most ``limit``."""
    with uow_factory() as uow:
        return uow.decisions.since(since, limit)


def purge_decisions(uow_factory: UowFactory, older_than: datetime) -> int:
    """Delete decisions made before ``older_than``; returns how many were deleted."""
    with uow_factory() as uow:
        count = uow.decisions.purge(older_than)
        uow.traffic.set_state(purged_before=older_than)  # no traffic recount before it
        uow.commit()
    if count:
        logger.info("Purged %d decisions older than %s", count, older_than.isoformat())
    return count


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """The oldest decision time kept with a retention of ``retention_days``."""
    return now - timedelta(days=retention_days)
