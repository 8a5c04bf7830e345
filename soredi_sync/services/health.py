"""Health of the data: failures in a row per source, degraded sources, and the data's age.

Everything here is read from ``sync_runs`` and ``snapshots``, so every replica answers the same
whichever of them ran the syncs.

*Data age* is the time since the registry was last confirmed against a source: the finish of
the newest run that stored a snapshot or found the source unchanged (the nightly files are the
same most weekends, which does not make the data old). Before any such run it is the age of
the current snapshot; with no snapshot there is no age.

*Stuck webhook deliveries* (:func:`webhook_health`) are read from ``webhook_deliveries``: the
first undelivered delivery of a subscription that has been due for longer than
``webhooks.stuck_after_seconds`` without being sent, or whose dispatcher's claim ran out.
They show in ``/readyz`` and as a metric, but do not make a replica unready: the data and the
routing answers are as good as ever, and taking replicas out of service would not move a
delivery (an operator or the alert on the metric must).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from soredi_sync.observability.metrics import SourceGauges
from soredi_sync.ports.records import RunStatus
from soredi_sync.ports.storage import UnitOfWork

if TYPE_CHECKING:
    from soredi_sync.config import DaemonSettings, WebhookSettings

ACCEPTED = (RunStatus.SUCCEEDED, RunStatus.UNCHANGED)
ENDED_BADLY = (RunStatus.FAILED, RunStatus.REFUSED)
# Enough history to count a streak of failures far past any sensible threshold.
_STREAK_WINDOW = 200


@dataclass(frozen=True)
class SourceHealth:
    source: str
    consecutive_failures: int
    degraded: bool
    last_status: str | None
    last_success_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class DataHealth:
    data_age_seconds: float | None
    max_age_seconds: float
    sources: tuple[SourceHealth, ...]

    @property
    def fresh(self) -> bool:
        return self.data_age_seconds is not None and self.data_age_seconds <= self.max_age_seconds


def source_health(uow: UnitOfWork, source: str, degraded_after: int) -> SourceHealth:
    """Failed or refused runs of ``source`` since its last accepted one (running ones skipped)."""
    ended = uow.runs.ended(source, _STREAK_WINDOW)
    streak = 0
    for run in ended:
        if run.status in ACCEPTED:
            break
        streak += 1
    last_success = uow.runs.last_accepted(source)
    return SourceHealth(
        source=source,
        consecutive_failures=streak,
        degraded=streak >= degraded_after,
        last_status=ended[0].status.value if ended else None,
        last_success_at=last_success.finished_at if last_success else None,
        last_error=ended[0].error if ended and ended[0].status in ENDED_BADLY else None,
    )


def data_age_seconds(uow: UnitOfWork, now: datetime | None = None) -> float | None:
    """Seconds since the registry was last confirmed by an accepted run (see module doc)."""
    now = now or datetime.now(UTC)
    confirmed = uow.runs.last_confirmed_at()
    if confirmed is None:
        current = uow.registry.current_snapshot()
        if current is None:
            return None
        confirmed = current.taken_at
    return max(0.0, (now - confirmed).total_seconds())


def data_health(
    uow: UnitOfWork,
    sources: tuple[str, ...],
    *,
    degraded_after: int,
    max_age_hours: float,
    now: datetime | None = None,
) -> DataHealth:
    return DataHealth(
        data_age_seconds=data_age_seconds(uow, now),
        max_age_seconds=max_age_hours * 3600.0,
        sources=tuple(source_health(uow, s, degraded_after) for s in sources),
    )


def monitored_sources(settings: DaemonSettings) -> tuple[str, ...]:
    """The sources whose health /readyz and the metrics report: the files always, the SKRS
    feed where an incremental pull is configured."""
    return ("sor-filer", "skrs") if settings.incremental_interval_seconds else ("sor-filer",)


def source_gauges_reader(
    uow_factory: Callable[[], UnitOfWork], settings: DaemonSettings
) -> Callable[[], list[SourceGauges]]:
    """What the source gauges show, read from ``sync_runs`` at each scrape: the same on every
    replica, whichever of them ran the syncs."""
    sources = monitored_sources(settings)

    def read() -> list[SourceGauges]:
        with uow_factory() as uow:
            healths = [source_health(uow, s, settings.degraded_after_failures) for s in sources]
        return [
            SourceGauges(
                h.source,
                h.consecutive_failures,
                h.degraded,
                h.last_success_at.timestamp() if h.last_success_at else None,
            )
            for h in healths
        ]

    return read


@dataclass(frozen=True)
class WebhookHealth:
    stuck: int
    oldest_stuck_since: datetime | None
    stuck_after_seconds: float


def webhook_health(
    uow: UnitOfWork, settings: WebhookSettings, now: datetime | None = None
) -> WebhookHealth:
    """Stuck webhook deliveries (see the module doc), in the unit of work's transaction."""
    now = now or datetime.now(UTC)
    due_before = now - timedelta(seconds=settings.stuck_after_seconds)
    stuck = uow.webhooks.stuck(now, due_before)
    return WebhookHealth(stuck.count, stuck.oldest_since, settings.stuck_after_seconds)
