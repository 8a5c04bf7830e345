"""Cut-over (``/ui/cutover``, scope ``audit:read``): pick a date and see, for each sender syntax,
which correspondence receivers would be lost if the routing policy's conversion paths ended
then, grouped by institution owner (name, kind, region, how many), with each receiver's GLN,
VANS, message types and the conversion that reaches it today; and the same receivers as CSV
(``/ui/cutover/lost.csv``).

It is the API's ``GET /v1/cutover``: the report of ``services/cutover.py`` decided on the routing
service's current snapshot by the policy in force, read through the process's cache
(``App.cutover_cache``, one decision per snapshot and date). An owner-restricted token sees only
its owners' receivers and is refused any other owner, as in the API. The date defaults to the
day after the policy's conversions end (``config/routing.toml``), else a year from today.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from soredi_sync.bootstrap import App
from soredi_sync.domain.audit import CORRESPONDENCE, Owner, OwnerKind
from soredi_sync.domain.routing import ConversionStep, Resolver, RoutingPolicy
from soredi_sync.ports.records import SnapshotInfo, TokenRecord
from soredi_sync.services.cutover import CutoverReport, LostReceiver
from soredi_sync.services.cutover_traffic import PricedCutover, price_cutover
from soredi_sync.services.tokens import Scope
from soredi_sync.ui.web import (
    Caller,
    QueryReader,
    context,
    owner_scope,
    owners_for,
    render,
    require,
)

router = APIRouter()

PREFIX = "/ui"  # ui_router's: the routes below are relative to it
PAGE_PATH = "/ui/cutover"
CSV_PATH = "/ui/cutover/lost.csv"
OWNERS_PER_PAGE = 50
# The GLNs listed under each owner when several are shown (a region can lose hundreds); the
# owner alone, or the CSV, lists them all.
GLNS_PER_OWNER = 25
DEFAULT_HORIZON = timedelta(days=365)  # when the policy names no end of its conversions
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)  # a date outside is a typing error
MAX_VALUE_LENGTH = 40  # a SOR-ID or region code is far shorter
MAX_WINDOW = 366  # days of logged traffic (the decision log keeps 90 by default)
PRICED_ROWS = 10  # the largest groups of lost messages shown per table
SUGGESTED_OWNER_KINDS = (OwnerKind.REGION, OwnerKind.MUNICIPALITY)
CSV_COLUMNS = (
    "sender_syntax",
    "gln",
    "owner_sor_id",
    "owner_name",
    "owner_kind",
    "region_code",
    "vans",
    "vans_name",
    "message_types",
    "reached_today_by",
)


@dataclass(frozen=True)
class OwnerLoss:
    """The receivers of one owner (None: unknown) a sender syntax would lose."""

    owner: Owner | None
    receivers: tuple[LostReceiver, ...]
    regions: tuple[str, ...]  # the region codes of its receivers' GLNs

    @property
    def count(self) -> int:
        return len(self.receivers)

    @property
    def name(self) -> str:
        return self.owner.name if self.owner else ""


# Column -> sort key; ties by owner name, then SOR-ID.
SORT_KEYS: dict[str, Callable[[OwnerLoss], Any]] = {
    "count": lambda o: o.count,
    "owner": lambda o: o.name.casefold(),
    "kind": lambda o: o.owner.kind.value if o.owner else "~",
    "region": lambda o: o.regions[0] if o.regions else "~",
}
DEFAULT_ORDER = {"count": "desc"}  # the first click on a column; others ascend


@dataclass(frozen=True)
class Filters:
    """What the page was asked for, read leniently: a value the form could not have sent is
    dropped (and named in ``errors``) rather than answered with a bare 422."""

    date: date | None = None  # None: the default date
    owner: str | None = None
    kind: str | None = None
    region: str | None = None
    syntax: str | None = None  # the sender syntax detailed; None: the first that loses any
    sort: str = "count"
    order: str = "desc"
    page: int = 1
    window: int | None = None  # days of logged traffic to price the cut-over in; None: not

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string of these filters (defaults left out), with ``changes``."""
        values = {**self.__dict__, **changes}
        defaults = Filters().__dict__
        return {k: str(v) for k, v in values.items() if v is not None and v != defaults[k]}


def _date(value: str | None) -> date | None:
    try:
        day = date.fromisoformat((value or "").strip())
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None


def read_filters(params: Mapping[str, str | None]) -> tuple[Filters, list[str]]:
    """The filters of a query string, and the names of the values that were dropped."""
    query = QueryReader(params, MAX_VALUE_LENGTH)
    errors, text, choice = query.errors, query.text, query.choice

    day = _date(params.get("date"))
    if text("date") is not None and day is None:
        errors.append("date")
    page = (params.get("page") or "").strip()
    window = (params.get("window") or "").strip()
    days = int(window) if window.isascii() and window.isdigit() and len(window) < 5 else None
    if window and not (days and days <= MAX_WINDOW):
        errors.append("window")
        days = None
    sort = choice("sort", SORT_KEYS, "count")
    return Filters(
        date=day,
        owner=text("owner"),
        kind=choice("kind", {k.value for k in OwnerKind}),
        region=text("region"),
        syntax=text("syntax"),
        sort=sort,
        order=choice("order", ("asc", "desc"), DEFAULT_ORDER.get(sort, "asc")),
        page=int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 7 else 1,
        window=days,
    ), errors


