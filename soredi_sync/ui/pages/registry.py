"""Registry (``/ui/registry``, scope ``registry:read``): search by GLN, SOR-ID or a fragment of
a unit's name; a unit with its tree, its effective GLN and the path it is inherited along; a
GLN with its VANS, system, message types (obsolete ones marked) and the units using it; the
history of each as a timeline; all as of a date (``?at=YYYY-MM-DD``, as the API's ``at``).

An owner-restricted token sees only its owners' units and GLNs, decided as the API's
``/v1/units`` and ``/v1/glns`` decide (``services/tokens.py``: ``may_read_owner(s)``, and
``queries.owners_of_gln``): another owner's unit or GLN is a 403 page, an unknown one a 404.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soredi_sync.api.common import GLN_PATTERN, SOR_ID_PATTERN
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Capability, Unit, record_fields
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.ports.records import SnapshotInfo, TokenRecord, VersionSpan
from soredi_sync.services import queries
from soredi_sync.services.tokens import Scope, may_read_owner, may_read_owners
from soredi_sync.ui.i18n import N_
from soredi_sync.ui.web import (
    Caller,
    UiError,
    UiForbidden,
    UiNotFound,
    context,
    owner_scope,
    render,
    require,
    url,
)

router = APIRouter()

PREFIX = "/ui"  # ui_router's: the routes below are relative to it
SEARCH_PATH = "/ui/registry"
UNIT_PATH = "/ui/registry/units/{sor_id}"
GLN_PATH = "/ui/registry/glns/{gln}"
RESULTS_SHOWN = 50
MIN_FRAGMENT = 2

Text = Annotated[str | None, Query(max_length=200)]
AtParam = Annotated[str | None, Query(max_length=40)]


def unit_url(sor_id: str, at: date | None = None) -> str:
    return url(UNIT_PATH.format(sor_id=sor_id), at=at.isoformat() if at else None)


def gln_url(gln: str, at: date | None = None) -> str:
    return url(GLN_PATH.format(gln=gln), at=at.isoformat() if at else None)


def read_at(value: str | None) -> date | None:
    """``?at=``: empty for now, else an ISO date.

    :raises UiError: not a date (a 400 page)
    """
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UiError(N_("%(value)s is not a date: use YYYY-MM-DD."), value=value) from None


_MISSING = {
    # NotFound's kind -> (message now, message on a date)
    "unit": (N_("There is no unit %(key)s."), N_("There was no unit %(key)s on %(date)s.")),
    "GLN": (N_("There is no GLN %(key)s."), N_("There was no GLN %(key)s on %(date)s.")),
}


def _not_found(exc: NotFound, at: date | None) -> UiNotFound:
    if exc.kind not in _MISSING:  # "snapshot on or before"
        return UiNotFound(N_("No snapshot describes %(date)s or earlier."), date=exc.key)
    now, then = _MISSING[exc.kind]
    if at is not None:
        return UiNotFound(then, key=exc.key, date=at.isoformat())
    return UiNotFound(now, key=exc.key)


def _no_snapshot() -> UiNotFound:
    return UiNotFound(N_("Nothing has been synced yet: there is no snapshot."))


def _page_context(caller: TokenRecord, at: date | None) -> dict[str, Any]:
    return {
        "at": at,
        "unit_url": unit_url,
        "gln_url": gln_url,
        "search_path": SEARCH_PATH,
        "restricted": bool(owner_scope(caller)),
    }


# -- search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    text: str
    snapshot: SnapshotInfo | None = None
    units: list[Unit] = field(default_factory=list)
    more: bool = False  # more units matched than are shown
    too_short: bool = False


@router.get(SEARCH_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def search(request: Request, caller: Caller, q: Text = None, at: AtParam = None) -> Response:
    """A GLN or SOR-ID found goes straight to its page; a name fragment lists the units whose
    name contains it (the caller's owners' units only, for a restricted token)."""
    require(caller, Scope.REGISTRY_READ)
    day = read_at(at)
    text = " ".join((q or "").split())
    found = Search(text)
    if text:
        restricted = owner_scope(caller)
        with context(request).app.uow() as uow:
            try:
                snapshot = queries.snapshot_for(uow, day)
                if text.isdigit():
                    if re.fullmatch(GLN_PATTERN, text) and uow.registry.get_gln(text, snapshot.id):
                        return RedirectResponse(gln_url(text, day), status_code=303)
                    if re.fullmatch(SOR_ID_PATTERN, text) and uow.registry.get_unit(
                        text, snapshot.id
                    ):
                        return RedirectResponse(unit_url(text, day), status_code=303)
                    found = Search(text, snapshot)
                elif len(text) < MIN_FRAGMENT:
                    found = Search(text, snapshot, too_short=True)
                else:
                    _, units = queries.search_units(
                        uow,
                        text,
                        day,
                        owners=set(restricted) if restricted else None,
                        limit=RESULTS_SHOWN + 1,
                    )
                    shown = [u for u in units if may_read_owner(caller, u.owner_sor_id)]
                    found = Search(
                        text, snapshot, shown[:RESULTS_SHOWN], more=len(shown) > RESULTS_SHOWN
                    )
            except NoSnapshot:
                raise _no_snapshot() from None
            except NotFound as exc:
                raise _not_found(exc, day) from None
    return render(
        request,
        "registry.html",
        caller,
        search=found,
        q=text,
        results_shown=RESULTS_SHOWN,
        min_fragment=MIN_FRAGMENT,
        **_page_context(caller, day),
    )


# -- history as a timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change in a timeline: ``kind`` is added, removed or changed; ``subject`` "unit",
    "gln", "types" (message types added or removed: ``codes``) or a message type code (its
    version changed); ``fields`` (name, before, after) of a change."""

    kind: str
    subject: str
    fields: tuple[tuple[str, object, object], ...] = ()
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelineEntry:
    snapshot_id: int
    snapshot: SnapshotInfo | None
    changes: list[Change]


