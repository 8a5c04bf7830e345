"""A running sync's proof of life: a lease row that its process renews while the run is open.

Only a process can say it is still alive. A sync run is recorded as ``running`` when it starts
and as finished when it ends; a process killed in between leaves it ``running`` for ever. The
daemon's leader closes such runs ("abandoned", ``daemon/jobs.py``), and must not close the run
of a sync that is alive in another process or on another host (``soredi-sync sync`` from a
shell while the daemon runs). So every sync holds a lease named ``run:<id>`` in
``leader_leases`` from the transaction that records its start until it finishes: a thread
renews it every ``ttl / 4`` seconds, and it is deleted at the end. A run whose lease has
expired belongs to a process that stopped renewing it: dead, or stalled for longer than
``ttl``, and then it is closed.

A renewal that fails (the database busy or away) is logged and tried again at the next tick;
the lease lasts four ticks, so a short outage does not lose it. A process that leaves a sync
behind on purpose (the daemon, past its shutdown grace) gives its leases up first
(:func:`give_up_run_leases`), so the next leader closes those runs at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from soredi_sync.ports.failures import describe_database_error, is_database_failure
from soredi_sync.ports.records import RunStatus, SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork

logger = logging.getLogger(__name__)

# Seconds a run's lease lasts after each renewal: how long after a kill -9 the leader may
# close the run. Long enough to ride out a busy database (SQLite's 30 s busy timeout).
RUN_LEASE_SECONDS = 120.0

Clock = Callable[[], datetime]

# The leases this process holds: run id -> (unit-of-work factory, holder, stop renewing).
_held: dict[int, tuple[Callable[[], UnitOfWork], str, threading.Event]] = {}
_held_lock = threading.Lock()


def process_name() -> str:
    """``host:pid`` of this process, as the lease row names its holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_until(ttl: float, clock: Clock | None = None) -> datetime:
    return (clock or _utc_now)() + timedelta(seconds=ttl)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def kept_alive(
    uow_factory: Callable[[], UnitOfWork],
    run_id: int,
    *,
    holder: str,
    ttl: float = RUN_LEASE_SECONDS,
    clock: Clock | None = None,
) -> Iterator[None]:
    """Renew the lease of ``run_id`` (taken by
    :meth:`~soredi_sync.ports.storage.SyncRunRepository.start`) from a background thread while
    the block runs; release it afterwards.

    :param holder: the name the lease was taken under (:func:`process_name`)
    """
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 4):
            try:
                with uow_factory() as uow:
                    uow.runs.renew_lease(run_id, holder, lease_until(ttl, clock))
                    uow.commit()
            except Exception as exc:  # the sync itself reports database trouble
                logger.warning(
                    "Could not renew the lease of sync run %d: %s",
                    run_id,
                    describe_database_error(exc),
                )

    thread = threading.Thread(target=renew, name=f"run-{run_id}-lease", daemon=True)
    with _held_lock:
        _held[run_id] = (uow_factory, holder, stop)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with _held_lock:
            _held.pop(run_id, None)
        _release(uow_factory, run_id, holder)


def give_up_run_leases() -> list[int]:
    """Stop renewing, and delete, every run lease this process holds: for a process about to
    exit with a sync still running (the runs are then closed by the next leader's sweep).

    :returns: the ids of the runs given up
    """
    with _held_lock:
        held = list(_held.items())
        _held.clear()
    for run_id, (uow_factory, holder, stop) in held:
        stop.set()
        _release(uow_factory, run_id, holder)
    return [run_id for run_id, _ in held]


def _release(uow_factory: Callable[[], UnitOfWork], run_id: int, holder: str) -> None:
    try:
        with uow_factory() as uow:
            uow.runs.release_lease(run_id, holder)
            uow.commit()
    except Exception as exc:  # it expires by itself; the run is finished anyway
        logger.warning(
            "Could not release the lease of sync run %d: %s", run_id, describe_database_error(exc)
        )


def record_run_failure(
    uow_factory: Callable[[], UnitOfWork],
    run_id: int,
    status: RunStatus,
    message: str,
    *,
    counts: dict[str, Any] | None = None,
    what: str = "sync run",
) -> tuple[SnapshotInfo | None, str]:
    """Record run ``run_id`` as ended with ``status`` and ``message``; returns the snapshot
    current afterwards and the message for the operator.

    When the database itself refuses the write (a full disk), the run stays 'running': its
    lease runs out and the daemon's leader records it as abandoned. The message then carries
    both reasons, and no snapshot is returned.
    """
    try:
        with uow_factory() as uow:
            current = uow.registry.current_snapshot()
            values: dict[str, Any] = {"error": message}
            if counts is not None:  # the feed: how far it got, on which snapshot
                values.update(counts=counts, snapshot_id=current.id if current else None)
            uow.runs.finish(run_id, status, **values)
            uow.commit()
    except Exception as record_exc:  # the database itself may be what failed
        if not is_database_failure(record_exc):
            logger.exception("Could not record the failure of %s %d", what, run_id)
        return None, (
            f"{message}; the failure could not be recorded either "
            f"({describe_database_error(record_exc)}): run {run_id} stays 'running' until a "
            "daemon leader closes it as abandoned"
        )
    return current, message