def conversion_end(policy: RoutingPolicy, today: date) -> date | None:
    """The first day a conversion path of correspondence is gone, of those still open after
    ``today``: the day after the earliest ``valid_to`` (inclusive) that has not passed."""
    ends = [
        step.valid_to + timedelta(days=1)
        for step in policy.conversions
        if step.valid_to is not None and step.covers(CORRESPONDENCE) and step.valid_to >= today
    ]
    return min(ends, default=None)


def default_date(policy: RoutingPolicy, today: date) -> date:
    return conversion_end(policy, today) or today + DEFAULT_HORIZON


@dataclass(frozen=True)
class Selection:
    """The cut-over a request selects."""

    snapshot: SnapshotInfo
    report: CutoverReport  # the caller's owners (or the one asked for)
    shown: dict[str, list[OwnerLoss]]  # sender syntax -> owners, after kind and region, sorted
    owner_names: dict[str, str]  # SOR-ID -> name, of the owners offered in the form
    priced: PricedCutover | None = None  # the cut-over in the logged traffic, when asked


def _regions(resolver: Resolver, receivers: tuple[LostReceiver, ...]) -> tuple[str, ...]:
    glns = resolver.index.registry.glns
    counts = Counter(
        code for r in receivers if (g := glns.get(r.gln)) is not None and (code := g.region_code)
    )
    return tuple(code for code, _ in counts.most_common())


def _by_owner(
    resolver: Resolver, lost: tuple[LostReceiver, ...], filters: Filters
) -> list[OwnerLoss]:
    grouped: dict[str | None, list[LostReceiver]] = {}
    owners: dict[str | None, Owner | None] = {}
    for receiver in lost:
        key = receiver.owner.sor_id if receiver.owner else None
        grouped.setdefault(key, []).append(receiver)
        owners[key] = receiver.owner
    glns = resolver.index.registry.glns
    losses = []
    for key, receivers in grouped.items():
        owner = owners[key]
        if filters.kind is not None and (owner is None or owner.kind.value != filters.kind):
            continue
        if filters.region is not None:
            receivers = [
                r
                for r in receivers
                if (g := glns.get(r.gln)) is not None and g.region_code == filters.region
            ]
            if not receivers:
                continue
        kept = tuple(receivers)
        losses.append(OwnerLoss(owner, kept, _regions(resolver, kept)))
    losses.sort(key=lambda o: (o.name.casefold(), o.owner.sor_id if o.owner else ""))
    losses.sort(key=SORT_KEYS[filters.sort], reverse=filters.order == "desc")
    return losses


def select(app: App, caller: TokenRecord, filters: Filters, on: date) -> Selection:
    """The cut-over on ``on`` for ``caller`` (owner rule as the API's), grouped and sorted.

    :raises UiForbidden: a restricted token asks for an owner outside its own
    :raises NoSnapshot: nothing synced yet
    """
    owners = owners_for(caller, filters.owner)
    allowed = owner_scope(caller)
    resolver = app.routing().resolver()
    audit_context = app.reference.audit_context
    with app.uow() as uow:
        info, report = app.cutover_cache.cutover_on(
            uow, resolver, on, owners=owners, context=audit_context
        )
    shown = {s.sender_syntax: _by_owner(resolver, s.lost, filters) for s in report.senders}
    units = resolver.index.registry.units
    if allowed:
        names = {o: units[o].name if o in units else o for o in allowed}
    else:  # suggested, not a limit: any SOR-ID may be typed (there are thousands of owners)
        everyone = app.cutover_cache.report(
            resolver, on, audit_context=audit_context, today=info.effective_date
        )
        names = {
            r.owner.sor_id: r.owner.name
            for sender in everyone.senders
            for r in sender.lost
            if r.owner is not None and r.owner.kind in SUGGESTED_OWNER_KINDS
        }
    owner_names = dict(sorted(names.items(), key=lambda item: (item[1].casefold(), item[0])))
    priced = None
    if filters.window is not None:
        # The traffic the caller may see: its owners' (or the one asked for) as receiver or
        # sender; an unrestricted caller without an owner sees all of it.
        with app.uow() as uow:
            priced = price_cutover(
                uow,
                resolver,
                app.traffic_owners(),
                on,
                window_days=filters.window,
                today=app.routing().today(),
                restrict=frozenset(owners or ()),
            )
    return Selection(info, report, shown, owner_names, priced)


def warm_default_date(app: App, _snapshot: SnapshotInfo) -> None:
    """Decide the whole registry's cut-over on the page's default date (a job of the serving
    process's warmer, ``api/warmup.py``, for each new snapshot): about 2 s on the national
    profile that the page's first visitor then does not wait for."""
    service = app.routing()
    on = default_date(service.policy, service.today())
    with app.uow() as uow:
        app.cutover_cache.cutover_on(
            uow, service.resolver(), on, owners=None, context=app.reference.audit_context
        )


