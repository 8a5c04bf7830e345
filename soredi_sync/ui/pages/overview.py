"""Overview (``/ui/``): the current snapshot and the data's age, the recent sync runs and why
they ended as they did, each source's health (as ``/readyz`` reads it), the findings by
severity and the FDIS91 adoption trend.

What shows follows the token: ``registry:read`` the state of the data, ``audit:read`` the
findings and adoption. An unrestricted token gets the whole registry's figures, read from the
audit summaries stored after each sync; an owner-restricted one gets its owners' figures only,
as the API's ``/v1/audit`` and ``/v1/adoption`` count them for that token: the sums of the
owners' rows of those summaries. A snapshot summarised before per-owner rows were stored is
counted instead: its findings from ``App.audit_cache``, its adoption once per process
(:class:`OwnerAdoptionCache`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from soredi_sync.bootstrap import App
from soredi_sync.domain.audit import AdoptionCounts, Finding, Severity
from soredi_sync.ports.records import SnapshotInfo, SyncRunInfo, TokenRecord
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.reports.svg import line_chart_svg
from soredi_sync.services import queries
from soredi_sync.services.audit import (
    adoption_series,
    stored_owner_adoption,
    stored_owner_severities,
)
from soredi_sync.services.health import DataHealth, data_health, monitored_sources
from soredi_sync.services.once import OnceCache
from soredi_sync.services.tokens import Scope
from soredi_sync.ui.i18n import formatters
from soredi_sync.ui.web import Caller, context, language, owner_scope, render, translate

router = APIRouter()

PREFIX = "/ui"  # ui_router's: the route below is relative to it
PATH = "/ui/"
AUDIT_PATH = "/ui/audit"
RUNS_SHOWN = 10
# The adoption trend shows the latest snapshots' stored summaries; a snapshot without per-owner
# figures is loaded and counted (once per process) for an owner-restricted token, so fewer.
TREND_SNAPSHOTS = 30
OWNER_TREND_SNAPSHOTS = 10
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True)
class DataState:
    """``registry:read``: the snapshot answers are given on, how old the data is, the runs."""

    snapshot: SnapshotInfo | None
    health: DataHealth
    runs: list[SyncRunInfo]

    @property
    def degraded(self) -> list[str]:
        return [s.source for s in self.health.sources if s.degraded]


@dataclass(frozen=True)
class TrendPoint:
    snapshot_id: int
    effective_date: date
    counts: AdoptionCounts

    @property
    def share(self) -> float | None:
        """The FDIS91 share (0-1) among active correspondence GLNs; None without any."""
        total = self.counts.total
        return self.counts.accepts_fdis91 / total if total else None


@dataclass(frozen=True)
class AuditFigures:
    """``audit:read``: findings by severity on the current snapshot, the adoption trend."""

    snapshot: SnapshotInfo
    severities: dict[str, int]
    trend: list[TrendPoint]

    @property
    def total(self) -> int:
        return sum(self.severities.values())


def _by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity.value for f in findings)
    return {s: counts[s] for s in SEVERITIES}


def data_state(uow: UnitOfWork, app: App) -> DataState:
    daemon = app.settings.daemon
    status = queries.status(uow, runs=RUNS_SHOWN)
    health = data_health(
        uow,
        monitored_sources(daemon),
        degraded_after=daemon.degraded_after_failures,
        max_age_hours=daemon.max_data_age_hours,
    )
    return DataState(status.current, health, status.runs)


class OwnerAdoptionCache:
    """FDIS91 adoption of a set of owners on each snapshot, counted once per process: a stored
    snapshot never changes, and counting loads it whole (about 2 s on the national profile).
    Keyed, as ``App.audit_cache``, by snapshot id and the time the snapshot was taken."""

    def __init__(self, size: int = 256) -> None:
        self._counts: OnceCache[tuple[int, datetime, frozenset[str]], AdoptionCounts]
        self._counts = OnceCache(size)

    def counts(
        self, uow: UnitOfWork, app: App, snapshot: SnapshotInfo, owners: frozenset[str]
    ) -> AdoptionCounts:
        """Counted as ``GET /v1/adoption`` counts them for a token of ``owners``."""

        def count() -> AdoptionCounts:
            context_ = app.reference.audit_context
            by_group = queries.adoption_on(uow, context_, snapshot, set(owners))
            return by_group.get("all", AdoptionCounts())

        return self._counts.get((snapshot.id, snapshot.taken_at, owners), count)


def owner_adoption_cache(request: Request) -> OwnerAdoptionCache:
    """The console's cache of one API app (on its ``state``)."""
    state = request.app.state
    cache: OwnerAdoptionCache | None = getattr(state, "ui_owner_adoption", None)
    if cache is None:
        cache = state.ui_owner_adoption = OwnerAdoptionCache()
    return cache


