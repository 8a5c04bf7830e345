"""Audit, adoption and cut-over reads (scope ``audit:read``), limited to the token's owners.

An owner-restricted token sees only findings and receivers whose institution owner (SOR-ID) is
one of its owners; findings with no known owner are hidden from it. An unrestricted token sees
everything and may narrow with ``?owner=``; a restricted one may narrow to one of its own owners
and gets 403 for any other. Adoption for a restricted token counts only its owners' GLNs.

Every endpoint loads at least one whole snapshot and is plain ``def``: it runs in the thread
pool and never holds up the event loop that serves routing decisions. The findings of a
snapshot are computed once per process (``App.audit_cache``), not per request.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from soredi_sync.api.common import MAX_ROW_ID, SOR_ID_PATTERN, OutModel, SnapshotOut
from soredi_sync.api.deps import AuditReader, context
from soredi_sync.api.problems import Forbidden, problem_responses
from soredi_sync.domain.audit import AdoptionDimension, Finding
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services import queries
from soredi_sync.services.cutover_traffic import price_cutover, priced_json
from soredi_sync.services.tokens import may_read_owner

CSV_MEDIA_TYPE = "text/csv"
CSV_COLUMNS = (
    "code",
    "severity",
    "gln",
    "sor_id",
    "owner_sor_id",
    "owner_name",
    "owner_kind",
    "vans",
    "system_supplier",
    "system_type",
    "region_code",
    "text",
)

OwnerFilter = Annotated[
    str | None,
    Query(pattern=SOR_ID_PATTERN, description="only this institution owner (SOR-ID)"),
]

router = APIRouter(prefix="/v1", tags=["audit"])


class OwnerOut(OutModel):
    sor_id: str
    name: str
    kind: str
    region_code: str | None


class FindingOut(OutModel):
    code: str
    severity: str
    gln: str | None
    sor_id: str | None
    owner: OwnerOut | None
    vans: str | None
    system_supplier: str | None
    system_type: str | None
    region_code: str | None
    text: str


class AuditOut(OutModel):
    snapshot: SnapshotOut
    on: date
    total: int
    counts: dict[str, int]  # findings per code
    findings: list[FindingOut]
    since: SnapshotOut | None = None
    new: list[FindingOut] | None = None
    resolved: list[FindingOut] | None = None


class CountsOut(OutModel):
    fhir_only: int
    legacy_only: int
    both: int
    accepts_fdis91: int
    total: int


class AdoptionEntryOut(OutModel):
    snapshot_id: int
    effective_date: date
    counts: dict[str, CountsOut]  # group ("all" without ?by=) -> counts


class AdoptionOut(BaseModel):
    by: str | None
    snapshots: list[AdoptionEntryOut]


class LostReceiverOut(OutModel):
    gln: str
    owner: OwnerOut | None
    vans: str | None
    message_types: list[str]
    reached_today_by: list[str]


class SenderCutoverOut(OutModel):
    sender_syntax: str
    count: int
    lost: list[LostReceiverOut]


class CutoverTrafficOut(BaseModel):
    """The messages logged in the window's days, decided again for the date."""

    first: date = Field(description="the first day of the window (logged on)")
    last: date = Field(description="its last day, today")
    date: date  # after the other dates: the field's name hides the type below it
    days: int
    snapshot_id: int
    logged: int = Field(description="decisions logged in the window (in the token's scope)")
    not_replayable: int = Field(description="of those, logged before their facts were kept")
    delivered: int = Field(description="replayed decisions that were deliveries")
    lost: int = Field(description="deliveries that are rejected on the date")
    lost_per_day: float
    by_receiver_owner: dict[str, int]
    by_sender_owner: dict[str, int]
    by_business_message: dict[str, int]
    by_vans: dict[str, int]
    by_reason: dict[str, int]


class CutoverOut(BaseModel):
    snapshot: SnapshotOut
    today: date
    date: date
    receivers: int
    counts: dict[str, int]
    senders: list[SenderCutoverOut]
    traffic: CutoverTrafficOut | None = Field(
        default=None, description="with `traffic_window`: the cut-over priced in messages"
    )


def owner_scope(caller: TokenRecord, owner: str | None) -> set[str] | None:
    """The owners a request may see: ``None`` for all.

    :raises Forbidden: a restricted token asks for an owner outside its own
    """
    if owner is not None:
        if not may_read_owner(caller, owner):
            raise Forbidden("the owner is outside the owners this token is restricted to")
        return {owner}
    return set(caller.owners) if caller.owners else None


