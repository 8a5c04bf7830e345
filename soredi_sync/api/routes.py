"""The endpoints, declared once; what they work on is the :class:`ApiContext` that
:func:`soredi_sync.api.create_app` puts on ``api.state.ctx``, reached through the request.

Routing endpoints are ``async def``. A decision is about 100 us of CPU (resolver, owner check,
serialising the answer) plus the routing service's current-snapshot check on its per-thread
connection; a hop to the thread pool, which a plain ``def`` endpoint costs, is dearer than that
check blocks the loop. Measured with one uvicorn worker (h11) on the tiny sandbox, wrk with 8
connections on the same 2-core machine: SQLite 2,000-2,200 decisions/s ``async`` against 1,480
``def``; PostgreSQL 1,560-1,600 against 1,180-1,230. ``async`` also keeps the snapshot check on
one thread, hence one connection, where ``def`` would pin one per pool thread.

Registry reads run several pooled queries each and are plain ``def``: they run in the thread
pool and never hold up the event loop that serves decisions. So does ``/readyz``, which must
answer 503 rather than hang the loop when the database does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.exc import SQLAlchemyError

from soredi_sync.api.problems import ApiProblem, Forbidden, marks_authorization, problem_responses
from soredi_sync.api.schemas import (
    GLN_PATTERN,
    MAX_ROW_ID,
    SOR_ID_PATTERN,
    CapabilityOut,
    ChangeOut,
    ChangesOut,
    CurrentSnapshotOut,
    EffectiveGlnOut,
    GlnOut,
    GlnViewOut,
    HealthOut,
    MessageReadOut,
    ReadyOut,
    RouteIn,
    RouteOut,
    SnapshotOut,
    SourceHealthOut,
    UnitOut,
    UnitViewOut,
    WebhookHealthOut,
)
from soredi_sync.api.security import VERIFIED_TOKEN, authorize, bearer_scheme
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App
from soredi_sync.daemon.health import data_health, monitored_sources, webhook_health
from soredi_sync.db.api_repository import TokenRecord
from soredi_sync.domain.routing import Decision, RouteRequest
from soredi_sync.errors import NoSnapshot
from soredi_sync.observability.metrics import Metrics, shared_metrics
from soredi_sync.parsing.bundle import JSON_CONTENT_TYPES, XML_CONTENT_TYPES, BundleBudget
from soredi_sync.parsing.message import (
    EDIFACT_CONTENT_TYPES,
    NEUTRAL_CONTENT_TYPES,
    parse_message,
    route_request_for,
)
from soredi_sync.services import queries
from soredi_sync.services.decision_log import DecisionLog, decision_entry
from soredi_sync.services.tokens import Scope, TokenVerifier, may_read_owner, may_route_to

JSON_MEDIA_TYPE = "application/json"
# A message as held: FHIR XML/JSON, OIOXML (XML), EDIFACT; the content says which.
MESSAGE_MEDIA_TYPES = (
    XML_CONTENT_TYPES | JSON_CONTENT_TYPES | EDIFACT_CONTENT_TYPES | NEUTRAL_CONTENT_TYPES
)
MESSAGE_PATH = "/v1/route/message"
BUNDLE_PATH = "/v1/route/bundle"  # its older name, kept as an alias
# Their bodies may be max_bundle_bytes; every other body max_body_bytes (api/limits.py).
MESSAGE_PATHS = (MESSAGE_PATH, BUNDLE_PATH)


@dataclass
class ApiContext:
    """What the endpoints of one FastAPI app share."""

    app: App
    settings: ApiSettings
    verifier: TokenVerifier
    decision_log: DecisionLog
    metrics: Metrics = field(default_factory=shared_metrics)


def context(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


# The token dependencies are async on purpose: a cached verification is a dict look-up, far
# cheaper than a hop to the thread pool; only a cache miss (once per token per TTL) reads the
# database.
@marks_authorization
async def route_reader(request: Request, credentials: Credentials) -> TokenRecord:
    verified = request.scope.get(VERIFIED_TOKEN)  # the hot path: no second look-up
    return authorize(context(request).verifier, credentials, Scope.ROUTE_READ, verified)


@marks_authorization
async def registry_reader(request: Request, credentials: Credentials) -> TokenRecord:
    return authorize(context(request).verifier, credentials, Scope.REGISTRY_READ)


RouteReader = Annotated[TokenRecord, Depends(route_reader)]
RegistryReader = Annotated[TokenRecord, Depends(registry_reader)]
AtDate = Annotated[date | None, Query(description="as it was on this date (default: now)")]

routing = APIRouter(prefix="/v1", tags=["routing"])
registry = APIRouter(prefix="/v1", tags=["registry"])
health = APIRouter(tags=["health"])


# -- routing ------------------------------------------------------------------------------


def _decide(
    ctx: ApiContext,
    question: RouteRequest,
    caller: TokenRecord,
    message: MessageReadOut | None = None,
) -> Response:
    started = time.perf_counter()
    service = ctx.app.routing()
    # One resolver for the decision and the owner check, so both see the same snapshot.
    resolver = service.resolver()
    today = service.today()
    resolving = time.perf_counter()
    decision = resolver.resolve(question, today)
    resolved = time.perf_counter()
    if not may_route_to(caller, resolver.index, decision.address):
        raise Forbidden("the receiver is outside the owners this token is restricted to")
    ctx.metrics.record_decision(
        "reject"
        if decision.decision is Decision.REJECT
        else ("convert" if decision.conversion else "deliver"),
        decision.reason,
        resolved - resolving,
    )
    now = service.now()
    ctx.decision_log.record(
        decision_entry(question, decision, caller=caller.name, token_id=caller.id, decided_at=now)
    )
    body = RouteOut.of(decision, now, question.message_id, message).model_dump_json()
    elapsed_ms = (time.perf_counter() - started) * 1000
    # Serialised here rather than by FastAPI's response_model, which would validate the
    # freshly built model a second time on the hot path.
    return Response(
        body,
        media_type=JSON_MEDIA_TYPE,
        headers={"Server-Timing": f"decide;dur={elapsed_ms:.3f}"},
    )


@routing.post(
    "/route",
    response_model=RouteOut,
    responses=problem_responses(400, 401, 403, 422, 503),
    summary="Decide how to deliver a message",
    operation_id="route",
)
async def route(request: Request, body: RouteIn, caller: RouteReader) -> Response:
    """Deliver or reject; in which syntax and message type, converted by whom, to which
    address, on which snapshot, the warnings (each with a stable `code`) and the rules that
    fired. Needs `route:read`; an owner-restricted token gets 403 for a receiver outside its
    owners."""
    started = time.perf_counter()
    ctx = context(request)
    response = _decide(ctx, body.to_request(), caller)
    ctx.metrics.record_request("/v1/route", time.perf_counter() - started)
    return response


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


@routing.post(
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


@routing.post(
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
    settings = ctx.app.settings
    # Parsing a large message takes milliseconds: off the event loop.
    budget = BundleBudget(ctx.settings.max_bundle_elements, ctx.settings.max_bundle_depth)
    facts = await run_in_threadpool(
        parse_message, data, content_type, message_types=settings.message_types, budget=budget
    )
    question = route_request_for(facts, sender_syntax, category_names=settings.category_names)
    read = MessageReadOut(
        syntax=facts.syntax,
        message_type=facts.message_type,
        business_message=facts.business_message,
    )
    response = _decide(ctx, question, caller, read)
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


# -- registry -----------------------------------------------------------------------------


@registry.get(
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
    now = ctx.app.routing().now()
    return UnitViewOut(
        snapshot=SnapshotOut.of(view.snapshot, now),
        unit=UnitOut.model_validate(view.unit),
        effective=EffectiveGlnOut.model_validate(view.effective),
        ancestors=[UnitOut.model_validate(u) for u in view.ancestors],
        children=[UnitOut.model_validate(u) for u in view.children],
        gln=GlnOut.model_validate(view.gln) if view.gln else None,
        message_types=[CapabilityOut.model_validate(c) for c in view.message_types],
    )


@registry.get(
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
        owners = {u.owner_sor_id for u in view.owners}
        if not owners and view.gln.owner_sor_id:
            # A GLN no unit carries in the XML: the unit the CSV names as its owner decides.
            registered = uow.registry.get_unit(view.gln.owner_sor_id, view.snapshot.id)
            owners = {registered.owner_sor_id} if registered else set()
    if caller.owners and not owners & caller.owners:
        raise Forbidden("the GLN is outside the owners this token is restricted to")
    now = ctx.app.routing().now()
    return GlnViewOut(
        snapshot=SnapshotOut.of(view.snapshot, now),
        gln=GlnOut.model_validate(view.gln),
        message_types=[CapabilityOut.model_validate(c) for c in view.message_types],
        owners=[UnitOut.model_validate(u) for u in view.owners],
        inheritors=[UnitOut.model_validate(u) for u in view.inheritors],
    )


@registry.get(
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
        changes=[ChangeOut.of(e) for e in events],
        next_cursor=events[-1].cursor if events else cursor,
    )


@registry.get(
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
        snapshot=SnapshotOut.of(result.current, ctx.app.routing().now()),
        last_change_cursor=result.last_change_cursor,
    )


# -- health -------------------------------------------------------------------------------


@health.get(
    "/healthz",
    summary="The process is alive",
    operation_id="getHealth",
)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@health.get(
    "/readyz",
    responses=problem_responses(503),
    summary="The database answers and a snapshot exists",
    operation_id="getReadiness",
)
def readyz(request: Request) -> ReadyOut:
    """Ready when the database answers, a snapshot exists and, unless
    `daemon.ready_requires_fresh_data` is off, the data was confirmed against a source within
    `daemon.max_data_age_hours` (default 36). The answer lists the data's age and each source's
    failures in a row (degraded after `daemon.degraded_after_failures`), and how many webhook
    deliveries are stuck (shown only: they do not make the replica unready)."""
    # A pooled session in the thread pool, not the routing service's per-thread connection:
    # the probe must not pin a connection to each pool thread, nor stall the event loop when
    # the database hangs.
    settings = context(request).app.settings
    daemon = settings.daemon
    sources = monitored_sources(daemon)
    try:
        with context(request).app.uow() as uow:
            current = uow.registry.current_snapshot()
            health = data_health(
                uow,
                sources,
                degraded_after=daemon.degraded_after_failures,
                max_age_hours=daemon.max_data_age_hours,
            )
            hooks = webhook_health(uow, settings.webhooks)
    except SQLAlchemyError:
        raise ApiProblem(503, "database-unavailable", "the database does not answer") from None
    if current is None:
        raise NoSnapshot()
    if daemon.ready_requires_fresh_data and not health.fresh:
        age = health.data_age_seconds or 0.0
        raise ApiProblem(
            503,
            "stale-data",
            f"the data was last confirmed {age / 3600:.1f} h ago "
            f"(limit {daemon.max_data_age_hours:g} h)",
            data_age_seconds=age,
        )
    return ReadyOut(
        status="ready",
        snapshot_id=current.id,
        data_age_seconds=health.data_age_seconds,
        max_data_age_seconds=health.max_age_seconds,
        sources=[
            SourceHealthOut(
                source=s.source,
                consecutive_failures=s.consecutive_failures,
                degraded=s.degraded,
                last_status=s.last_status,
                last_success_at=s.last_success_at,
            )
            for s in health.sources
        ],
        webhooks=WebhookHealthOut(
            stuck_deliveries=hooks.stuck,
            oldest_stuck_since=hooks.oldest_stuck_since,
            stuck_after_seconds=hooks.stuck_after_seconds,
        ),
    )
