"""Counting the decision log on the in-memory fakes: which logged days are counted, and that a
day the retention cut into keeps its counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.services.decision_log import purge_decisions
from soredi_sync.services.traffic import (
    NO_OWNERS,
    day_bounds,
    rebuild_traffic,
    update_traffic,
)
from tests.support.decisions import logged

TODAY = date(2026, 12, 3)
NOW = day_bounds(TODAY)[0] + timedelta(hours=15)
NOON = timedelta(hours=12)


def _log(uow: FakeUnitOfWork, *days: date) -> None:
    with uow:
        uow.decisions.add_many([logged(day_bounds(d)[0] + NOON) for d in days])
        uow.commit()


def _messages(uow: FakeUnitOfWork) -> dict[date, int]:
    found: dict[date, int] = {}
    for c in uow.traffic.counts(date(2000, 1, 1), TODAY):
        found[c.day] = found.get(c.day, 0) + c.messages
    return found


class TestUpdate:
    def test_every_logged_day_through_today_is_counted_and_the_finished_ones_are_marked(
        self, uow: FakeUnitOfWork
    ) -> None:
        days = [TODAY - timedelta(days=2), TODAY - timedelta(days=2), TODAY]
        _log(uow, *days)
        done = update_traffic(lambda: uow, NO_OWNERS, NOW)
        assert done.days == (TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY)
        assert done.decisions == 3 and done.counted_through == TODAY - timedelta(days=1)
        assert _messages(uow) == {TODAY - timedelta(days=2): 2, TODAY: 1}
        assert update_traffic(lambda: uow, NO_OWNERS, NOW).days == (TODAY,)

    def test_an_empty_log_counts_nothing(self, uow: FakeUnitOfWork) -> None:
        done = update_traffic(lambda: uow, NO_OWNERS, datetime.now(UTC))
        assert (done.days, done.decisions, done.counted_through) == ((), 0, None)


class TestRebuild:
    def test_a_day_the_retention_cut_into_is_not_recounted(self, uow: FakeUnitOfWork) -> None:
        first, second, third = (TODAY - timedelta(days=n) for n in (5, 4, 3))
        _log(uow, first, second, second, third)
        update_traffic(lambda: uow, NO_OWNERS, NOW)
        purge_decisions(lambda: uow, day_bounds(second)[0] + NOON + timedelta(hours=1))
        done = rebuild_traffic(lambda: uow, NO_OWNERS, NOW)
        assert done.days[0] == third  # the first day the log still holds whole
        assert _messages(uow) == {first: 1, second: 2, third: 1}  # kept from before the purge
