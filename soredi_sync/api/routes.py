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
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Annotated

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
from soredi_sync.parsing.bundle import (
    JSON_CONTENT_TYPES,
    XML_CONTENT_TYPES,
    BundleBudget,
    parse_bundle,
)
from soredi_sync.services import queries
from soredi_sync.services.decision_log import DecisionLog, decision_entry
from soredi_sync.services.tokens import Scope, TokenVerifier, may_read_owner, may_route_to

JSON_MEDIA_TYPE = "application/json"
BUNDLE_MEDIA_TYPES = XML_CONTENT_TYPES | JSON_CONTENT_TYPES
BUNDLE_PATH = "/v1/route/bundle"  # its body may be max_bundle_bytes; others max_body_bytes


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


def _decide(ctx: ApiContext, question: RouteRequest, caller: TokenRecord) -> Response:
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
    body = RouteOut.of(decision, now, question.message_id).model_dump_json()
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
)
async def route(request: Request, body: RouteIn, caller: RouteReader) -> Response:
    """Deliver or reject; in which syntax and message type, converted by whom, to which
    address, on which snapshot, and the rules that fired. Needs `route:read`; an
    owner-restricted token gets 403 for a receiver outside its owners."""
    started = time.perf_counter()
    ctx = context(request)
    response = _decide(ctx, body.to_request(), caller)
    ctx.metrics.record_request("/v1/route", time.perf_counter() - started)
    return response


@routing.post(
    BUNDLE_PATH.removeprefix("/v1"),
    response_model=RouteOut,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
    summary="Decide how to deliver a CareCommunication message Bundle",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/fhir+xml": {"schema": {"type": "string"}},
                "application/fhir+json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def route_bundle(
    request: Request,
    caller: RouteReader,
    sender_syntax: Annotated[str, Query(max_length=20)] = "fhir",
) -> Response:
    """The same decision for a FHIR message Bundle as the gateway received it (XML or JSON):
    receiver, message facts and message id are read from the bundle. Needs `route:read`.
    400 when the body is not FHIR XML/JSON at all, 422 when it is not a CareCommunication
    message (`bundle_problem` says why)."""
    started = time.perf_counter()
    ctx = context(request)
    content_type = request.headers.get("content-type")
    media_type = content_type.split(";")[0].strip().lower() if content_type else None
    if media_type is not None and media_type not in BUNDLE_MEDIA_TYPES:
        raise ApiProblem(
            415,
            "unsupported-media-type",
            f"send the bundle as application/fhir+xml or application/fhir+json, not {media_type}",
        )
    data = await _read_body(request, ctx.settings.max_bundle_bytes)
    # Parsing a large bundle takes milliseconds: off the event loop.
    budget = BundleBudget(ctx.settings.max_bundle_elements, ctx.settings.max_bundle_depth)
    facts = await run_in_threadpool(parse_bundle, data, content_type, budget=budget)
    question = facts.to_route_request(
        sender_syntax=sender_syntax, category_names=ctx.app.settings.category_names
    )
    if question.message_id is None and facts.message_id is not None:
        question = replace(question, message_id=facts.message_id)
    response = _decide(ctx, question, caller)
    ctx.metrics.record_request("/v1/route/bundle", time.perf_counter() - started)
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


@health.get("/healthz", summary="The process is alive")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@health.get(
    "/readyz",
    responses=problem_responses(503),
    summary="The database answers and a snapshot exists",
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
