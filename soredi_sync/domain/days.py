"""Calendar days as the Danish health sector counts them.

Validity dates in SOR and routing decisions are Danish calendar days: at 00:30 on 1 January
in Copenhagen it is already 1 January, although UTC (and a server set to UTC) still says
31 December. Code that needs "today" asks here, never ``date.today()``, which is the day of
whatever zone the machine runs in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DANISH_TIME = ZoneInfo("Europe/Copenhagen")


def danish_day(moment: datetime) -> date:
    """The Danish calendar day of an aware ``moment``."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(DANISH_TIME).date()


def today_in_denmark(now: datetime | None = None) -> date:
    """Today's date in Denmark (``now`` for tests; default: the clock)."""
    return danish_day(now or datetime.now(UTC))