def _csv(findings: Iterable[Finding]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in findings:
        owner = f.owner
        writer.writerow(
            (
                f.code,
                f.severity.value,
                f.gln or "",
                f.sor_id or "",
                owner.sor_id if owner else "",
                owner.name if owner else "",
                owner.kind.value if owner else "",
                f.vans or "",
                f.system_supplier or "",
                f.system_type or "",
                f.region_code or "",
                f.text,
            )
        )
    return out.getvalue()


@router.get(
    "/audit",
    response_model=AuditOut,
    responses={
        **problem_responses(401, 403, 404, 422, 503),
        200: {"content": {CSV_MEDIA_TYPE: {}}, "description": "findings as JSON or CSV"},
    },
    summary="Audit findings on the current snapshot",
    operation_id="getAudit",
)
def audit_findings(
    request: Request,
    caller: AuditReader,
    owner: OwnerFilter = None,
    region: Annotated[str | None, Query(max_length=10, description="region code")] = None,
    vans: Annotated[str | None, Query(max_length=20, description="VANS code")] = None,
    since: Annotated[
        int | None,
        Query(ge=1, le=MAX_ROW_ID, description="also new/resolved since this snapshot id"),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Findings (what is wrong or out of date in SOR-EDI) on the current snapshot, as JSON or
    CSV (`format=csv`). Needs `audit:read`; an owner-restricted token sees only findings of
    its owners. With `since`, JSON also lists the findings new and resolved since then."""
    ctx = context(request)
    scope = owner_scope(caller, owner)
    with ctx.app.uow() as uow:
        found = queries.scoped_audit(
            uow,
            ctx.app.reference.audit_context,
            owners=scope,
            region=region,
            vans=vans,
            since=since,
            compare_since=format == "json",
            cache=ctx.app.audit_cache,
        )
    if format == "csv":
        return Response(_csv(found.findings), media_type=CSV_MEDIA_TYPE)
    body = AuditOut.model_validate(found, context={"now": ctx.app.routing().now()})
    return Response(body.model_dump_json(), media_type="application/json")


@router.get(
    "/adoption",
    responses=problem_responses(401, 403, 422),
    summary="CareCommunication (FDIS91) adoption per snapshot",
    operation_id="getAdoption",
)
def adoption_series(
    request: Request,
    caller: AuditReader,
    by: Annotated[AdoptionDimension | None, Query()] = None,
    owner: OwnerFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="the latest snapshots")] = 100,
) -> AdoptionOut:
    """Active GLNs taking the correspondence message as FHIR only, legacy only or both, per
    snapshot (oldest first), in all or per region, owner type or VANS. Needs `audit:read`; an
    owner-restricted token gets only its owners' GLNs counted."""
    ctx = context(request)
    scope = owner_scope(caller, owner)
    with ctx.app.uow() as uow:
        entries = queries.adoption_by_snapshot(
            uow, ctx.app.reference.audit_context, owners=scope, by=by, limit=limit
        )
    return AdoptionOut(
        by=by.value if by else None,
        snapshots=[AdoptionEntryOut.model_validate(e) for e in entries],
    )


@router.get(
    "/cutover",
    responses=problem_responses(401, 403, 422, 503),
    summary="Receivers each sender syntax would lose if the conversions ended on a date",
    operation_id="getCutover",
)
def cutover_report(
    request: Request,
    caller: AuditReader,
    date: Annotated[date, Query(description="the day the conversion paths would be gone")],
    owner: OwnerFilter = None,
    traffic_window: Annotated[
        int | None,
        Query(ge=1, le=3660, description="also price it in the messages logged in these days"),
    ] = None,
) -> CutoverOut:
    """For each sender syntax, the active correspondence receivers it reaches on the
    snapshot's date but that are rejected with `MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE` on
    `date`, decided by the routing policy in force. With `traffic_window`, also the decisions
    logged in that many days (ending today) decided again for `date`: the messages that would
    be rejected, by receiver owner, sender owner, business message, VANS and reason. Needs
    `audit:read`; an owner-restricted token sees only its owners' receivers, and only the
    traffic its owners send or receive."""
    ctx = context(request)
    scope = owner_scope(caller, owner)
    service = ctx.app.routing()
    resolver = service.resolver()
    # The whole registry's report of the snapshot and date is decided once per process and
    # narrowed to the token's owners (``App.cutover_cache``): it takes seconds on a national
    # snapshot.
    with ctx.app.uow() as uow:
        info, report = ctx.app.cutover_cache.cutover_on(
            uow, resolver, date, owners=scope, context=ctx.app.reference.audit_context
        )
        traffic = None
        if traffic_window is not None:
            priced = price_cutover(
                uow,
                resolver,
                ctx.app.traffic_owners(),
                date,
                window_days=traffic_window,
                today=service.today(),
                restrict=frozenset(scope or ()),
            )
            traffic = CutoverTrafficOut.model_validate(priced_json(priced))
    return CutoverOut(
        snapshot=SnapshotOut.model_validate(info, context={"now": service.now()}),
        today=report.today,
        date=report.on,
        receivers=report.receivers,
        counts=report.counts,
        senders=[SenderCutoverOut.model_validate(s) for s in report.senders],
        traffic=traffic,
    )
