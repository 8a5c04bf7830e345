"""Audit (``/ui/audit``, scope ``audit:read``): the findings of the current snapshot, filtered
by owner, region, VANS, rule and severity, optionally compared with an earlier snapshot (new
and resolved), sorted by a column and shown a page at a time; and the same findings as CSV or
XLSX (``/ui/audit/findings.csv``, ``.xlsx``).

A download holds exactly the rows the page's filters and order select, every page of them (not
only the page on screen); the page says so beside the links. Its columns are those of the
``audit`` command's reports (``reports/audit.py``), with a ``change`` column first when
comparing.

The findings come from ``queries.scoped_audit`` with the process's per-snapshot cache
(``App.audit_cache``), as the API's ``GET /v1/audit`` reads them: a snapshot is loaded and
audited once, not per request. An owner-restricted token sees only its owners' findings (none
whose owner is unknown) and is refused any other owner, as in the API.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from soredi_sync.bootstrap import App
from soredi_sync.domain.audit import RULES, RULES_BY_CODE, Finding, OwnerKind, Severity
from soredi_sync.domain.traffic import WeightedFinding, weigh_findings
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.ports.records import SnapshotInfo, TokenRecord
from soredi_sync.reports.audit import FINDING_COLUMNS, FINDING_HEADINGS, finding_row
from soredi_sync.services import queries
from soredi_sync.services.tokens import Scope
from soredi_sync.ui.i18n import N_
from soredi_sync.ui.web import (
    Caller,
    QueryReader,
    UiNotFound,
    context,
    owner_scope,
    owners_for,
    render,
    require,
)

router = APIRouter()

# Routes are declared under the console's prefix (ui_router adds it); links use full paths.
PREFIX = "/ui"
PAGE_PATH = "/ui/audit"
CSV_PATH = "/ui/audit/findings.csv"
XLSX_PATH = "/ui/audit/findings.xlsx"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_SIZES = (50, 100)
MIN_PAGE_SIZE, MAX_PAGE_SIZE = PAGE_SIZES[0], PAGE_SIZES[-1]
CHANGES = ("all", "new", "resolved")
MAX_VALUE_LENGTH = 40  # a SOR-ID, region or VANS code is far shorter
SINCE_CHOICES = 30  # earlier snapshots offered to compare with
SUGGESTED_OWNER_KINDS = (OwnerKind.REGION, OwnerKind.MUNICIPALITY)
_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_CHANGE_RANK = {"new": 0, "existing": 1, "resolved": 2}


@dataclass(frozen=True)
class Row:
    """A finding as listed: ``change`` is new/existing/resolved when comparing, else None."""

    finding: Finding
    change: str | None = None


def _text(row: Row, attribute: str) -> str:
    value = getattr(row.finding, attribute)
    return str(value) if value is not None else ""


# Column -> sort key; ties keep the audit's own order (rule code, GLN, SOR-ID).
SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "code": lambda r: r.finding.code,
    "severity": lambda r: _SEVERITY_RANK[r.finding.severity],
    "gln": lambda r: _text(r, "gln"),
    "sor_id": lambda r: _text(r, "sor_id"),
    "owner": lambda r: r.finding.owner.name.casefold() if r.finding.owner else "",
    "region": lambda r: _text(r, "region_code"),
    "vans": lambda r: _text(r, "vans"),
    "change": lambda r: _CHANGE_RANK.get(r.change or "", 3),
}


@dataclass(frozen=True)
class Filters:
    """What the page was asked for, read leniently: a value the form could not have sent is
    dropped (and named in ``errors``) rather than answered with a bare 422."""

    owner: str | None = None
    region: str | None = None
    vans: str | None = None
    rule: str | None = None
    severity: str | None = None
    since: int | None = None
    change: str = "all"
    sort: str = "code"
    order: str = "asc"
    page: int = 1
    size: int = MIN_PAGE_SIZE

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string of these filters (defaults left out), with ``changes``."""
        values = {**self.__dict__, **changes}
        defaults = Filters().__dict__
        return {k: str(v) for k, v in values.items() if v is not None and v != defaults[k]}

    def download_query(self) -> dict[str, str]:
        return self.query(page=1, size=MIN_PAGE_SIZE)


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None


def read_filters(params: Mapping[str, str | None]) -> tuple[Filters, list[str]]:
    """The filters of a query string, and the names of the values that were dropped."""
    query = QueryReader(params, MAX_VALUE_LENGTH)
    errors, text, choice = query.errors, query.text, query.choice

    since = _int(params.get("since"))
    if text("since") is not None and since is None:
        errors.append("since")
    size = _int(params.get("size")) or MIN_PAGE_SIZE
    return Filters(
        owner=text("owner"),
        region=text("region"),
        vans=text("vans"),
        rule=choice("rule", RULES_BY_CODE),
        severity=choice("severity", {s.value for s in Severity}),
        since=since,
        change=choice("change", CHANGES, "all"),
        sort=choice("sort", SORT_KEYS, "code"),
        order=choice("order", ("asc", "desc"), "asc"),
        page=max(_int(params.get("page")) or 1, 1),
        size=min(max(size, MIN_PAGE_SIZE), MAX_PAGE_SIZE),
    ), errors