def _changed_fields(before: object, after: object) -> tuple[tuple[str, object, object], ...]:
    old, new = record_fields(before), record_fields(after)
    return tuple((name, old[name], new[name]) for name in new if old[name] != new[name])


def _events(spans: list[VersionSpan], subject: str) -> Iterator[tuple[int, Change]]:
    """(snapshot id, change) of the versions of one record, oldest first."""
    previous: VersionSpan | None = None
    for span in spans:
        if previous is not None and previous.valid_to == span.valid_from:
            fields = _changed_fields(previous.record, span.record)
            yield span.valid_from, Change("changed", subject, fields)
        else:
            if previous is not None and previous.valid_to is not None:
                yield previous.valid_to, Change("removed", subject)
            yield span.valid_from, Change("added", subject)
        previous = span
    if previous is not None and previous.valid_to is not None:
        yield previous.valid_to, Change("removed", subject)


def timeline(
    events: Iterator[tuple[int, Change]], snapshots: dict[int, SnapshotInfo]
) -> list[TimelineEntry]:
    """The changes grouped by snapshot, newest first."""
    by_snapshot: dict[int, list[Change]] = defaultdict(list)
    for snapshot_id, change in events:
        by_snapshot[snapshot_id].append(change)
    return [
        TimelineEntry(sid, snapshots.get(sid), _grouped(by_snapshot[sid]))
        for sid in sorted(by_snapshot, reverse=True)
    ]


def _grouped(changes: list[Change]) -> list[Change]:
    """The message types added (and removed) in one snapshot as one change each."""
    kept = [c for c in changes if c.subject in ("unit", "gln") or c.kind == "changed"]
    for kind in ("added", "removed"):
        codes = tuple(
            c.subject for c in changes if c.subject not in ("unit", "gln") and c.kind == kind
        )
        if codes:
            kept.append(Change(kind, "types", codes=codes))
    return kept


