"""History pages, read from the stored versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from soredi_sync.ports.records import FhirVersion
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.fhir_search.parameters import InvalidSearch
from soredi_sync.services.fhir_search.query import DATE_PATTERN, date_span

# -- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPage:
    versions: list[FhirVersion]  # newest first, as FHIR's history lists them
    next_before: int | None  # the next page holds the versions older than this version id


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
    before_id: int | None,
    count: int,
    resource_id: str | None = None,
) -> HistoryPage:
    """Up to ``count`` versions of ``resource_types`` (of one resource: ``resource_id``) made at
    or after ``since`` (FHIR's ``_since``), newest first, older than the version ``before_id``
    (None: from the newest); their contents as JSON text (``content_json``), to be served as
    they are.

    A history paged this way is the state of the moment its first page was read: later pages
    hold only older versions, so versions a sync stores meanwhile are not mixed in.
    """
    fetched: list[FhirVersion] = []
    for resource_type in resource_types:
        fetched += uow.fhir.newest_first(
            resource_type,
            since=since,
            before_id=before_id,
            limit=count + 1,
            resource_id=resource_id,
        )
    fetched.sort(key=lambda v: v.id, reverse=True)
    page = fetched[:count]
    more = len(fetched) > count
    return HistoryPage(page, page[-1].id if more and page else None)
