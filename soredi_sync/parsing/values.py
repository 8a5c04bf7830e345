"""Reading the scalar values SOR files use: booleans, dates, timestamps.

Each function raises :class:`ValueError` with a short reason; the parsers turn that into a
problem naming the file, line and record.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

XML_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
CSV_BOOLEANS = {**XML_BOOLEANS, "ja": True, "nej": False}

# xs:date allows a time zone after the date (2010-01-26+01:00, 2010-01-26Z); a date is a date.
_XS_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")


def parse_bool(text: str, allowed: dict[str, bool] = XML_BOOLEANS) -> bool:
    """``true``/``false``/``1``/``0`` (and whatever else ``allowed`` holds), any case."""
    try:
        return allowed[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not a boolean") from None


@lru_cache(maxsize=16384)
def parse_date(text: str) -> date:
    """An ISO date, ``YYYY-MM-DD``, optionally followed by an xs:date time zone.

    Cached: a national file repeats a few thousand distinct dates hundreds of thousands of times.
    """
    match = _XS_DATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def parse_datetime(text: str) -> datetime:
    """An xs:dateTime such as ``2010-01-26T00:00:00+01:00`` (``Z`` allowed)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a date-time") from None