@dataclass(frozen=True)
class Selection:
    """The findings a request selects, in the order asked for."""

    snapshot: SnapshotInfo
    since: SnapshotInfo | None
    rows: list[Row]  # every row selected, all pages
    counts: dict[str, int]  # findings / new / resolved, after the rule and severity filters
    owner_names: dict[str, str]  # SOR-ID -> name of the owners offered, by name


def select(request: Request, caller: TokenRecord, filters: Filters) -> Selection:
    """Run the audit read for ``caller`` (owner rule as the API's) and filter, compare, sort.

    :raises UiForbidden: a restricted token asks for an owner outside its own
    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no snapshot ``filters.since``
    """
    owners = owners_for(caller, filters.owner)
    allowed = owner_scope(caller)
    app = context(request).app
    with app.uow() as uow:
        found = queries.scoped_audit(
            uow,
            app.reference.audit_context,
            owners=owners,
            region=filters.region,
            vans=filters.vans,
            since=filters.since,
            cache=app.audit_cache,
        )
        # The owners to offer: those with findings now, within the caller's (a cache hit).
        every = app.audit_cache.findings(uow, app.reference.audit_context, found.snapshot)
    named = {f.owner.sor_id: f.owner for f in every if f.owner is not None}
    if allowed:
        names = {sor_id: named[sor_id].name if sor_id in named else sor_id for sor_id in allowed}
    else:  # suggested, not a limit: any SOR-ID may be typed (there are thousands of owners)
        names = {k: o.name for k, o in named.items() if o.kind in SUGGESTED_OWNER_KINDS}
    owner_names = dict(sorted(names.items(), key=lambda item: (item[1].casefold(), item[0])))

    def wanted(finding: Finding) -> bool:
        return (filters.rule is None or finding.code == filters.rule) and (
            filters.severity is None or finding.severity.value == filters.severity
        )

    findings = [f for f in found.findings if wanted(f)]
    counts = {"findings": len(findings)}
    if found.new is None or found.resolved is None:
        rows = [Row(f) for f in findings]
    else:
        new = [f for f in found.new if wanted(f)]
        resolved = [f for f in found.resolved if wanted(f)]
        counts |= {"new": len(new), "resolved": len(resolved)}
        new_keys = {f.key for f in new}
        rows = [Row(f, "new" if f.key in new_keys else "existing") for f in findings]
        rows += [Row(f, "resolved") for f in resolved]
        if filters.change != "all":
            rows = [r for r in rows if r.change == filters.change]
    sort = filters.sort if filters.sort != "change" or found.since else "code"
    reference = app.reference
    shown_as = {
        # The region and VANS columns show names (the code below): sorted as shown.
        "region": (reference.audit_context.region_names, "region_code"),
        "vans": (reference.vans_names, "vans"),
    }
    key: Callable[[Row], Any] = SORT_KEYS[sort]
    if sort in shown_as:
        labels, attribute = shown_as[sort]

        def key(row: Row) -> str:
            code = _text(row, attribute)
            return (labels.get(code) or code).casefold()

    rows.sort(key=key, reverse=filters.order == "desc")
    return Selection(found.snapshot, found.since, rows, counts, owner_names)


