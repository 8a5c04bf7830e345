"""Routing decisions (``route:read``): a routing question, or a message as the gateway holds it.

The endpoints are ``async def``. A decision is about 100 us of CPU (resolver, owner check,
serialising the answer) plus the routing service's current-snapshot check on its per-thread
connection; a hop to the thread pool, which a plain ``def`` endpoint costs, is dearer than that
check blocks the loop. Measured with one uvicorn worker (h11) on the tiny sandbox, wrk with 8
connections on the same 2-core machine: SQLite 2,000-2,200 decisions/s ``async`` against 1,480
``def``; PostgreSQL 1,560-1,600 against 1,180-1,230. ``async`` also keeps the snapshot check on
one thread, hence one connection, where ``def`` would pin one per pool thread.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from soredi_sync.api.deps import ApiContext, RouteReader, context
from soredi_sync.api.problems import ApiProblem, problem_body, problem_responses
from soredi_sync.api.routers.at_once import at_once, quick_caller, quick_dicts
from soredi_sync.api.routers.route_json import decision_dict, decision_json, dumps
from soredi_sync.api.routers.routing_schemas import (
    BATCH_DICTS,
    ROUTE_DICTS,
    MessageReadOut,
    RouteBatchIn,
    RouteBatchOut,
    RouteIn,
    RouteOut,
    route_request,
)
from soredi_sync.domain.routing import RouteRequest
from soredi_sync.parsing.fhir import JSON_CONTENT_TYPES, XML_CONTENT_TYPES
from soredi_sync.parsing.message import (
    EDIFACT_CONTENT_TYPES,
    NEUTRAL_CONTENT_TYPES,
    parse_message,
    route_request_for,
)
from soredi_sync.parsing.refusals import BundleBudget
from soredi_sync.ports.records import DecisionEntry, TokenRecord
from soredi_sync.services.decision_log import decision_entry
from soredi_sync.services.routing import Decided
from soredi_sync.services.tokens import OutsideOwners, Scope

JSON_MEDIA_TYPE = "application/json"
# A message as held: FHIR XML/JSON, OIOXML (XML), EDIFACT; the content says which.
MESSAGE_MEDIA_TYPES = (
    XML_CONTENT_TYPES | JSON_CONTENT_TYPES | EDIFACT_CONTENT_TYPES | NEUTRAL_CONTENT_TYPES
)
MESSAGE_PATH = "/v1/route/message"
BUNDLE_PATH = "/v1/route/bundle"  # its older name, kept as an alias
# Their bodies may be max_bundle_bytes; every other body max_body_bytes (api/limits.py).
MESSAGE_PATHS = (MESSAGE_PATH, BUNDLE_PATH)

router = APIRouter(prefix="/v1", tags=["routing"])


def _answer(
    ctx: ApiContext,
    question: RouteRequest,
    caller: TokenRecord,
    message: MessageReadOut | None = None,
) -> Response:
    started = time.perf_counter()
    decided = ctx.app.routing().decide(question, caller)
    decision, now = decided.decision, decided.decided_at
    ctx.metrics.record_decision(decided.outcome, decision.reason, decided.resolve_seconds)
    ctx.decision_log.record(
        decision_entry(question, decision, caller=caller.name, token_id=caller.id, decided_at=now)
    )
    # RouteOut's JSON written straight from the decision (route_json.py): the response_model
    # only publishes the shape.
    body = decision_json(decision, now, message_id=question.message_id, message=message)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Response(
        body,
        media_type=JSON_MEDIA_TYPE,
        headers={"Server-Timing": f"decide;dur={elapsed_ms:.3f}"},
    )


async def route(request: Request, body: RouteIn, caller: RouteReader) -> Response:
    """Deliver or reject; in which syntax and message type, converted by whom, to which
    address, on which snapshot, the warnings (each with a stable `code`) and the rules that
    fired. Needs `route:read`; an owner-restricted token gets 403 for a receiver outside its
    owners."""
    return _route(request, body.to_request(), caller)


def _route(request: Request, question: RouteRequest, caller: TokenRecord) -> Response:
    started = time.perf_counter()
    ctx = context(request)
    response = _answer(ctx, question, caller)
    ctx.metrics.record_request("/v1/route", time.perf_counter() - started)
    return response


async def _route_at_once(request: Request) -> Response | None:
    """``POST /v1/route`` for the ordinary request (``at_once.py``)."""
    caller = quick_caller(request, Scope.ROUTE_READ)
    if caller is None:
        return None
    body = await quick_dicts(request, ROUTE_DICTS)
    question = None if body is None else route_request(body)
    return None if question is None else _route(request, question, caller)


async def _batch_at_once(request: Request) -> Response | None:
    """``POST /v1/route/batch`` for the ordinary request (``at_once.py``)."""
    caller = quick_caller(request, Scope.ROUTE_READ)
    if caller is None:
        return None
    body = await quick_dicts(request, BATCH_DICTS)
    if body is None:
        return None
    questions = [route_request(item) for item in body["requests"]]
    if None in questions:
        return None  # FastAPI's handler answers the 422
    return await _batch(request, cast(list[RouteRequest], questions), caller)


router.add_api_route(
    "/route",
    route,
    methods=["POST"],
    response_model=RouteOut,
    responses=problem_responses(400, 401, 403, 422, 503),
    summary="Decide how to deliver a message",
    operation_id="route",
    # Looked up at each request (the tests watch it).
    route_class_override=at_once(lambda request: _route_at_once(request)),
)


BATCH_PATH = "/v1/route/batch"


async def route_batch(request: Request, body: RouteBatchIn, caller: RouteReader) -> Response:
    """Each question as `POST /v1/route` takes it, one answer each in the same order, all
    decided on the same snapshot: a decision, or the problem `POST /v1/route` would answer for
    that question alone (an owner-restricted token gets a 403 item for a receiver outside its
    owners; an unknown business message or syntax is a 422 item). A body that is not valid as a
    whole is 422, as for `POST /v1/route`. Every decision is in the decision log. Needs
    `route:read`. The body may be up to 1,000 times `[api] max_body_bytes`."""
    return await _batch(request, [item.to_request() for item in body.requests], caller)


async def _batch(request: Request, questions: list[RouteRequest], caller: TokenRecord) -> Response:
    started = time.perf_counter()
    ctx = context(request)
    # A thousand decisions are tens of milliseconds of CPU: off the event loop.
    answer = await run_in_threadpool(_batch_answer, ctx, questions, caller, request.url.path)
    ctx.metrics.record_request(BATCH_PATH, time.perf_counter() - started)
    return Response(answer, media_type=JSON_MEDIA_TYPE)


router.add_api_route(
    BATCH_PATH.removeprefix("/v1"),
    route_batch,
    methods=["POST"],
    response_model=RouteBatchOut,
    responses=problem_responses(400, 401, 403, 413, 422, 503),
    summary="Decide up to 1,000 routing questions in one call",
    operation_id="routeBatch",
    route_class_override=at_once(lambda request: _batch_at_once(request)),
)


def _batch_answer(
    ctx: ApiContext, questions: list[RouteRequest], caller: TokenRecord, path: str
) -> bytes:
    answers = ctx.app.routing().decide_batch(questions, caller)
    results: list[dict[str, Any]] = []
    entries: list[DecisionEntry] = []
    record_decision = ctx.metrics.record_decision
    for index, (question, answer) in enumerate(zip(questions, answers, strict=True)):
        if isinstance(answer, Decided):
            decision, now = answer.decision, answer.decided_at
            record_decision(answer.outcome, decision.reason, answer.resolve_seconds)
            entries.append(
                decision_entry(
                    question, decision, caller=caller.name, token_id=caller.id, decided_at=now
                )
            )
            item = decision_dict(decision, now, message_id=question.message_id)
            results.append({"index": index, "status": 200, "decision": item, "problem": None})
            continue
        if isinstance(answer, OutsideOwners):
            status, kind = 403, "forbidden"
        else:  # RoutingInputError, as POST /v1/route answers it
            status, kind = 422, "routing-input"
        problem = problem_body(status, str(answer), path, kind=kind)
        results.append({"index": index, "status": status, "decision": None, "problem": problem})
    ctx.decision_log.record_many(entries)
    return dumps({"results": results})


# The message body as published: the two media types a client generator can send, one
# schema each. The other labels the server takes (MESSAGE_MEDIA_TYPES) are named in the
# description: openapi-python-client warns on a text or XML request body and leaves it out,
# and if such types are mapped onto supported ones it labels every string body with the last
# type it met (docs/openapi.md).
FHIR_MESSAGE_SCHEMA = "FhirMessage"
MESSAGE_SCHEMAS: dict[str, dict[str, Any]] = {
    FHIR_MESSAGE_SCHEMA: {
        "title": FHIR_MESSAGE_SCHEMA,
        "type": "object",
        "additionalProperties": True,
        "description": "A FHIR message Bundle in JSON (`resourceType` `Bundle`, `type` "
        "`message`), as the gateway holds it.",
    }
}
_MESSAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The message exactly as held. A FHIR message in JSON may go as "
        "`application/fhir+json`; any message (FHIR XML or JSON, OIOXML, EDIFACT) as "
        "`application/octet-stream`: the syntax is read from the content. The same bytes may "
        "also be labelled `application/fhir+xml`, `application/xml`, `text/xml`, "
        "`application/json`, `application/edifact`, `application/x-edifact` or `text/plain` "
        "(a label naming another format than the content's is 400); any other type is 415.",
        "content": {
            "application/fhir+json": {
                "schema": {"$ref": f"#/components/schemas/{FHIR_MESSAGE_SCHEMA}"}
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_MESSAGE_RESPONSES = problem_responses(400, 401, 403, 413, 415, 422, 503)
SenderSyntax = Annotated[
    str | None,
    Query(
        max_length=20,
        description="route a FHIR message as if sent in this syntax (default: as read); "
        "a legacy message is always routed in its own",
    ),
]


@router.post(
    MESSAGE_PATH.removeprefix("/v1"),
    response_model=RouteOut,
    responses=_MESSAGE_RESPONSES,
    summary="Decide how to deliver a message as held: FHIR, OIOXML or EDIFACT",
    openapi_extra=_MESSAGE_BODY,
    operation_id="routeMessage",
)
async def route_message(
    request: Request, caller: RouteReader, sender_syntax: SenderSyntax = None
) -> Response:
    """The same decision for a message exactly as the gateway holds it: a FHIR message Bundle
    (XML or JSON; CareCommunication, Acknowledgement, HospitalNotification), an OIOXML
    Emessage (XDIS91, XDIS20, XCTL03, XBIN01, ...) or an EDIFACT interchange (DIS91, CTL03,
    BIN01, ...). The syntax and message type are read from the content; the media type only
    has to be one of `application/fhir+xml`, `application/fhir+json`, `application/xml`,
    `text/xml`, `application/json`, `application/edifact`, `application/x-edifact`,
    `text/plain` or `application/octet-stream`. Receiver, message facts and message id are read
    from the message, and the answer says what was read (`message`). Needs `route:read`.
    400 when the body cannot be read at all, 413 over `max_bundle_bytes`, 415 another media
    type, 422 when it is not a message that can be routed (`bundle_problem` says why)."""
    return await _route_message(request, caller, sender_syntax, MESSAGE_PATH)


@router.post(
    BUNDLE_PATH.removeprefix("/v1"),
    response_model=RouteOut,
    responses=_MESSAGE_RESPONSES,
    summary="The same as POST /v1/route/message (its older name)",
    openapi_extra=_MESSAGE_BODY,
    operation_id="routeBundle",
)
async def route_bundle(
    request: Request, caller: RouteReader, sender_syntax: SenderSyntax = None
) -> Response:
    """Kept for gateways that call it: the same body, media types, answer and problems as
    `POST /v1/route/message`, which takes FHIR, OIOXML and EDIFACT alike. Needs
    `route:read`."""
    return await _route_message(request, caller, sender_syntax, BUNDLE_PATH)


async def _route_message(
    request: Request, caller: TokenRecord, sender_syntax: str | None, path: str
) -> Response:
    started = time.perf_counter()
    ctx = context(request)
    content_type = request.headers.get("content-type")
    media_type = content_type.split(";")[0].strip().lower() if content_type else None
    if media_type is not None and media_type not in MESSAGE_MEDIA_TYPES:
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "send the message as application/fhir+xml, application/fhir+json, "
            f"application/xml or application/edifact, not {media_type}",
        )
    data = await _read_body(request, ctx.settings.max_bundle_bytes)
    reference = ctx.app.reference
    # Parsing a large message takes milliseconds: off the event loop.
    budget = BundleBudget(ctx.settings.max_bundle_elements, ctx.settings.max_bundle_depth)
    facts = await run_in_threadpool(
        parse_message, data, content_type, message_types=reference.message_types, budget=budget
    )
    question = route_request_for(facts, sender_syntax, category_names=reference.category_names)
    response = _answer(ctx, question, caller, MessageReadOut.model_validate(facts))
    ctx.metrics.record_request(path, time.perf_counter() - started)
    return response


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, "too-large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiProblem(413, "too-large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
