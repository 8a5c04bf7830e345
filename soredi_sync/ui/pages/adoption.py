"""Adoption (``/ui/adoption``, scope ``audit:read``): CareCommunication (FDIS91) adoption over the
latest snapshots, in all or per region, owner type or VANS: a line chart of the FDIS91 share of
the largest groups, the counts of every group on the latest snapshot and the share of every
group on each snapshot; and the same figures as CSV (``/ui/adoption/adoption.csv``).

The figures are the API's ``GET /v1/adoption`` (``queries.adoption_by_snapshot``), with its owner
rule: an owner-restricted token counts only its owners' GLNs and is refused any other owner; an
unrestricted one counts every GLN and may narrow to one owner.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from soredi_sync.bootstrap import App
from soredi_sync.domain.audit import AdoptionCounts, AdoptionDimension, OwnerKind
from soredi_sync.errors import NoSnapshot
from soredi_sync.ports.records import TokenRecord
from soredi_sync.reports.svg import LINE_COLOURS, line_chart_svg
from soredi_sync.services import queries
from soredi_sync.services.queries import AdoptionEntry
from soredi_sync.services.tokens import Scope
from soredi_sync.ui.i18n import N_, formatters
from soredi_sync.ui.web import (
    Caller,
    context,
    language,
    owner_scope,
    owners_for,
    render,
    require,
    translate,
)

router = APIRouter()

PREFIX = "/ui"  # ui_router's: the routes below are relative to it
PAGE_PATH = "/ui/adoption"
CSV_PATH = "/ui/adoption/adoption.csv"
SNAPSHOT_CHOICES = (10, 30, 100)
DEFAULT_SNAPSHOTS = 30
# One colour per line (reports/svg.py): more lines would repeat colours and be unreadable.
MAX_LINES = len(LINE_COLOURS)
MAX_AXIS_LABELS = 15  # snapshot labels under the chart; the others are left blank
MAX_OWNER_LENGTH = 40
SUGGESTED_OWNER_KINDS = (OwnerKind.REGION, OwnerKind.MUNICIPALITY)
DIMENSIONS = tuple(d.value for d in AdoptionDimension)
# The groups adoption() puts GLNs in that belong to no group of a dimension.
NO_GROUP: dict[tuple[AdoptionDimension | None, str], str] = {
    (AdoptionDimension.REGION, "(none)"): N_("No region"),
    (AdoptionDimension.VANS, "(none)"): N_("No VANS"),
    (AdoptionDimension.OWNER_TYPE, "(unknown)"): N_("Unknown owner"),
}
KIND_NAMES = {
    OwnerKind.REGION.value: N_("Region"),
    OwnerKind.MUNICIPALITY.value: N_("Municipality"),
    OwnerKind.PRIVATE.value: N_("Private"),
    OwnerKind.OTHER.value: N_("Other"),
}
CSV_COLUMNS = (
    "snapshot_id",
    "effective_date",
    "group",
    "fhir_only",
    "legacy_only",
    "both",
    "total",
    "accepts_fdis91",
    "fdis91_share",
)


@dataclass(frozen=True)
class Filters:
    """What the page was asked for, read leniently: a value the form could not have sent is
    dropped (and named in ``errors``) rather than answered with a bare 422."""

    by: str | None = None  # an AdoptionDimension value; None: every GLN together
    snapshots: int = DEFAULT_SNAPSHOTS
    owner: str | None = None

    @property
    def dimension(self) -> AdoptionDimension | None:
        return AdoptionDimension(self.by) if self.by else None

    def query(self) -> dict[str, str]:
        values = {"by": self.by, "snapshots": self.snapshots, "owner": self.owner}
        defaults = Filters().__dict__
        return {k: str(v) for k, v in values.items() if v is not None and v != defaults[k]}


def read_filters(params: Mapping[str, str | None]) -> tuple[Filters, list[str]]:
    """The filters of a query string, and the names of the values that were dropped."""
    errors: list[str] = []
    by = (params.get("by") or "").strip() or None
    if by is not None and by not in DIMENSIONS:
        errors.append("by")
        by = None
    raw = (params.get("snapshots") or "").strip()
    snapshots = DEFAULT_SNAPSHOTS
    if raw:
        if raw.isascii() and raw.isdigit() and int(raw) in SNAPSHOT_CHOICES:
            snapshots = int(raw)
        else:
            errors.append("snapshots")
    owner = (params.get("owner") or "").strip() or None
    if owner is not None and not (
        len(owner) <= MAX_OWNER_LENGTH and owner.isascii() and owner.isdigit()
    ):
        errors.append("owner")
        owner = None
    return Filters(by=by, snapshots=snapshots, owner=owner), errors


@dataclass(frozen=True)
class Group:
    """A group of GLNs as shown: its key in the figures, a readable name and its code."""

    key: str
    label: str
    code: str | None  # shown beside the label when it says something the label does not


def _share(counts: AdoptionCounts | None) -> float | None:
    """The FDIS91 share (0-1) of ``counts``; None without any correspondence GLN."""
    if counts is None or not counts.total:
        return None
    return counts.accepts_fdis91 / counts.total


@dataclass(frozen=True)
class Figures:
    """The adoption a request selects, with its groups largest first."""

    entries: list[AdoptionEntry]  # oldest first
    groups: list[Group]  # by GLNs on the latest snapshot, then by name

    @property
    def latest(self) -> AdoptionEntry | None:
        return self.entries[-1] if self.entries else None

    def counts(self, entry: AdoptionEntry, group: Group) -> AdoptionCounts | None:
        return entry.counts.get(group.key)

    def share(self, entry: AdoptionEntry, group: Group) -> float | None:
        return _share(entry.counts.get(group.key))

    def latest_total(self) -> AdoptionCounts:
        """The sum over the groups on the latest snapshot (every GLN counted once)."""
        latest = self.latest
        if latest is None:
            return AdoptionCounts()
        values = latest.counts.values()
        return AdoptionCounts(
            sum(c.fhir_only for c in values),
            sum(c.legacy_only for c in values),
            sum(c.both for c in values),
        )

    def total_share(self) -> float | None:
        return _share(self.latest_total())


def _groups(
    request: Request, app: App, by: AdoptionDimension | None, entries: list[AdoptionEntry]
) -> list[Group]:
    region_names = app.reference.audit_context.region_names
    region_codes = {name: code for code, name in region_names.items()}
    vans_names = app.reference.vans_names
    latest = entries[-1].counts if entries else {}

    def group(key: str) -> Group:
        if (by, key) in NO_GROUP:
            return Group(key, translate(request, NO_GROUP[by, key]), None)
        if by is None:
            return Group(key, translate(request, "All correspondence GLNs"), None)
        if by is AdoptionDimension.REGION:  # adoption() names a region, or gives its code
            if key in region_codes:
                return Group(key, key, region_codes[key])
            return Group(key, region_names.get(key, key), key)
        if by is AdoptionDimension.VANS:
            return Group(key, vans_names.get(key, key), key)
        if key in KIND_NAMES:
            return Group(key, translate(request, KIND_NAMES[key]), key)
        return Group(key, key, None)

    keys = {key for entry in entries for key in entry.counts}
    groups = [group(key) for key in keys]
    groups.sort(key=lambda g: (g.label.casefold(), g.key))
    groups.sort(key=lambda g: latest[g.key].total if g.key in latest else -1, reverse=True)
    return groups


def select(request: Request, caller: TokenRecord, filters: Filters) -> Figures:
    """The adoption of ``filters`` for ``caller`` (owner rule as the API's).

    :raises UiForbidden: a restricted token asks for an owner outside its own
    """
    owners = owners_for(caller, filters.owner)
    app = context(request).app
    with app.uow() as uow:
        entries = queries.adoption_by_snapshot(
            uow,
            app.reference.audit_context,
            owners=owners,
            by=filters.dimension,
            limit=filters.snapshots,
        )
    return Figures(entries, _groups(request, app, filters.dimension, entries))


def owner_names(request: Request, caller: TokenRecord) -> dict[str, str]:
    """SOR-ID -> name of the owners offered in the form: a restricted token's own; for an
    unrestricted one, the regions and municipalities (a suggestion: any SOR-ID may be typed),
    from the routing index of the current snapshot."""
    app = context(request).app
    try:
        registry = app.routing().resolver().index.registry
    except NoSnapshot:
        return {}
    allowed = owner_scope(caller)
    units = registry.units
    if allowed:
        names = {o: units[o].name if o in units else o for o in allowed}
    else:
        kinds = app.reference.audit_context.owner_kinds
        names = {
            u.sor_id: u.name
            for u in units.values()
            if u.sor_id == u.owner_sor_id
            and kinds.get(u.type_code or "", OwnerKind.OTHER) in SUGGESTED_OWNER_KINDS
        }
    return dict(sorted(names.items(), key=lambda item: (item[1].casefold(), item[0])))


def adoption_chart(request: Request, figures: Figures) -> Markup:
    """The FDIS91 share of the largest groups over the snapshots, as inline SVG."""
    formats = formatters(language(request))
    fmt_date, fmt_percent = formats["fmt_date"], formats["fmt_percent"]
    entries = figures.entries
    shown = figures.groups[:MAX_LINES]
    every = max(math.ceil(len(entries) / MAX_AXIS_LABELS), 1)
    columns = [
        (str(e.snapshot_id), fmt_date(e.effective_date, "short"))
        if i % every == 0 or i == len(entries) - 1
        else ("", "")
        for i, e in enumerate(entries)
    ]
    lines: dict[str, list[float | None]] = {}
    for group in shown:
        shares = [figures.share(e, group) for e in entries]
        lines[group.label] = [None if s is None else 100 * s for s in shares]

    def point(line: str, index: int, share: float) -> str:
        return translate(
            request,
            "%(group)s, snapshot %(snapshot)s (%(date)s): %(share)s",
            group=line,
            snapshot=entries[index].snapshot_id,
            date=fmt_date(entries[index].effective_date),
            share=fmt_percent(share / 100),
        )

    svg = line_chart_svg(
        columns,
        lines,
        title=translate(request, "CareCommunication (FDIS91) adoption"),
        y_label=translate(request, "% of correspondence GLNs accepting FDIS91"),
        point_title=point,
    )
    return Markup(svg)  # noqa: S704 - line_chart_svg escapes every text it draws


@router.get(PAGE_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def adoption_page(request: Request, caller: Caller) -> Response:
    require(caller, Scope.AUDIT_READ)
    filters, errors = read_filters(request.query_params)
    figures = select(request, caller, filters)
    chart = adoption_chart(request, figures) if figures.entries and figures.groups else None
    return render(
        request,
        "adoption.html",
        caller,
        filters=filters,
        errors=errors,
        figures=figures,
        chart=chart,
        charted=min(len(figures.groups), MAX_LINES),
        owner_names=owner_names(request, caller),
        restricted=sorted(owner_scope(caller)),
        dimensions=DIMENSIONS,
        snapshot_choices=SNAPSHOT_CHOICES,
        page_path=PAGE_PATH,
        csv_path=CSV_PATH,
    )


@router.get(CSV_PATH.removeprefix(PREFIX))
def adoption_csv(request: Request, caller: Caller) -> Response:
    """Every group on every snapshot of the page, oldest snapshot first, groups as on the page."""
    require(caller, Scope.AUDIT_READ)
    filters, _ = read_filters(request.query_params)
    figures = select(request, caller, filters)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in figures.entries:
        for group in figures.groups:
            counts = figures.counts(entry, group)
            if counts is None:
                continue
            share = _share(counts)
            writer.writerow(
                (
                    entry.snapshot_id,
                    entry.effective_date.isoformat(),
                    group.key,
                    counts.fhir_only,
                    counts.legacy_only,
                    counts.both,
                    counts.total,
                    counts.accepts_fdis91,
                    "" if share is None else f"{share:.4f}",
                )
            )
    name = f"adoption-{filters.by or 'all'}-{len(figures.entries)}-snapshots.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
