"""Today is the Danish calendar day, whatever zone the machine runs in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from soredi_sync.domain.days import danish_day, today_in_denmark


class TestDanishDay:
    @pytest.mark.parametrize(
        ("moment", "day"),
        [
            (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), date(2027, 1, 1)),  # CET, UTC+1
            (datetime(2026, 6, 30, 22, 30, tzinfo=UTC), date(2026, 7, 1)),  # CEST, UTC+2
            (datetime(2026, 6, 30, 21, 59, tzinfo=UTC), date(2026, 6, 30)),
            (datetime(2026, 7, 1, 1, 0, tzinfo=timezone(timedelta(hours=-8))), date(2026, 7, 1)),
        ],
    )
    def test_a_moment_falls_on_its_day_in_copenhagen(self, moment: datetime, day: date) -> None:
        assert danish_day(moment) == day

    def test_today_is_asked_of_the_given_clock(self) -> None:
        assert today_in_denmark(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2027, 1, 1)

    def test_a_moment_without_a_zone_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no time zone"):
            danish_day(datetime(2026, 12, 31, 23, 30))
