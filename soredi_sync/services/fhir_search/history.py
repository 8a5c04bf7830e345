"""History pages, read from the stored versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from soredi_sync.ports.records import FhirVersion
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.fhir_search.parameters import InvalidSearch
from soredi_sync.services.fhir_search.query import DATE_PATTERN, date_span

# -- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPage:
    versions: list[FhirVersion]  # oldest first
    next_after: int | None  # the version id the next page starts after


def parse_instant(value: str) -> datetime:
    """``_since``: a FHIR instant (a date and time with a time zone); a date alone is its
    midnight UTC."""
    found = DATE_PATTERN.fullmatch(value)
    if found is None or found["day"] is None or (found["hour"] and not found["zone"]):
        raise InvalidSearch(f"_since is an instant such as 2026-12-02T10:00:00Z, not {value!r}")
    try:
        return date_span(found)[0]
    except ValueError as exc:
        raise InvalidSearch(f"not a valid instant: {value!r} ({exc})") from None


def read_history(
    uow: UnitOfWork,
    resource_types: Sequence[str],
    *,
    since: datetime | None,
    after_id: int,
    count: int,
) -> HistoryPage:
    """Up to ``count`` versions of ``resource_types`` made at or after ``since`` (FHIR's
    ``_since``), oldest first, from the version after ``after_id``; their contents as JSON
    text (``content_json``), to be served as they are."""
    # The repository takes versions strictly after; times are kept to the microsecond.
    after = since - timedelta(microseconds=1) if since is not None else None
    fetched: list[FhirVersion] = []
    for resource_type in resource_types:
        fetched += uow.fhir.history(
            resource_type, since=after, after_id=after_id, limit=count + 1, as_json=True
        )
    fetched.sort(key=lambda v: v.id)
    page = fetched[:count]
    more = len(fetched) > count
    return HistoryPage(page, page[-1].id if more and page else None)
