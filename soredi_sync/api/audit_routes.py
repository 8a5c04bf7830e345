"""Audit, adoption and cut-over reads (scope ``audit:read``), limited to the token's owners.

An owner-restricted token sees only findings and receivers whose institution owner (SOR-ID) is
one of its owners; findings with no known owner are hidden from it. An unrestricted token sees
everything and may narrow with ``?owner=``; a restricted one may narrow to one of its own owners
and gets 403 for any other. Adoption for a restricted token counts only its owners' GLNs.

Every endpoint loads at least one whole snapshot and is plain ``def``: it runs in the thread
pool and never holds up the event loop that serves routing decisions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from soredi_sync.api.problems import Forbidden, marks_authorization, problem_responses
from soredi_sync.api.routes import Credentials, context
from soredi_sync.api.schemas import MAX_ROW_ID, SOR_ID_PATTERN, SnapshotOut
from soredi_sync.api.security import authorize
from soredi_sync.db.api_repository import TokenRecord
from soredi_sync.domain.audit import (
    AdoptionCounts,
    AdoptionDimension,
    AuditContext,
    AuditView,
    Finding,
    Owner,
    adoption,
    audit,
    compare,
    in_scope,
)
from soredi_sync.domain.model import Registry
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.services.cutover import CutoverReport, LostReceiver, cutover
from soredi_sync.services.tokens import Scope

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


@marks_authorization
async def audit_reader(request: Request, credentials: Credentials) -> TokenRecord:
    return authorize(context(request).verifier, credentials, Scope.AUDIT_READ)


AuditReader = Annotated[TokenRecord, Depends(audit_reader)]
OwnerFilter = Annotated[
    str | None,
    Query(pattern=SOR_ID_PATTERN, description="only this institution owner (SOR-ID)"),
]

audit_router = APIRouter(prefix="/v1", tags=["audit"])


# -- shapes -----------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OwnerOut(_Out):
    sor_id: str
    name: str
    kind: str
    region_code: str | None

    @classmethod
    def of(cls, owner: Owner | None) -> OwnerOut | None:
        if owner is None:
            return None
        return cls(
            sor_id=owner.sor_id,
            name=owner.name,
            kind=owner.kind.value,
            region_code=owner.region_code,
        )


class FindingOut(_Out):
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

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(
            code=f.code,
            severity=f.severity.value,
            gln=f.gln,
            sor_id=f.sor_id,
            owner=OwnerOut.of(f.owner),
            vans=f.vans,
            system_supplier=f.system_supplier,
            system_type=f.system_type,
            region_code=f.region_code,
            text=f.text,
        )


class AuditOut(BaseModel):
    snapshot: SnapshotOut
    on: date
    total: int
    counts: dict[str, int]  # findings per code
    findings: list[FindingOut]
    since: SnapshotOut | None = None
    new: list[FindingOut] | None = None
    resolved: list[FindingOut] | None = None


class CountsOut(BaseModel):
    fhir_only: int
    legacy_only: int
    both: int
    accepts_fdis91: int
    total: int

    @classmethod
    def of(cls, counts: AdoptionCounts) -> CountsOut:
        return cls(
            fhir_only=counts.fhir_only,
            legacy_only=counts.legacy_only,
            both=counts.both,
            accepts_fdis91=counts.accepts_fdis91,
            total=counts.total,
        )


class AdoptionEntryOut(BaseModel):
    snapshot_id: int
    effective_date: date
    counts: dict[str, CountsOut]  # group ("all" without ?by=) -> counts


class AdoptionOut(BaseModel):
    by: str | None
    snapshots: list[AdoptionEntryOut]


class LostReceiverOut(BaseModel):
    gln: str
    owner: OwnerOut | None
    vans: str | None
    message_types: list[str]
    reached_today_by: list[str]

    @classmethod
    def of(cls, r: LostReceiver) -> LostReceiverOut:
        return cls(
            gln=r.gln,
            owner=OwnerOut.of(r.owner),
            vans=r.vans,
            message_types=list(r.message_types),
            reached_today_by=list(r.reached_today_by),
        )


class SenderCutoverOut(BaseModel):
    sender_syntax: str
    count: int
    lost: list[LostReceiverOut]


class CutoverOut(BaseModel):
    snapshot: SnapshotOut
    today: date
    date: date
    receivers: int
    counts: dict[str, int]
    senders: list[SenderCutoverOut]

    @classmethod
    def of(cls, snapshot: SnapshotOut, report: CutoverReport) -> CutoverOut:
        return cls(
            snapshot=snapshot,
            today=report.today,
            date=report.on,
            receivers=report.receivers,
            counts=report.counts,
            senders=[
                SenderCutoverOut(
                    sender_syntax=s.sender_syntax,
                    count=s.count,
                    lost=[LostReceiverOut.of(r) for r in s.lost],
                )
                for s in report.senders
            ],
        )


# -- owner rules --------------------------------------------------------------------------------


def owner_scope(caller: TokenRecord, owner: str | None) -> set[str] | None:
    """The owners a request may see: ``None`` for all.

    :raises Forbidden: a restricted token asks for an owner outside its own
    """
    if caller.owners:
        if owner is not None and owner not in caller.owners:
            raise Forbidden("the owner is outside the owners this token is restricted to")
        return {owner} if owner is not None else set(caller.owners)
    return {owner} if owner is not None else None


def registry_of_owners(
    registry: Registry, context: AuditContext, on: date, owners: Iterable[str]
) -> Registry:
    """``registry`` with only the GLNs of ``owners`` (by the audit's owner look-up)."""
    wanted = set(owners)
    view = AuditView(registry, context, on)
    kept = {}
    for gln, record in registry.glns.items():
        carrier = view.carrier_by_gln.get(gln)
        if carrier is None and record.owner_sor_id:
            carrier = registry.units.get(record.owner_sor_id)
        owner = view.owner_of_unit(carrier)
        if owner is not None and owner.sor_id in wanted:
            kept[gln] = record
    return replace(registry, glns=kept)


def _counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.code] = counts.get(f.code, 0) + 1
    return dict(sorted(counts.items()))


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