def _chosen_syntax(selection: Selection, filters: Filters) -> str | None:
    if filters.syntax in selection.shown:
        return filters.syntax
    losing = [s for s, owners in selection.shown.items() if owners]
    return losing[0] if losing else next(iter(selection.shown), None)


@dataclass(frozen=True)
class StepRow:
    """A conversion step of the policy, and whether it is open on the date asked for."""

    step: ConversionStep
    open_on_date: bool
    day_after: date | None  # the first day it is gone, if it ends


def _steps(policy: RoutingPolicy, on: date) -> list[StepRow]:
    return [
        StepRow(
            step,
            step.open_on(on),
            step.valid_to + timedelta(days=1) if step.valid_to is not None else None,
        )
        for step in policy.conversions
    ]


def _syntax_types(app: App) -> dict[str, str]:
    """Sender syntax -> its correspondence message types (``fhir`` -> ``FDIS91``)."""
    types: dict[str, list[str]] = {}
    for mt in app.reference.message_types.for_business_message(CORRESPONDENCE):
        types.setdefault(mt.syntax, []).append(mt.code)
    return {syntax: ", ".join(sorted(codes)) for syntax, codes in types.items()}


@router.get(PAGE_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def cutover_page(request: Request, caller: Caller) -> Response:
    require(caller, Scope.AUDIT_READ)
    filters, errors = read_filters(request.query_params)
    app = context(request).app
    service = app.routing()
    policy = service.policy
    today = service.today()
    on = filters.date or default_date(policy, today)
    selection = select(app, caller, filters, on)
    syntax = _chosen_syntax(selection, filters)
    owners = selection.shown.get(syntax, []) if syntax else []
    last_page = max(math.ceil(len(owners) / OWNERS_PER_PAGE), 1)
    filters = replace(filters, page=min(filters.page, last_page))
    start = (filters.page - 1) * OWNERS_PER_PAGE
    reference = app.reference
    return render(
        request,
        "cutover.html",
        caller,
        filters=filters,
        errors=errors,
        on=on,
        default_on=default_date(policy, today),
        policy_end=conversion_end(policy, today),
        selection=selection,
        syntax=syntax,
        owners_shown=owners[start : start + OWNERS_PER_PAGE],
        owner_total=len(owners),
        gln_cap=GLNS_PER_OWNER if len(owners) > 1 else None,
        lost_total=sum(o.count for o in owners),
        first=start + 1,
        last_page=last_page,
        restricted=sorted(owner_scope(caller)),
        steps=_steps(policy, on),
        syntax_types=_syntax_types(app),
        kinds=[k.value for k in OwnerKind],
        regions=dict(reference.audit_context.region_names),
        vans_names=dict(reference.vans_names),
        sort_keys=tuple(SORT_KEYS),
        default_order=DEFAULT_ORDER,
        page_path=PAGE_PATH,
        csv_path=CSV_PATH,
        priced_tables=_priced_tables(app, selection.priced),
        max_window=MAX_WINDOW,
    )


def _priced_tables(app: App, priced: PricedCutover | None) -> list[tuple[str, list[Any]]]:
    """(what the messages are grouped by, its largest groups as (name, key, messages))."""
    if priced is None:
        return []
    units = app.routing().resolver().index.registry.units
    vans = app.reference.vans_names

    def owner(sor_id: str) -> str:
        return units[sor_id].name if sor_id in units else ""

    groups = (
        ("receiver owner", priced.by_receiver_owner, owner),
        ("sender owner", priced.by_sender_owner, owner),
        ("business message", priced.by_business_message, lambda _key: ""),
        ("VANS", priced.by_vans, lambda key: vans.get(key, "")),
        ("reason", priced.by_reason, lambda _key: ""),
    )
    return [
        (title, [(name(key), key, n) for key, n in list(counts.items())[:PRICED_ROWS]])
        for title, counts, name in groups
    ]


@router.get(CSV_PATH.removeprefix(PREFIX))
def cutover_csv(request: Request, caller: Caller) -> Response:
    """The lost receivers of the sender syntax shown (every page), with the page's filters."""
    require(caller, Scope.AUDIT_READ)
    filters, _ = read_filters(request.query_params)
    app = context(request).app
    service = app.routing()
    on = filters.date or default_date(service.policy, service.today())
    selection = select(app, caller, filters, on)
    syntax = _chosen_syntax(selection, filters)
    names = app.reference.vans_names
    glns = service.resolver().index.registry.glns
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for loss in selection.shown.get(syntax, []) if syntax else []:
        owner = loss.owner
        for r in loss.receivers:
            gln = glns.get(r.gln)
            writer.writerow(
                (
                    syntax,
                    r.gln,
                    owner.sor_id if owner else "",
                    owner.name if owner else "",
                    owner.kind.value if owner else "",
                    (gln.region_code if gln else None) or "",
                    r.vans or "",
                    names.get(r.vans or "", ""),
                    " ".join(r.message_types),
                    " ".join(r.reached_today_by),
                )
            )
    name = f"cutover-{on.isoformat()}-{syntax or 'none'}-snapshot-{selection.snapshot.id}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
