"""Change plans over HTTP (scope ``plan:write``), limited to the token's owners.

An owner-restricted token (a region's) may plan only for its own institution owners and see or
verify only plans whose owners are all among its own; anything else is 403. Plans over every
owner of a kind (``owner_kind``, MedCom's "all municipal ones") need an unrestricted token.

The endpoints load a whole snapshot and are plain ``def``: they run in the thread pool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, model_validator

from soredi_sync.api.common import SOR_ID_PATTERN, OutModel, RowId, attributes
from soredi_sync.api.deps import PlanWriter, actor, context
from soredi_sync.api.problems import ApiProblem, Forbidden, problem_responses
from soredi_sync.errors import SourceError
from soredi_sync.ports.records import Plan, TokenRecord
from soredi_sync.services.plans import (
    PlanRequestError,
    PlanSubmissionFailed,
    create_plan,
    get_plan,
    plan_counts,
    submit_plan,
    verify_plan,
    worklist_csv,
)
from soredi_sync.services.tokens import may_act_for, may_read_owner

router = APIRouter(prefix="/v1", tags=["plans"])


class PlanIn(BaseModel):
    owner: str | None = Field(default=None, pattern=SOR_ID_PATTERN)
    owner_kind: Literal["region", "municipality", "private", "other"] | None = None
    switch_to: Literal["carecommunication"] | None = None
    from_findings: str | None = Field(default=None, max_length=40)


class PlanItemOut(OutModel):
    id: int
    gln: str
    owner_sor_id: str
    action: str
    message_type: str
    version_code: str | None
    reason: str
    state: str
    updated_at: datetime
    verified_snapshot_id: int | None


class PlanOut(OutModel):
    id: int
    created_at: datetime
    created_by: str
    goal: str
    owners: list[str]
    owner_kind: str | None
    snapshot_id: int
    counts: dict[str, int]
    items: list[PlanItemOut]

    @model_validator(mode="before")
    @classmethod
    def _counted(cls, data: Any) -> Any:
        if isinstance(data, Plan):
            return attributes(data, cls, counts=plan_counts(data))
        return data


class VerifyOut(OutModel):
    plan_id: int
    snapshot_id: int
    changed: int
    counts: dict[str, int]


class SubmitIn(BaseModel):
    channel: Literal["worklist", "sorus"]


def _check_owners(caller: TokenRecord, plan: Plan) -> None:
    if not may_act_for(caller, plan.owners):
        raise Forbidden("the plan covers owners outside those this token is restricted to")


@router.post(
    "/plans",
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 422, 503),
    summary="Create a change plan on the current snapshot",
    operation_id="createPlan",
)
def post_plan(request: Request, caller: PlanWriter, body: PlanIn) -> PlanOut:
    """Build a plan for one institution owner (`owner`, a SOR-ID) or every owner of a kind
    (`owner_kind`, unrestricted tokens only), to `switch_to` CareCommunication or to resolve
    the findings `from_findings` (FDIS91_WITH_LEGACY, FHIR_WITHOUT_FCTL). Needs `plan:write`;
    an owner-restricted token may plan only for its own owners."""
    if caller.owners and body.owner_kind is not None:
        raise Forbidden("a token restricted to owners cannot plan for every owner of a kind")
    if body.owner is not None and not may_read_owner(caller, body.owner):
        raise Forbidden("the owner is outside the owners this token is restricted to")
    app = context(request).app
    with app.uow() as uow:
        try:
            plan = create_plan(
                uow,
                app.reference.audit_context,
                actor=actor(caller),
                owners=[body.owner] if body.owner else [],
                owner_kind=body.owner_kind,
                switch_to=body.switch_to,
                findings=body.from_findings,
            )
        except PlanRequestError as exc:
            raise ApiProblem(422, "invalid-plan", str(exc)) from None
    return PlanOut.model_validate(plan)


@router.get(
    "/plans/{plan_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="A change plan and the state of its items",
    operation_id="getPlan",
)
def get_plan_route(request: Request, caller: PlanWriter, plan_id: RowId) -> PlanOut:
    """Needs `plan:write`; an owner-restricted token sees only plans of its own owners."""
    with context(request).app.uow() as uow:
        plan = get_plan(uow, plan_id)
    _check_owners(caller, plan)
    return PlanOut.model_validate(plan)


@router.post(
    "/plans/{plan_id}/verify",
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Judge the plan's submitted items against the current snapshot",
    operation_id="verifyPlan",
)
def verify_plan_route(request: Request, caller: PlanWriter, plan_id: RowId) -> VerifyOut:
    """Each submitted item becomes confirmed, pending or diverged. Needs `plan:write`; an
    owner-restricted token may verify only plans of its own owners."""
    with context(request).app.uow() as uow:
        _check_owners(caller, get_plan(uow, plan_id))
        result = verify_plan(uow, plan_id, actor=actor(caller))
    return VerifyOut.model_validate(result)


@router.post(
    "/plans/{plan_id}/submit",
    responses=problem_responses(400, 401, 403, 404, 422, 502),
    summary="Hand the plan's items to SOR (SORUS, or the worklist for the SOR-EDI application)",
    operation_id="submitPlan",
)
def submit_plan_route(
    request: Request, caller: PlanWriter, plan_id: RowId, body: SubmitIn
) -> PlanOut:
    """`sorus`: planned items are sent to the SOR update service; accepted ones become
    `submitted`, refused ones `rejected`. `worklist`: planned (and rejected) items become
    `submitted`; fetch the file from `/v1/plans/{plan_id}/worklist`. A SORUS failure is 502
    and leaves the unsent items planned. Needs `plan:write`; an owner-restricted token may
    submit only plans of its own owners."""
    app = context(request).app
    with app.uow() as uow:
        _check_owners(caller, get_plan(uow, plan_id))
        try:
            plan = submit_plan(
                uow,
                plan_id,
                body.channel,
                actor=actor(caller),
                sorus=app.sorus() if body.channel == "sorus" else None,
                batch_size=app.settings.soap.sorus_batch_size,
            )
        except (PlanSubmissionFailed, SourceError) as exc:
            raise ApiProblem(502, "sorus-failed", str(exc)) from None
    return PlanOut.model_validate(plan)


@router.get(
    "/plans/{plan_id}/worklist",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The worklist as CSV"},
        **problem_responses(401, 403, 404, 422),
    },
    summary="The plan's worklist for the SOR-EDI application (CSV)",
    operation_id="getPlanWorklist",
)
def get_worklist_route(request: Request, caller: PlanWriter, plan_id: RowId) -> Response:
    """One row per item: GLN, owner, action, message type, version, reason. Needs
    `plan:write`; an owner-restricted token sees only plans of its own owners."""
    with context(request).app.uow() as uow:
        plan = get_plan(uow, plan_id)
    _check_owners(caller, plan)
    return Response(
        worklist_csv(plan),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}-worklist.csv"'},
    )