# -- endpoints --------------------------------------------------------------------------------


@audit_router.get(
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
    audit_context = ctx.app.settings.audit_context
    scope = owner_scope(caller, owner)
    with ctx.app.uow() as uow:
        current = uow.registry.current_snapshot()
        if current is None:
            raise NoSnapshot()
        before_info = None
        if since is not None:
            before_info = uow.registry.get_snapshot(since)
            if before_info is None:
                raise NotFound("snapshot", str(since))
        registry = uow.registry.load_registry(current.id)
        before_registry = uow.registry.load_registry(since) if since is not None else None

    def scoped(found: list[Finding]) -> list[Finding]:
        return in_scope(found, owners=scope, region_code=region, vans=vans)

    findings = scoped(audit(registry, audit_context, current.effective_date))
    if format == "csv":
        return Response(_csv(findings), media_type=CSV_MEDIA_TYPE)
    now = ctx.app.routing().now()
    body = AuditOut(
        snapshot=SnapshotOut.of(current, now),
        on=current.effective_date,
        total=len(findings),
        counts=_counts(findings),
        findings=[FindingOut.of(f) for f in findings],
    )
    if before_info is not None and before_registry is not None:
        before = scoped(audit(before_registry, audit_context, before_info.effective_date))
        changes = compare(before, findings)
        body.since = SnapshotOut.of(before_info, now)
        body.new = [FindingOut.of(f) for f in changes.new]
        body.resolved = [FindingOut.of(f) for f in changes.resolved]
    return Response(body.model_dump_json(), media_type="application/json")


@audit_router.get(
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
    audit_context = ctx.app.settings.audit_context
    scope = owner_scope(caller, owner)
    entries = []
    with ctx.app.uow() as uow:
        snapshots = sorted(uow.registry.list_snapshots(limit), key=lambda s: s.id)
        for info in snapshots:
            registry = uow.registry.load_registry(info.id)
            on = info.effective_date
            if scope is not None:
                registry = registry_of_owners(registry, audit_context, on, scope)
            counts = adoption(registry, audit_context, on, by)
            entries.append(
                AdoptionEntryOut(
                    snapshot_id=info.id,
                    effective_date=on,
                    counts={k: CountsOut.of(v) for k, v in counts.items()},
                )
            )
    return AdoptionOut(by=by.value if by else None, snapshots=entries)


@audit_router.get(
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
) -> CutoverOut:
    """For each sender syntax, the active correspondence receivers it reaches on the
    snapshot's date but that are rejected with `MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE` on
    `date`, decided by the routing policy in force. Needs `audit:read`; an owner-restricted
    token sees only its owners' receivers."""
    ctx = context(request)
    scope = owner_scope(caller, owner)
    service = ctx.app.routing()
    resolver = service.resolver()
    with ctx.app.uow() as uow:
        info = uow.registry.get_snapshot(resolver.index.snapshot.id)
    if info is None:
        raise NoSnapshot()
    report = cutover(
        resolver,
        date,
        owners=scope,
        audit_context=ctx.app.settings.audit_context,
        today=info.effective_date,
    )
    return CutoverOut.of(SnapshotOut.of(info, service.now()), report)
