"""Try a routing decision (``/ui/route``, scope ``route:read``): a routing question filled in
as a form, or a message pasted or uploaded as the gateway holds it (FHIR XML/JSON, OIOXML,
EDIFACT); the answer shown readably: decision, reason, address, conversion steps,
attachments, warnings and the trace of rules that fired.

It is the API's decision, not a look-alike: the form is checked by the API's own body model
(``RouteIn``), a message is read by ``parse_message`` + ``route_request_for`` as
``POST /v1/route/message`` reads it (the syntax from the content, the size bounded by
``[api] max_bundle_bytes``), and ``RoutingService.decide`` applies the same owner rule: an
owner-restricted token is refused (403) a receiver outside its owners. Each decision is logged
to the decision log and counted in the metrics exactly as the API's are, so the console is no
side door around the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from soredi_sync.api.deps import ApiContext
from soredi_sync.api.routers.routing_schemas import RouteIn
from soredi_sync.domain.message_types import SYNTAXES
from soredi_sync.domain.routing import RouteRequest, RoutingInputError
from soredi_sync.errors import NoSnapshot
from soredi_sync.parsing.message import MessageFacts, parse_message, route_request_for
from soredi_sync.parsing.refusals import BundleBudget, InvalidBundle
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services.decision_log import decision_entry
from soredi_sync.services.routing import Decided
from soredi_sync.services.tokens import OutsideOwners, Scope
from soredi_sync.ui.web import Caller, check_csrf, context, render, require

router = APIRouter()

PATH = "/ui/route"  # served as "/route" under the console's prefix
ROUTE = PATH.removeprefix("/ui")
TEMPLATE = "routing.html"
CONTENTS = ("data", "separate", "link", "none")
ATTACHMENT_FIELDS = ("mime_type", "size", "title", "content")
MIN_ATTACHMENT_ROWS = 3
MAX_ATTACHMENT_ROWS = 200
# A form has its own fields and, per attachment row, four more.
MAX_FIELDS = 40 + 4 * MAX_ATTACHMENT_ROWS
# Beside the message: the form's other fields and the multipart framing.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_ECHOED_CHARACTERS = 512 * 1024
QUESTION_FIELDS = (
    "receiver_gln",
    "receiver_sor_id",
    "business_message",
    "sender_syntax",
    "message_id",
    "text_length",
    "subject",
    "category",
    "topic",
    "total_size",
    "at",
    "category_coded",
)


def body_limit(max_bundle_bytes: int) -> int:
    """The largest body ``POST /ui/route`` takes: a message of ``max_bundle_bytes`` in a form."""
    return max_bundle_bytes + FORM_OVERHEAD_BYTES


@dataclass
class Outcome:
    """What a POST shows: the form as sent, and a decision or what stopped one."""

    kind: str = "question"  # which form was sent: question | message
    values: dict[str, str] = field(default_factory=dict)
    attachments: list[dict[str, str]] = field(default_factory=list)
    field_errors: dict[str, str] = field(default_factory=dict)  # form field -> error kind
    problem: str | None = None  # a kind the template words
    detail: str | None = None  # the project's own sentence, shown as it is
    status: int = 200
    decided: Decided | None = None
    question: RouteRequest | None = None
    facts: MessageFacts | None = None


def _choices(ctx: ApiContext) -> dict[str, Any]:
    message_types = ctx.app.reference.message_types
    present = {mt.syntax for mt in message_types}
    return {
        "business_messages": message_types.business_messages(),
        "syntaxes": [s for s in SYNTAXES if s in present],
        "contents": CONTENTS,
        "path": PATH,
    }


def _page(request: Request, caller: TokenRecord, outcome: Outcome) -> Response:
    ctx = context(request)
    filled = outcome.attachments if outcome.kind == "question" else []
    rows = max(MIN_ATTACHMENT_ROWS, len(filled) + 1)
    attachments = filled + [dict.fromkeys(ATTACHMENT_FIELDS, "")] * (rows - len(filled))
    return render(
        request,
        TEMPLATE,
        caller,
        status_code=outcome.status,
        **_choices(ctx),
        outcome=outcome,
        values={"business_message": "correspondence", "sender_syntax": "fhir"} | outcome.values,
        attachment_rows=attachments,
        max_bundle_bytes=ctx.settings.max_bundle_bytes,
    )


@router.get(ROUTE, response_class=HTMLResponse)
def route_form(request: Request, caller: Caller) -> Response:
    require(caller, Scope.ROUTE_READ)
    return _page(request, caller, Outcome())


@router.post(ROUTE, response_class=HTMLResponse)
async def route_submit(request: Request, caller: Caller) -> Response:
    require(caller, Scope.ROUTE_READ)
    ctx = context(request)
    limit = ctx.settings.max_bundle_bytes
    try:
        # Read here, after the session was checked, never before (no Form parameters).
        form = await request.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=limit)
    except HTTPException:
        return _page(request, caller, Outcome(problem="too-large", status=413))
    try:
        await check_csrf(request)
        if form.get("kind") == "message":
            outcome = await _message(ctx, form, limit)
        else:
            outcome = _question(form)
    finally:
        await form.close()  # an upload may be spooled to a temporary file
    if outcome.question is not None:
        outcome = await _decide(ctx, caller, outcome)
    return _page(request, caller, outcome)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _question(form: FormData) -> Outcome:
    """The routing question of the form, checked by the API's body model."""
    values = {name: _text(form, name) for name in QUESTION_FIELDS}
    columns = [form.getlist(f"attachment_{name}") for name in ATTACHMENT_FIELDS]
    attachments = []
    # A browser sends the four fields of every row; a row cut short is filled with blanks.
    for cells in zip_longest(*columns, fillvalue=""):
        texts = (c.strip() if isinstance(c, str) else "" for c in cells)
        row = dict(zip(ATTACHMENT_FIELDS, texts, strict=True))
        if row["mime_type"] or row["size"] or row["title"]:
            attachments.append(row)
    outcome = Outcome("question", values, attachments[:MAX_ATTACHMENT_ROWS], status=422)
    receiver = {
        key: value
        for key, value in (("gln", values["receiver_gln"]), ("sor_id", values["receiver_sor_id"]))
        if value
    }
    body: dict[str, Any] = {
        key: value
        for key, value in values.items()
        if value and not key.startswith("receiver_") and key != "category_coded"
    }
    if values["category_coded"] in ("true", "false"):
        body["category_coded"] = values["category_coded"] == "true"
    body["receiver"] = receiver
    body["attachments"] = [
        {
            "mime_type": a["mime_type"],
            "size": a["size"] or None,
            "title": a["title"] or None,
            "content": a["content"] or "data",
        }
        for a in outcome.attachments
    ]
    try:
        checked = RouteIn.model_validate(body)
    except ValidationError as exc:
        outcome.field_errors = _field_errors(exc)
        outcome.problem = "invalid-form"
        return outcome
    outcome.question = checked.to_request()
    outcome.status = 200
    return outcome


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """Form field -> the kind of error (``missing``, ``int_parsing`` ...), first one each."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc[0] == "receiver":
            name = f"receiver_{loc[1]}" if len(loc) > 1 else "receiver"
        elif loc[0] == "attachments" and len(loc) > 2:
            name = f"attachment_{loc[2]}_{int(loc[1]) + 1}"
        else:
            name = loc[0]
        errors.setdefault(name, error["type"])
    return errors


async def _message(ctx: ApiContext, form: FormData, limit: int) -> Outcome:
    """The routing question of a pasted or uploaded message, read as the API reads one."""
    sender_syntax = _text(form, "message_sender_syntax") or None
    pasted = form.get("message")
    pasted_text = pasted if isinstance(pasted, str) else ""
    upload = form.get("upload")
    # A pasted message is shown again in the form, unless it is too large to send back.
    echoed = pasted_text if len(pasted_text) <= MAX_ECHOED_CHARACTERS else ""
    outcome = Outcome("message", {"message": echoed, "message_sender_syntax": sender_syntax or ""})
    chosen = isinstance(upload, UploadFile) and bool(upload.filename)
    if chosen and pasted_text.strip():
        return _refused(outcome, "paste-or-upload", 400)
    if chosen:
        assert isinstance(upload, UploadFile)
        data = await upload.read(limit + 1)
    else:
        data = pasted_text.encode()
    if len(data) > limit:
        return _refused(outcome, "too-large", 413)
    if not data.strip():
        return _refused(outcome, "no-message", 400)
    reference = ctx.app.reference
    budget = BundleBudget(ctx.settings.max_bundle_elements, ctx.settings.max_bundle_depth)
    try:
        # The body decides the syntax, as for application/octet-stream in the API.
        facts = await run_in_threadpool(
            parse_message, data, None, message_types=reference.message_types, budget=budget
        )
        outcome.question = route_request_for(
            facts, sender_syntax, category_names=reference.category_names
        )
    except InvalidBundle as exc:
        outcome.detail = f"{exc.problem.value}: {exc}"
        return _refused(outcome, "invalid-message", 400 if exc.unreadable else 422)
    except RoutingInputError as exc:
        outcome.detail = str(exc)
        return _refused(outcome, "routing-input", 422)
    outcome.facts = facts
    return outcome


def _refused(outcome: Outcome, problem: str, status: int) -> Outcome:
    outcome.problem = problem
    outcome.status = status
    outcome.question = None
    return outcome


async def _decide(ctx: ApiContext, caller: TokenRecord, outcome: Outcome) -> Outcome:
    """The API's decision for ``outcome.question``, logged and counted as the API's are."""
    question = outcome.question
    assert question is not None
    try:
        # A first decision after a sync builds the index: off the event loop.
        decided = await run_in_threadpool(ctx.app.routing().decide, question, caller)
    except OutsideOwners:
        return _refused(outcome, "outside-owners", 403)
    except NoSnapshot:
        return _refused(outcome, "no-snapshot", 503)
    except RoutingInputError as exc:
        outcome.detail = str(exc)
        return _refused(outcome, "routing-input", 422)
    decision = decided.decision
    ctx.metrics.record_decision(decided.outcome, decision.reason, decided.resolve_seconds)
    ctx.decision_log.record(
        decision_entry(
            question,
            decision,
            caller=caller.name,
            token_id=caller.id,
            decided_at=decided.decided_at,
        )
    )
    outcome.decided = decided
    return outcome
