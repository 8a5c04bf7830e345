"""Registry reads (``registry:read``): a unit, a GLN, the change feed, the current snapshot.

An owner-restricted token sees only its owners' units and GLNs (``domain/ownership.py`` says
who owns a GLN), and no change feed. Each read runs several pooled queries and is plain
``def``: it runs in the thread pool and never holds up the event loop that serves decisions.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from soredi_sync.api.common import GLN_PATTERN, MAX_ROW_ID, SOR_ID_PATTERN, OutModel, SnapshotOut
from soredi_sync.api.deps import RegistryReader, context
from soredi_sync.api.problems import Forbidden, problem_responses
from soredi_sync.domain.model import GlnMode, UnitKind
from soredi_sync.errors import NoSnapshot
from soredi_sync.services import queries
from soredi_sync.services.tokens import may_read_owner, may_read_owners

AtDate = Annotated[date | None, Query(description="as it was on this date (default: now)")]

router = APIRouter(prefix="/v1", tags=["registry"])


class CurrentSnapshotOut(BaseModel):
    snapshot: SnapshotOut
    last_change_cursor: int = Field(description="the change feed's cursor at this snapshot")


class UnitOut(OutModel):
    sor_id: str
    name: str
    kind: UnitKind
    parent_sor_id: str | None
    owner_sor_id: str = Field(description="the institution owner at the root of the tree")
    type_code: str | None
    gln_mode: GlnMode
    gln: str | None
    from_date: date | None
    to_date: date | None
    shak: str | None
    provider_number: str | None
    pharmacy_number: str | None
    postal_code: str | None


class GlnOut(OutModel):
    gln: str
    active: bool
    only_internal: bool
    system_supplier: str | None
    system_type: str | None
    vans: str | None = Field(description="communication supplier (VANS) code")
    region_code: str | None
    edi_administrator: str | None
    owner_sor_id: str | None
    from_date: date | None
    to_date: date | None


class CapabilityOut(OutModel):
    message_type: str
    version_code: str | None


class EffectiveGlnOut(OutModel):
    gln: str | None
    path: list[str] = Field(description="SOR-IDs walked from the unit to the GLN's owner")
    inherited_from: str | None


class UnitViewOut(OutModel):
    snapshot: SnapshotOut
    unit: UnitOut
    effective: EffectiveGlnOut
    ancestors: list[UnitOut] = Field(description="parent first, up to the institution owner")
    children: list[UnitOut]
    gln: GlnOut | None = Field(description="the effective GLN's attributes")
    message_types: list[CapabilityOut]


class GlnViewOut(OutModel):
    snapshot: SnapshotOut
    gln: GlnOut
    message_types: list[CapabilityOut]
    owners: list[UnitOut] = Field(description="units carrying the GLN themselves")
    inheritors: list[UnitOut] = Field(description="units that inherit it")


class ChangeOut(OutModel):
    cursor: int
    snapshot_id: int
    entity: str
    key: str
    gln: str | None
    kind: str
    details: dict[str, Any]


class ChangesOut(BaseModel):
    changes: list[ChangeOut]
    next_cursor: int = Field(description="pass as ?cursor= to continue")


@router.get(
    "/units/{sor_id}",
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="A SOR unit, its place in the tree and its effective GLN",
    operation_id="getUnit",
)
def unit(
    request: Request,
    sor_id: Annotated[str, Path(pattern=SOR_ID_PATTERN)],
    caller: RegistryReader,
    at: AtDate = None,
) -> UnitViewOut:
    """Needs `registry:read`; an owner-restricted token sees only its owners' units."""
    ctx = context(request)
    with ctx.app.uow() as uow:
        view = queries.show_unit(uow, sor_id, at)
    if not may_read_owner(caller, view.unit.owner_sor_id):
        raise Forbidden("the unit is outside the owners this token is restricted to")
    return UnitViewOut.model_validate(view, context={"now": ctx.app.routing().now()})


@router.get(
    "/glns/{gln}",
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="A GLN: attributes, VANS, message types, the units using it",
    operation_id="getGln",
)
def gln(
    request: Request,
    gln: Annotated[str, Path(pattern=GLN_PATTERN)],
    caller: RegistryReader,
    at: AtDate = None,
) -> GlnViewOut:
    """Needs `registry:read`; an owner-restricted token sees only GLNs carried by a unit of
    one of its owners."""
    ctx = context(request)
    with ctx.app.uow() as uow:
        view = queries.show_gln(uow, gln, at)
        owners = queries.owners_of_gln(uow, view)
    if not may_read_owners(caller, owners):
        raise Forbidden("the GLN is outside the owners this token is restricted to")
    return GlnViewOut.model_validate(view, context={"now": ctx.app.routing().now()})


@router.get(
    "/changes",
    responses=problem_responses(401, 403, 422),
    summary="Change events after a cursor",
    operation_id="listChanges",
)
def changes(
    request: Request,
    caller: RegistryReader,
    cursor: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ChangesOut:
    """Events in cursor order, whole snapshots only; continue with `next_cursor`. Needs
    `registry:read` and a token without an owner restriction: the feed is for gateways that
    mirror the whole registry, and a feed filtered by owner would skip events silently."""
    if caller.owners:
        raise Forbidden("the change feed needs a token without an owner restriction")
    with context(request).app.uow() as uow:
        events = queries.changes_since(uow, cursor, limit)
    return ChangesOut(
        changes=[ChangeOut.model_validate(e) for e in events],
        next_cursor=events[-1].cursor if events else cursor,
    )


@router.get(
    "/snapshots/current",
    responses=problem_responses(401, 403, 503),
    summary="The snapshot answers are given on, and its age",
    operation_id="getCurrentSnapshot",
)
def current_snapshot(request: Request, caller: RegistryReader) -> CurrentSnapshotOut:
    """Needs `registry:read`."""
    ctx = context(request)
    with ctx.app.uow() as uow:
        result = queries.status(uow, runs=0)
    if result.current is None:
        raise NoSnapshot()
    return CurrentSnapshotOut(
        snapshot=SnapshotOut.model_validate(
            result.current, context={"now": ctx.app.routing().now()}
        ),
        last_change_cursor=result.last_change_cursor,
    )