def audit_figures(
    uow: UnitOfWork, app: App, owners: set[str] | None, cache: OwnerAdoptionCache
) -> AuditFigures | None:
    """The figures of ``owners`` (None: the whole registry); None before the first sync."""
    current = uow.registry.current_snapshot()
    if current is None:
        return None
    context_ = app.reference.audit_context
    if owners is None:
        stored = uow.audits.findings(current.id)
        if stored is not None:
            by_severity = stored.get("by_severity", {})
            severities = {s: int(by_severity.get(s, 0)) for s in SEVERITIES}
        else:  # not summarised (yet): the process's findings of the snapshot
            severities = _by_severity(app.audit_cache.findings(uow, context_, current))
        series = adoption_series(uow, context_)[-TREND_SNAPSHOTS:]
        trend = [
            TrendPoint(s.id, s.effective_date, counts.get("all", AdoptionCounts()))
            for s, counts in series
        ]
    else:
        stored_severities = stored_owner_severities(uow, current.id, owners)
        if stored_severities is not None:
            severities = stored_severities
        else:  # a snapshot summarised before per-owner figures were stored
            found = queries.scoped_audit(uow, context_, owners=owners, cache=app.audit_cache)
            severities = _by_severity(found.findings)
        latest = sorted(uow.registry.list_snapshots(TREND_SNAPSHOTS), key=lambda s: s.id)
        by_owner = stored_owner_adoption(uow, [s.id for s in latest], owners)
        # Snapshots without per-owner figures are counted, at most OWNER_TREND_SNAPSHOTS of
        # them (the latest), once per process each.
        counted = {s.id for s in latest if s.id not in by_owner}
        counted = set(sorted(counted)[-OWNER_TREND_SNAPSHOTS:])
        trend = [
            TrendPoint(
                s.id,
                s.effective_date,
                by_owner[s.id].get("all", AdoptionCounts())
                if s.id in by_owner
                else cache.counts(uow, app, s, frozenset(owners)),
            )
            for s in latest
            if s.id in by_owner or s.id in counted
        ]
    return AuditFigures(current, severities, trend)


def trend_chart(request: Request, trend: list[TrendPoint]) -> Markup:
    """The adoption trend as inline SVG, in the request's language."""
    formats = formatters(language(request))
    fmt_date, fmt_percent = formats["fmt_date"], formats["fmt_percent"]
    line = translate(request, "FDIS91 share")

    def point(_line: str, index: int, share: float) -> str:
        return translate(
            request,
            "Snapshot %(snapshot)s (%(date)s): %(share)s",
            snapshot=trend[index].snapshot_id,
            date=fmt_date(trend[index].effective_date),
            share=fmt_percent(share / 100),
        )

    svg = line_chart_svg(
        [(str(p.snapshot_id), fmt_date(p.effective_date, "short")) for p in trend],
        {line: [None if p.share is None else 100 * p.share for p in trend]},
        title=translate(request, "CareCommunication (FDIS91) adoption"),
        y_label=translate(request, "% of correspondence GLNs accepting FDIS91"),
        point_title=point,
    )
    return Markup(svg)  # noqa: S704 - line_chart_svg escapes every text it draws


def _owners(caller: TokenRecord) -> set[str] | None:
    # The API's rule (api/routers/audit.py owner_scope): a restricted token, its owners.
    restricted = owner_scope(caller)
    return set(restricted) if restricted else None


@router.get(PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def overview(request: Request, caller: Caller) -> HTMLResponse:
    """Every signed-in caller; the parts its scopes allow (none: a note saying so)."""
    app = context(request).app
    shows_data = Scope.REGISTRY_READ.value in caller.scopes
    shows_audit = Scope.AUDIT_READ.value in caller.scopes
    owners = _owners(caller)
    data = figures = None
    with app.uow() as uow:
        if shows_data:
            data = data_state(uow, app)
        if shows_audit:
            figures = audit_figures(uow, app, owners, owner_adoption_cache(request))
    chart = trend_chart(request, figures.trend) if figures and figures.trend else None
    return render(
        request,
        "overview.html",
        caller,
        shows_data=shows_data,
        shows_audit=shows_audit,
        owners=sorted(owners or ()),
        data=data,
        figures=figures,
        chart=chart,
        audit_path=AUDIT_PATH,
    )