def _capability_events(spans: list[VersionSpan]) -> Iterator[tuple[int, Change]]:
    by_type: dict[str, list[VersionSpan]] = defaultdict(list)
    for span in spans:
        assert isinstance(span.record, Capability)
        by_type[span.record.message_type].append(span)
    for message_type in sorted(by_type):
        yield from _events(by_type[message_type], message_type)


# -- message types --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageTypeRow:
    code: str
    version_code: str | None
    known: bool
    syntax: str | None = None
    business_message: str | None = None
    replaced_by: str | None = None  # obsolete: the FHIR type that replaces it
    successor_present: bool = False  # ... and the GLN takes that one too


def message_type_rows(caps: list[Capability], types: MessageTypeRegistry) -> list[MessageTypeRow]:
    present = {c.message_type for c in caps}
    rows = []
    for cap in caps:
        if cap.message_type not in types:
            rows.append(MessageTypeRow(cap.message_type, cap.version_code, known=False))
            continue
        known = types.get(cap.message_type)
        rows.append(
            MessageTypeRow(
                cap.message_type,
                cap.version_code,
                known=True,
                syntax=known.syntax,
                business_message=known.business_message,
                replaced_by=known.replaced_by,
                successor_present=known.replaced_by in present,
            )
        )
    return rows


# -- a unit and a GLN -----------------------------------------------------------------------------


@router.get(UNIT_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def unit_page(request: Request, caller: Caller, sor_id: str, at: AtParam = None) -> Response:
    require(caller, Scope.REGISTRY_READ)
    day = read_at(at)
    if not re.fullmatch(SOR_ID_PATTERN, sor_id):
        raise UiNotFound(_MISSING["unit"][0], key=sor_id[:40])
    app = context(request).app
    with app.uow() as uow:
        try:
            view = queries.show_unit(uow, sor_id, day)
        except NoSnapshot:
            raise _no_snapshot() from None
        except NotFound as exc:
            raise _not_found(exc, day) from None
        if not may_read_owner(caller, view.unit.owner_sor_id):
            raise UiForbidden(
                N_("The unit is outside the institution owners your token is restricted to.")
            )
        history = queries.unit_history(uow, sor_id)
    chain = {u.sor_id: u for u in [view.unit, *view.ancestors]}
    return render(
        request,
        "registry_unit.html",
        caller,
        view=view,
        tree=list(reversed(view.ancestors)),
        path=[chain[s] for s in view.effective.path if s in chain],
        message_types=message_type_rows(view.message_types, app.reference.message_types),
        vans_names=app.reference.vans_names,
        timeline=timeline(_events(history.versions, "unit"), history.snapshots),
        **_page_context(caller, day),
    )


@router.get(GLN_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def gln_page(request: Request, caller: Caller, gln: str, at: AtParam = None) -> Response:
    require(caller, Scope.REGISTRY_READ)
    day = read_at(at)
    if not re.fullmatch(GLN_PATTERN, gln):
        raise UiNotFound(_MISSING["GLN"][0], key=gln[:40])
    app = context(request).app
    with app.uow() as uow:
        try:
            view = queries.show_gln(uow, gln, day)
        except NoSnapshot:
            raise _no_snapshot() from None
        except NotFound as exc:
            raise _not_found(exc, day) from None
        if not may_read_owners(caller, queries.owners_of_gln(uow, view)):
            raise UiForbidden(
                N_("The GLN is outside the institution owners your token is restricted to.")
            )
        history = queries.gln_history(uow, gln)
    events = [*_events(history.versions, "gln"), *_capability_events(history.capabilities)]
    return render(
        request,
        "registry_gln.html",
        caller,
        view=view,
        message_types=message_type_rows(view.message_types, app.reference.message_types),
        vans_names=app.reference.vans_names,
        region_names=app.reference.audit_context.region_names,
        timeline=timeline(iter(events), history.snapshots),
        **_page_context(caller, day),
    )
