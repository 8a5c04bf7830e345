"""The life of one recorded sync run: its ``sync_runs`` row from 'running' to how it failed.

Both sync use cases (the files, :mod:`~soredi_sync.services.sync`; the replication feed,
:mod:`~soredi_sync.services.incremental`) run their stages inside :func:`recorded_run`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from soredi_sync.errors import MassChangeRefused, SorediError
from soredi_sync.observability.logging import bind_run
from soredi_sync.ports.failures import database_failures_as
from soredi_sync.ports.records import RunStatus, SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.liveness import (
    RUN_LEASE_SECONDS,
    kept_alive,
    lease_until,
    process_name,
    record_run_failure,
)

T = TypeVar("T")

# What a failure other than a SorediError means for the operator: the error to record and
# return instead, or None for one that is not expected (recorded, then re-raised).
Explain = Callable[[BaseException], SorediError | None]


@dataclass(frozen=True)
class RunSpec:
    """Which run to record, and how the logs name it."""

    source: str
    location: str
    trigger: str
    what: str = "sync run"  # "<What> 12 started from ...", "<What> 12 failed: ..."


@dataclass(frozen=True)
class RunFailure:
    """How a run that did not finish ended, as recorded (or as it could not be recorded)."""

    status: RunStatus  # refused (a mass change) or failed
    error: str  # the message for the operator
    snapshot: SnapshotInfo | None  # current after the failure; None if that was unknowable
    counts: dict[str, Any]
    duration_seconds: float


@dataclass
class OpenRun(Generic[T]):
    """The run as the stages see it while it is open."""

    id: int
    started: float  # time.monotonic() when the run began
    at_start: T  # what ``read_at_start`` read in the transaction that recorded the start
    failure: RunFailure | None = None  # set when the block raised

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _unexplained(exc: BaseException) -> SorediError | None:
    return None


@contextmanager
def recorded_run(
    uow_factory: Callable[[], UnitOfWork],
    spec: RunSpec,
    read_at_start: Callable[[UnitOfWork], T],
    *,
    log: logging.Logger,
    explain: Explain = _unexplained,
    failure_counts: Callable[[], dict[str, Any]] | None = None,
    lease_seconds: float = RUN_LEASE_SECONDS,
) -> Iterator[OpenRun[T]]:
    """Record a run of ``spec.source`` as running, hold its liveness lease while the block
    runs, and record how it failed if the block raises.

    The block records success itself, in the transaction that stores what the run produced,
    so that a stored snapshot and an accepted run are never seen one without the other.
    Failures are recorded here, in a transaction of their own, and the block's exception is
    then swallowed or re-raised:

    - a :class:`SorediError`, or what ``explain`` turns an exception into, is recorded as
      ``refused`` (:class:`MassChangeRefused`) or ``failed`` and swallowed: the caller finds it
      in :attr:`OpenRun.failure` after the block and returns it as its outcome;
    - anything else (a bug, an interrupt) is recorded as ``failed`` and re-raised.

    Every line logged inside carries the run's id and source
    (:func:`~soredi_sync.observability.logging.bind_run`).

    :param read_at_start: reads, in the transaction that records the start, what the stages
        compare against (:attr:`OpenRun.at_start`)
    :param log: the use case's logger, for the lines that say the run started or failed
    :param failure_counts: how far the run got, recorded as the counts of a failed run (with
        the snapshot current then); without it a failure records only its error
    :param lease_seconds: how long the run's liveness lease lasts after each renewal
    :raises DatabaseFailure: the database could not even record the start of the run (a full
        disk, no connection); the block did not run
    """
    holder = process_name()
    started = time.monotonic()
    with (
        database_failures_as("recording the start of the sync (no run recorded)"),
        uow_factory() as uow,
    ):
        run_id = uow.runs.start(
            spec.source,
            spec.location,
            spec.trigger,
            holder=holder,
            lease_until=lease_until(lease_seconds),
        )
        run = OpenRun(run_id, started, read_at_start(uow))
        uow.commit()
    with (
        bind_run(run_id, spec.source),
        kept_alive(uow_factory, run_id, holder=holder, ttl=lease_seconds),
    ):
        log.info("%s %d started from %s", spec.what.capitalize(), run_id, spec.location)
        try:
            yield run
        except BaseException as exc:
            expected = exc if isinstance(exc, SorediError) else explain(exc)
            run.failure = _record_failure(
                uow_factory, run, spec, expected or exc, log, failure_counts
            )
            if expected is None:
                raise


def _record_failure(
    uow_factory: Callable[[], UnitOfWork],
    run: OpenRun[Any],
    spec: RunSpec,
    exc: BaseException,
    log: logging.Logger,
    failure_counts: Callable[[], dict[str, Any]] | None,
) -> RunFailure:
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, SorediError):
        message = f"{type(exc).__name__}: {message}"
    status = RunStatus.REFUSED if isinstance(exc, MassChangeRefused) else RunStatus.FAILED
    counts = failure_counts() if failure_counts is not None else None
    current, message = record_run_failure(
        uow_factory, run.id, status, message, counts=counts, what=spec.what
    )
    log.error("%s %d %s: %s", spec.what.capitalize(), run.id, status.value, message)
    return RunFailure(status, message, current, counts or {}, run.elapsed())
