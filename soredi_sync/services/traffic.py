"""Counting the decision log into daily traffic counts (``domain/traffic.py``).

:func:`update_traffic` counts every logged day not yet counted whole, up to today (today's
counts grow until the day is over); the daemon runs it every hour and before the decision log's
retention purge, so no day is purged before it is counted. :func:`rebuild_traffic` counts
again every day the log still holds whole (``soredi-sync traffic rebuild``). Each logged day is
counted in a transaction of its own and replaces that day's counts, so both can be stopped and
run again at any time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from soredi_sync.domain.days import DANISH_TIME, danish_day
from soredi_sync.domain.routing import RoutingIndex
from soredi_sync.domain.traffic import (
    Owners,
    WeightedFinding,
    count_traffic,
    owners_in,
    weigh_findings,
)
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.audit import AuditReport

logger = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]

# A logged day is counted whole once this long has passed after its end: decisions buffered
# by the API's processes reach the log within seconds (``[decision_log] flush_seconds``).
SETTLED = timedelta(minutes=10)


@dataclass(frozen=True)
class TrafficUpdate:
    """What one update or rebuild counted: the logged days and their decisions."""

    days: tuple[date, ...]
    decisions: int
    counted_through: date | None


NO_OWNERS = Owners(lambda _sor_id: None, lambda _gln: None)  # before the first snapshot


def owners_of(index: RoutingIndex) -> Owners:
    """The owners of the snapshot the routing index was built on."""
    return owners_in(index.registry, index.owners_by_gln)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The instants a Danish calendar day starts and ends (UTC)."""
    start = datetime.combine(day, time(), DANISH_TIME)
    end = datetime.combine(day + timedelta(days=1), time(), DANISH_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def count_logged_day(uow_factory: UowFactory, day: date, owners: Owners) -> int:
    """Count the decisions logged on ``day`` (replacing its counts); returns how many."""
    start, end = day_bounds(day)
    with uow_factory() as uow:
        counts = count_traffic(day, uow.traffic.logged_groups(start, end), owners)
        uow.traffic.replace_day(day, counts)
        uow.commit()
    return sum(c.messages for c in counts)


def update_traffic(uow_factory: UowFactory, owners: Owners, now: datetime) -> TrafficUpdate:
    """Count each logged day after the last one counted whole, through today."""
    with uow_factory() as uow:
        counted_through, purged_before = uow.traffic.state()
        oldest = uow.traffic.oldest_logged()
    first = _first_whole_day(oldest, purged_before)
    if counted_through is not None:
        # Never a day the retention cut into since (its counts would shrink).
        first = max(first or counted_through, counted_through + timedelta(days=1))
    return _count(uow_factory, owners, now, first)


def rebuild_traffic(
    uow_factory: UowFactory, owners: Owners, now: datetime, since: date | None = None
) -> TrafficUpdate:
    """Count again every logged day the decision log holds whole (from ``since`` when given,
    never before the log's first whole day); days before keep their counts."""
    with uow_factory() as uow:
        _, purged_before = uow.traffic.state()
        oldest = uow.traffic.oldest_logged()
    first = _first_whole_day(oldest, purged_before)
    if first is not None and since is not None:
        first = max(first, since)
    return _count(uow_factory, owners, now, first)


def _first_whole_day(oldest: datetime | None, purged_before: datetime | None) -> date | None:
    """The first logged day the log holds every decision of: the day of its oldest decision,
    unless the retention cut into that day (then the next one)."""
    if oldest is None:
        return None
    first = danish_day(oldest)
    if purged_before is not None and danish_day(purged_before) >= first:
        cut = danish_day(purged_before)
        first = cut if day_bounds(cut)[0] == purged_before else cut + timedelta(days=1)
    return first


def _count(
    uow_factory: UowFactory, owners: Owners, now: datetime, first: date | None
) -> TrafficUpdate:
    today = danish_day(now)
    days: list[date] = []
    decisions = 0
    day = first
    while day is not None and day <= today:
        decisions += count_logged_day(uow_factory, day, owners)
        days.append(day)
        day += timedelta(days=1)
    whole = [d for d in days if day_bounds(d)[1] + SETTLED <= now]
    with uow_factory() as uow:
        if whole:
            uow.traffic.set_state(counted_through=whole[-1])
            uow.commit()
        counted_through, _ = uow.traffic.state()
    if days:
        logger.info(
            "Counted the traffic of %d logged day(s), %s..%s: %d decisions",
            len(days),
            days[0],
            days[-1],
            decisions,
        )
    return TrafficUpdate(tuple(days), decisions, counted_through)


@dataclass(frozen=True)
class TrafficAudit:
    """An audit's findings weighed by the traffic their GLNs received in a window of days
    routed for (``first``..``last``), those that cost the most messages first."""

    report: AuditReport
    first: date
    last: date
    weighed: list[WeightedFinding]


def weigh_audit(
    uow: UnitOfWork, report: AuditReport, window_days: int, today: date
) -> TrafficAudit:
    """``report``'s findings with the messages converted and rejected at their GLNs in the
    ``window_days`` days ending ``today``."""
    first = today - timedelta(days=window_days - 1)
    received = uow.traffic.receiver_totals(first, today)
    return TrafficAudit(report, first, today, weigh_findings(report.findings, received))