def _pages(filters: Filters, total: int) -> tuple[Filters, list[int | None]]:
    """The filters with the page clamped, and the page numbers to link (None: a gap)."""
    last = max(math.ceil(total / filters.size), 1)
    page = min(filters.page, last)
    shown = sorted({1, last, *range(max(page - 2, 1), min(page + 2, last) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return replace(filters, page=page), numbers


@router.get(PAGE_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def audit_page(request: Request, caller: Caller) -> Response:
    require(caller, Scope.AUDIT_READ)
    filters, errors = read_filters(request.query_params)
    app = context(request).app
    reference = app.reference
    page: dict[str, Any] = {
        "filters": filters,
        "errors": errors,
        "problem": None,
        "selection": None,
        "rows": [],
        "first": 1,
        "pages": [],
        "last_page": 1,
        "earlier": [],
        "owners": sorted(owner_scope(caller)),
        "owner_names": {},
        "rules": RULES,
        "rule_titles": {rule.code: rule.title for rule in RULES},
        "severities": [s.value for s in Severity],
        "regions": dict(reference.audit_context.region_names),
        "vans_names": dict(reference.vans_names),
        "page_sizes": PAGE_SIZES,
        "changes": CHANGES,
        "sort_keys": tuple(SORT_KEYS),
        "page_path": PAGE_PATH,
        "csv_path": CSV_PATH,
        "xlsx_path": XLSX_PATH,
    }
    status = 200
    try:
        selection = select(request, caller, filters)
    except NoSnapshot:
        page["problem"], status = "no-snapshot", 503
    except NotFound:
        page["problem"], status = "since-not-found", 404
    else:
        filters, numbers = _pages(filters, len(selection.rows))
        start = (filters.page - 1) * filters.size
        with app.uow() as uow:
            earlier = uow.registry.list_snapshots(SINCE_CHOICES)
        page |= {
            "by_traffic": _top_by_traffic(app, caller, filters, selection),
            "traffic_days": TRAFFIC_DAYS,
            "filters": filters,
            "selection": selection,
            "owner_names": selection.owner_names,
            "rows": selection.rows[start : start + filters.size],
            "first": start + 1,
            "pages": numbers,
            "last_page": max(math.ceil(len(selection.rows) / filters.size), 1),
            "earlier": [s for s in earlier if s.id != selection.snapshot.id],
        }
    return render(request, "audit.html", caller, status_code=status, **page)


TRAFFIC_DAYS = 30  # the window of the owner view's "top by traffic"
TRAFFIC_TOP = 10


def _top_by_traffic(
    app: App, caller: TokenRecord, filters: Filters, selection: Selection
) -> list[WeightedFinding]:
    """The owner view's findings that cost the most messages in the last days (the traffic
    their GLNs received converted or rejected); only for one owner's or a restricted caller's
    findings, whose GLNs are few enough to look up on every visit."""
    if not (filters.owner or owner_scope(caller)):
        return []
    findings = [row.finding for row in selection.rows if row.change != "resolved"]
    glns = {f.gln for f in findings if f.gln}
    if not glns:
        return []
    today = app.routing().today()
    with app.uow() as uow:
        received = uow.traffic.receiver_totals(
            today - timedelta(days=TRAFFIC_DAYS - 1), today, glns
        )
    weighed = weigh_findings(findings, received)
    return [w for w in weighed if w.cost][:TRAFFIC_TOP]


def _download(request: Request, caller: TokenRecord) -> tuple[Selection, Filters]:
    """:raises UiError: as a page: no scope, another owner, no snapshot (to compare with)"""
    require(caller, Scope.AUDIT_READ)
    filters, _ = read_filters(request.query_params)
    try:
        return select(request, caller, filters), filters
    except NoSnapshot:
        raise UiNotFound(
            N_("Nothing has been synced yet: there is no snapshot to audit.")
        ) from None
    except NotFound:
        message = N_("There is no snapshot %(id)s to compare with.")
        raise UiNotFound(message, id=filters.since) from None


def _flat_rows(request: Request, selection: Selection) -> tuple[list[str], list[dict[str, str]]]:
    names = dict(context(request).app.reference.vans_names)
    comparing = selection.since is not None
    columns = ["change", *FINDING_COLUMNS] if comparing else list(FINDING_COLUMNS)
    flat = []
    for row in selection.rows:
        values = finding_row(row.finding, names)
        if comparing:
            values = {"change": row.change or "", **values}
        flat.append(values)
    return columns, flat


def _filename(selection: Selection, extension: str) -> dict[str, str]:
    name = f"audit-{selection.snapshot.id}-{selection.snapshot.effective_date.isoformat()}"
    return {"Content-Disposition": f'attachment; filename="{name}.{extension}"'}


@router.get(CSV_PATH.removeprefix(PREFIX))
def audit_csv(request: Request, caller: Caller) -> Response:
    selection, _ = _download(request, caller)
    columns, flat = _flat_rows(request, selection)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    headers = _filename(selection, "csv")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(XLSX_PATH.removeprefix(PREFIX))
def audit_xlsx(request: Request, caller: Caller) -> Response:
    selection, filters = _download(request, caller)
    columns, flat = _flat_rows(request, selection)
    body = _workbook(selection, filters, columns, flat)
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers=_filename(selection, "xlsx"))


def _workbook(
    selection: Selection, filters: Filters, columns: list[str], flat: list[dict[str, str]]
) -> bytes:
    """A "Findings" sheet with the rows as listed, and a "Selection" sheet saying which."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Findings"
    headings = dict(zip(FINDING_COLUMNS, FINDING_HEADINGS, strict=True)) | {"change": "Change"}
    sheet.append([headings[c] for c in columns])
    for cell in sheet[1]:
        cell.font = bold
    for values in flat:
        sheet.append([values[c] for c in columns])
    sheet.freeze_panes = "A2"
    if flat:
        sheet.auto_filter.ref = sheet.dimensions
    about = workbook.create_sheet("Selection")
    about.append(["Snapshot", selection.snapshot.id])
    about.append(["Effective date", selection.snapshot.effective_date.isoformat()])
    if selection.since is not None:
        about.append(["Compared with snapshot", selection.since.id])
    for name, value in filters.download_query().items():
        about.append([name, value])
    about.append(["Rows", len(flat)])
    for part in (sheet, about):
        for row in part.iter_rows():
            for cell in row:
                # Text from the registry or the address is text: "=..." is never a formula.
                if cell.data_type == "f":
                    cell.data_type = "s"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
