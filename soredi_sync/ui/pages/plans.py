"""Change plans (``/ui/plans``, scope ``plan:write``): the plans the caller may see, newest
first; a plan created from a switch (to CareCommunication) or from findings, for one
institution owner or (unrestricted tokens only) every owner of a kind; a plan's items with
their states, its worklist (CSV, XLSX), submitting it (SORUS or the worklist), verifying it
against the current snapshot, and the history of the plan and of each item.

The owner rules are the API's (``api/routers/plans.py``): an owner-restricted token plans only
for its own owners, never for every owner of a kind, and sees, downloads, submits and verifies
only plans whose owners are all its own (``may_act_for``); anything else is a 403 page. The
work is done by the use cases of ``services/plans.py``, recorded as the API records it
(``token:<name>``).

Every POST checks the form's CSRF token, then answers with a redirect to the plan's page
(POST/redirect/GET) that says what was done (``?done=``), or with the page again and the
reason it was not (a form that cannot be used, SORUS failing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from soredi_sync.api.common import SOR_ID_PATTERN, RowId
from soredi_sync.api.deps import actor
from soredi_sync.domain.audit import RULES_BY_CODE, AuditView, Owner, OwnerKind
from soredi_sync.domain.model import Registry
from soredi_sync.domain.plans import (
    FINDING_CODES,
    SWITCH_TARGETS,
    VERIFIABLE,
    ItemState,
    institution_owners,
)
from soredi_sync.errors import NoSnapshot, NotFound, SourceError
from soredi_sync.ports.records import Plan, PlanEvent, TokenRecord
from soredi_sync.services.plans import (
    PlanRequestError,
    PlanSubmissionFailed,
    create_plan,
    get_plan,
    list_plans,
    plan_counts,
    plan_events,
    submit_plan,
    verify_plan,
    worklist_csv,
    worklist_xlsx,
)
from soredi_sync.services.tokens import Scope, may_act_for
from soredi_sync.ui.i18n import N_
from soredi_sync.ui.web import (
    Caller,
    UiError,
    UiForbidden,
    UiNotFound,
    check_csrf,
    check_owner,
    context,
    owner_scope,
    render,
    require,
    url,
)

router = APIRouter()

PREFIX = "/ui"  # ui_router's: the routes below are relative to it
LIST_PATH = "/ui/plans"
PLAN_PATH = "/ui/plans/{plan_id}"
ITEM_PATH = "/ui/plans/{plan_id}/items/{item_id}"
CSV_PATH = "/ui/plans/{plan_id}/worklist.csv"
XLSX_PATH = "/ui/plans/{plan_id}/worklist.xlsx"
SUBMIT_PATH = "/ui/plans/{plan_id}/submit"
VERIFY_PATH = "/ui/plans/{plan_id}/verify"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PLANS_SHOWN = 50  # plans per page of the list
ITEMS_SHOWN = 100  # items per page of a plan
MAX_PAGE = 100_000

# The goals a plan can be created for, as the plan stores them (``create_plan``'s ``goal``).
SWITCH_GOAL = "switch-to:"
FINDINGS_GOAL = "findings:"
GOALS = tuple(SWITCH_GOAL + t for t in SWITCH_TARGETS) + tuple(
    FINDINGS_GOAL + c for c in FINDING_CODES
)
SCOPES = ("owner", "kind")
OWNER_KINDS = tuple(k.value for k in OwnerKind)
SUGGESTED_OWNER_KINDS = (OwnerKind.REGION, OwnerKind.MUNICIPALITY)
CHANNELS = ("sorus", "worklist")
DONE = ("created", "submitted", "verified")

PageParam = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Word = Annotated[str | None, Query(max_length=20)]  # one of a few values, else ignored


def plan_url(plan_id: int, **query: Any) -> str:
    return url(PLAN_PATH.format(plan_id=plan_id), **query)


def item_url(plan_id: int, item_id: int) -> str:
    return ITEM_PATH.format(plan_id=plan_id, item_id=item_id)


def _paths(plan_id: int) -> dict[str, str]:
    return {
        name: path.format(plan_id=plan_id)
        for name, path in (
            ("csv_path", CSV_PATH),
            ("xlsx_path", XLSX_PATH),
            ("submit_path", SUBMIT_PATH),
            ("verify_path", VERIFY_PATH),
        )
    }


# -- who the owners are ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Owners:
    """Institution owners of the current snapshot, by SOR-ID (empty before the first sync)."""

    by_id: Mapping[str, Owner]

    def name(self, sor_id: str) -> str | None:
        owner = self.by_id.get(sor_id)
        return owner.name if owner is not None else None

    def sorted(self, sor_ids: Iterable[str]) -> list[tuple[str, str | None]]:
        """(SOR-ID, name) of ``sor_ids``, by name (unknown ones last, by SOR-ID)."""
        pairs = [(sor_id, self.name(sor_id)) for sor_id in set(sor_ids)]
        return sorted(pairs, key=lambda p: (p[1] is None, (p[1] or "").casefold(), p[0]))


def _owners(request: Request) -> Owners | None:
    """The institution owners of the current snapshot, from the routing index the process
    already holds (no snapshot is loaded for a page); None when nothing has been synced."""
    app = context(request).app
    try:
        index = app.routing().resolver().index
    except NoSnapshot:
        return None
    registry: Registry = index.registry
    view = AuditView(registry, app.reference.audit_context, index.snapshot.taken_at.date())
    return Owners(institution_owners(view))


def _check_plan(caller: TokenRecord, plan: Plan) -> None:
    """:raises UiForbidden: the plan covers an owner outside the caller's (as the API's 403)"""
    if not may_act_for(caller, plan.owners):
        raise UiForbidden(
            N_("This plan covers institution owners outside those your token is restricted to.")
        )


def _plan_for(request: Request, caller: TokenRecord, plan_id: int) -> Plan:
    """The plan, if the caller may see it.

    :raises NotFound: no such plan (a 404 page)
    :raises UiForbidden: another owner's plan
    """
    require(caller, Scope.PLAN_WRITE)
    with context(request).app.uow() as uow:
        plan = get_plan(uow, plan_id)
    _check_plan(caller, plan)
    return plan


async def _read_form(request: Request) -> FormData:
    await check_csrf(request)
    return await request.form()  # the form check_csrf read (Starlette keeps it)


def _posted(request: Request) -> FormData:
    """The POSTed form, once its CSRF token has been checked (from a plain ``def`` handler).

    :raises UiForbidden: the CSRF token is missing or wrong (a 403 page)
    """
    return anyio.from_thread.run(_read_form, request)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# -- the list and the form to create a plan -------------------------------------------------------


@dataclass
class NewPlan:
    """The create form as sent, and what stopped it (``problem``: a kind the template words;
    ``detail``: the use case's own sentence, shown as it is)."""

    goal: str = GOALS[0]
    scope: str = "owner"
    owner: str = ""
    owner_kind: str = OwnerKind.MUNICIPALITY.value
    field_errors: tuple[str, ...] = ()
    problem: str | None = None
    detail: str | None = None
    status: int = 200


def _list_page(request: Request, caller: TokenRecord, page: int, form: NewPlan) -> Response:
    restricted = owner_scope(caller)
    offset = (page - 1) * PLANS_SHOWN
    with context(request).app.uow() as uow:
        found = list_plans(uow, within=restricted or None, limit=PLANS_SHOWN + 1, offset=offset)
    owners = _owners(request)
    if owners is None:
        choices: list[tuple[str, str | None]] = []
    elif restricted:
        choices = owners.sorted(restricted)
    else:  # suggested, not a limit: any institution owner's SOR-ID may be typed
        choices = owners.sorted(
            o.sor_id for o in owners.by_id.values() if o.kind in SUGGESTED_OWNER_KINDS
        )
    return render(
        request,
        "plans.html",
        caller,
        status_code=form.status,
        plans=found[:PLANS_SHOWN],
        page=page,
        more=len(found) > PLANS_SHOWN,
        owners=owners,
        owner_choices=choices,
        restricted=bool(restricted),
        form=form,
        goals=GOALS,
        owner_kinds=OWNER_KINDS,
        list_path=LIST_PATH,
        plan_url=plan_url,
        **_names(),
    )


@router.get(LIST_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def plans_page(request: Request, caller: Caller, page: PageParam = 1) -> Response:
    require(caller, Scope.PLAN_WRITE)
    return _list_page(request, caller, page, NewPlan())


def _read_new_plan(form: FormData, restricted: bool) -> NewPlan:
    """The create form, checked as the API's body model checks it (``PlanIn``)."""
    sent = NewPlan(
        goal=_text(form, "goal"),
        scope="owner" if restricted else _text(form, "scope"),
        owner=_text(form, "owner")[:40],
        owner_kind=_text(form, "owner_kind"),
        status=422,
    )
    errors = []
    if sent.goal not in GOALS:
        errors.append("goal")
    if sent.scope not in SCOPES:
        errors.append("scope")
    elif sent.scope == "owner" and not re.fullmatch(SOR_ID_PATTERN, sent.owner):
        errors.append("owner")
    elif sent.scope == "kind" and sent.owner_kind not in OWNER_KINDS:
        errors.append("owner_kind")
    if errors:
        sent.field_errors = tuple(errors)
        sent.problem = "invalid-form"
    else:
        sent.status = 200
    return sent


@router.post(LIST_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def create(request: Request, caller: Caller) -> Response:
    require(caller, Scope.PLAN_WRITE)
    restricted = bool(owner_scope(caller))
    form = _posted(request)
    if restricted and _text(form, "scope") == "kind":
        raise UiForbidden(
            N_("A token restricted to institution owners cannot plan for every owner of a kind.")
        )
    sent = _read_new_plan(form, restricted)
    if sent.problem is not None:
        return _list_page(request, caller, 1, sent)
    if sent.scope == "owner":
        check_owner(caller, sent.owner)
    kind, _, target = sent.goal.partition(":")
    app = context(request).app
    with app.uow() as uow:
        try:
            plan = create_plan(
                uow,
                app.reference.audit_context,
                actor=actor(caller),
                owners=[sent.owner] if sent.scope == "owner" else [],
                owner_kind=sent.owner_kind if sent.scope == "kind" else None,
                switch_to=target if kind + ":" == SWITCH_GOAL else None,
                findings=target if kind + ":" == FINDINGS_GOAL else None,
            )
        except PlanRequestError as exc:
            sent.problem, sent.detail, sent.status = "invalid-plan", str(exc), 422
            return _list_page(request, caller, 1, sent)
        except NotFound:
            sent.problem, sent.status, sent.field_errors = "unknown-owner", 404, ("owner",)
            return _list_page(request, caller, 1, sent)
    return RedirectResponse(plan_url(plan.id, done="created"), status_code=303)


# -- one plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the plan page says above the plan: ``done`` (after a redirect) or ``problem``."""

    done: str | None = None
    channel: str | None = None
    problem: str | None = None
    detail: str | None = None
    status: int = 200


def _plan_page(
    request: Request,
    caller: TokenRecord,
    plan: Plan,
    outcome: Outcome,
    state: str | None = None,
    page: int = 1,
) -> Response:
    with context(request).app.uow() as uow:
        events = plan_events(uow, plan.id)
    counts = plan_counts(plan)
    state = state if state in counts else None
    items = [i for i in plan.items if state is None or i.state.value == state]
    last = max((len(items) + ITEMS_SHOWN - 1) // ITEMS_SHOWN, 1)
    page = min(page, last)
    start = (page - 1) * ITEMS_SHOWN
    plan_level = [e for e in events if e.item_id is None]
    verified = next((e for e in reversed(plan_level) if e.action == "verified"), None)
    return render(
        request,
        "plans_plan.html",
        caller,
        status_code=outcome.status,
        plan=plan,
        counts=counts,
        owners=_owners(request) or Owners({}),
        outcome=outcome,
        last_verified=verified,
        history=list(reversed(plan_level)),
        items=items[start : start + ITEMS_SHOWN],
        first=start + 1,
        total=len(items),
        state=state,
        page=page,
        last_page=last,
        to_submit={
            "sorus": counts[ItemState.PLANNED.value],
            "worklist": counts[ItemState.PLANNED.value] + counts[ItemState.REJECTED.value],
        },
        to_verify=sum(counts[s.value] for s in VERIFIABLE),
        # A column that would say the same on every row is said once, above the table.
        reasons=sorted({i.reason for i in plan.items}),
        several_owners=len({i.owner_sor_id for i in plan.items}) > 1,
        channels=CHANNELS,
        plan_path=PLAN_PATH.format(plan_id=plan.id),
        list_path=LIST_PATH,
        item_url=item_url,
        plan_url=plan_url,
        **_paths(plan.id),
        **_names(),
    )


@router.get(PLAN_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def plan_page(
    request: Request,
    caller: Caller,
    plan_id: RowId,
    state: Word = None,
    page: PageParam = 1,
    done: Word = None,
    channel: Word = None,
) -> Response:
    plan = _plan_for(request, caller, plan_id)
    outcome = Outcome(
        done=done if done in DONE else None,
        channel=channel if channel in CHANNELS else None,
    )
    return _plan_page(request, caller, plan, outcome, state, page)


@router.get(CSV_PATH.removeprefix(PREFIX))
def worklist_as_csv(request: Request, caller: Caller, plan_id: RowId) -> Response:
    plan = _plan_for(request, caller, plan_id)
    return Response(
        worklist_csv(plan),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(plan, "csv"),
    )


@router.get(XLSX_PATH.removeprefix(PREFIX))
def worklist_as_xlsx(request: Request, caller: Caller, plan_id: RowId) -> Response:
    plan = _plan_for(request, caller, plan_id)
    return Response(
        worklist_xlsx(plan), media_type=XLSX_MEDIA_TYPE, headers=_attachment(plan, "xlsx")
    )


def _attachment(plan: Plan, extension: str) -> dict[str, str]:
    # The API's file name for the same worklist.
    name = f"plan-{plan.id}-worklist.{extension}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.post(SUBMIT_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def submit(request: Request, caller: Caller, plan_id: RowId) -> Response:
    """SORUS: planned items go to the SOR update service (accepted: submitted, refused:
    rejected); a SORUS failure is the page again with the reason, the unsent items still
    planned. Worklist: planned and rejected items become submitted."""
    require(caller, Scope.PLAN_WRITE)
    channel = _text(_posted(request), "channel")
    plan = _plan_for(request, caller, plan_id)
    if channel not in CHANNELS:
        raise UiError(N_("Choose how to submit the plan: through SORUS or as a worklist."))
    app = context(request).app
    with app.uow() as uow:
        try:
            submit_plan(
                uow,
                plan.id,
                channel,
                actor=actor(caller),
                sorus=app.sorus() if channel == "sorus" else None,
                batch_size=app.settings.soap.sorus_batch_size,
            )
        except (PlanSubmissionFailed, SourceError) as exc:
            failed = Outcome(problem="sorus-failed", detail=str(exc), status=502)
            plan = get_plan(uow, plan.id)
            return _plan_page(request, caller, plan, failed)
    return RedirectResponse(plan_url(plan.id, done="submitted", channel=channel), status_code=303)


@router.post(VERIFY_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def verify(request: Request, caller: Caller, plan_id: RowId) -> Response:
    """Judge the submitted items against the current snapshot: confirmed, pending, diverged."""
    require(caller, Scope.PLAN_WRITE)
    _posted(request)
    plan = _plan_for(request, caller, plan_id)
    with context(request).app.uow() as uow:
        verify_plan(uow, plan.id, actor=actor(caller))
    return RedirectResponse(plan_url(plan.id, done="verified"), status_code=303)


@router.get(ITEM_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
def item_page(request: Request, caller: Caller, plan_id: RowId, item_id: RowId) -> Response:
    plan = _plan_for(request, caller, plan_id)
    item = next((i for i in plan.items if i.id == item_id), None)
    if item is None:
        raise UiNotFound(N_("Plan %(plan)s has no item %(item)s."), plan=plan.id, item=item_id)
    with context(request).app.uow() as uow:
        events = [e for e in plan_events(uow, plan.id) if e.item_id == item.id]
    return render(
        request,
        "plans_item.html",
        caller,
        plan=plan,
        item=item,
        history=list(reversed(events)),
        owners=_owners(request) or Owners({}),
        plan_path=PLAN_PATH.format(plan_id=plan.id),
        list_path=LIST_PATH,
        **_names(),
    )


# -- words the templates share --------------------------------------------------------------------


def _names() -> dict[str, Any]:
    """English msgids the templates translate: states, actions, goals, owner kinds."""
    return {
        "state_names": {
            "planned": N_("Planned"),
            "submitted": N_("Submitted"),
            "confirmed": N_("Confirmed"),
            "pending": N_("Pending"),
            "diverged": N_("Diverged"),
            "rejected": N_("Rejected"),
        },
        "action_names": {"add": N_("Add"), "remove": N_("Remove")},
        "event_names": {
            "created": N_("Created"),
            "submitted": N_("Submitted"),
            "verified": N_("Verified"),
        },
        "kind_names": {
            "region": N_("Region"),
            "municipality": N_("Municipality"),
            "private": N_("Private"),
            "other": N_("Other"),
        },
        "every_kind": {
            "region": N_("Every region"),
            "municipality": N_("Every municipality"),
            "private": N_("Every private owner"),
            "other": N_("Every other owner"),
        },
        "goal_of": goal_of,
        "event_details": event_details,
        "detail_names": {
            "goal": N_("Goal"),
            "items": N_("Items"),
            "snapshot_id": N_("Snapshot"),
            "channel": N_("Channel"),
            "receipt": N_("SORUS receipt"),
            "received_at": N_("Received by SORUS"),
            "accepted": N_("Accepted"),
            "rejected": N_("Rejected"),
            "changed": N_("Items that changed state"),
            "effective_date": N_("In effect from"),
            "reason": N_("Reason"),
            "out": N_("File"),
        },
        "channel_names": {"sorus": N_("SORUS"), "worklist": N_("Worklist")},
        "rule_titles": {code: RULES_BY_CODE[code].title for code in FINDING_CODES},
    }


# An event's details: how each known one is shown (others as text, under their own name).
DETAIL_KINDS = {
    "goal": "goal",
    "items": "number",
    "snapshot_id": "snapshot",
    "channel": "channel",
    "receipt": "code",
    "received_at": "datetime",
    "accepted": "number",
    "rejected": "number",
    "changed": "number",
    "effective_date": "date",
    "reason": "text",
    "out": "code",
}


def event_details(event: PlanEvent) -> list[tuple[str, str, Any]]:
    """(name, kind, value) of each detail of ``event``, in a fixed order; dates and times
    parsed, so that they are shown in the page's language."""
    shown: list[tuple[str, str, Any]] = []
    order = {name: n for n, name in enumerate(DETAIL_KINDS)}
    for name, value in sorted(event.details.items(), key=lambda d: (order.get(d[0], 99), d[0])):
        kind = DETAIL_KINDS.get(name, "text")
        try:
            if kind == "datetime":
                value = datetime.fromisoformat(str(value))
            elif kind == "date":
                value = date.fromisoformat(str(value))
        except ValueError:
            kind = "text"
        shown.append((name, kind, value))
    return shown


def goal_of(goal: str) -> tuple[str, str]:
    """(``"switch"`` | ``"findings"`` | ``"other"``, the target or finding code) of a stored
    goal."""
    if goal.startswith(SWITCH_GOAL):
        return "switch", goal.removeprefix(SWITCH_GOAL)
    if goal.startswith(FINDINGS_GOAL):
        return "findings", goal.removeprefix(FINDINGS_GOAL)
    return "other", goal
