"""The FastAPI application factory. Nothing is built at import time (STYLE point 2)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI

from soredi_sync.api.deps import ApiContext
from soredi_sync.api.limits import RequestLimits
from soredi_sync.api.problems import install_problem_handlers, problem_responses, problem_schemas
from soredi_sync.api.routers import audit, fhir, health, plans, registry, routing, webhooks
from soredi_sync.api.routers.routing_schemas import MAX_BATCH
from soredi_sync.api.settings import ApiSettings, DecisionLogSettings, api_settings
from soredi_sync.api.warmup import DEFAULT_JOBS, CacheWarmer
from soredi_sync.bootstrap import App
from soredi_sync.observability.metrics import Metrics, shared_metrics
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.decision_log import BackgroundFlusher, DecisionLog
from soredi_sync.services.health import data_age_seconds, source_gauges_reader
from soredi_sync.services.tokens import TokenVerifier

# How long the event loop's thread can wait for the interpreter while another thread runs Python.
SWITCH_INTERVAL_SECONDS = 0.001

DESCRIPTION = """\
Routing decisions for MedCom message conversion gateways, and read access to the versioned
copy of SOR and SOR-EDI they are made on.

Every endpoint under `/v1` needs a bearer token (`soredi-sync token create --scope ...`).
Errors are `application/problem+json` (RFC 9457), one `Problem` schema for all. Operation ids
and tags are stable names for generated clients (docs/openapi.md).
"""

# The groups of operations, in the order the interactive docs show them; a generated client
# makes one module per tag.
TAGS = [
    {
        "name": "routing",
        "description": "Routing decisions for a conversion gateway (`route:read`).",
    },
    {
        "name": "registry",
        "description": "Units, GLNs, the change feed and the current snapshot (`registry:read`).",
    },
    {"name": "audit", "description": "Audit findings, adoption and cut-over (`audit:read`)."},
    {"name": "plans", "description": "Change plans for SOR-EDI (`plan:write`)."},
    {"name": "webhooks", "description": "Change subscriptions (`webhook:admin`)."},
    {"name": "health", "description": "Liveness and readiness probes (no token)."},
    {
        "name": "fhir",
        "description": "The FHIR R4 care-services directory, read-only (`registry:read`; "
        "`/fhir/metadata` needs no token); errors are FHIR `OperationOutcome`.",
    },
]


def _version() -> str:
    try:
        return version("soredi-sync")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def create_app(
    app: App,
    settings: ApiSettings | None = None,
    log_settings: DecisionLogSettings | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """The HTTP API over ``app``.

    The decision log is flushed by a background thread that runs while the application's
    lifespan does (``uvicorn``, or ``with TestClient(api)``), and once more on shutdown.
    ``api.state.decision_log`` and ``api.state.verifier`` are there for tests and operators.

    :param settings: ``[api]``; default: from the configuration that goes with ``app.settings``
    :param log_settings: ``[decision_log]``; default likewise
    :param metrics: where decisions are counted and what ``GET /metrics`` shows; default: the
        process's :func:`~soredi_sync.observability.metrics.shared_metrics`
    """
    if settings is None or log_settings is None:
        configured_api, configured_log = api_settings(app.settings)
        settings = settings or configured_api
        log_settings = log_settings or configured_log

    def api_uow() -> UnitOfWork:
        return app.uow()

    verifier = TokenVerifier(api_uow, ttl=settings.token_cache_seconds)
    decision_log = DecisionLog(
        api_uow, batch_size=log_settings.batch_size, max_pending=log_settings.max_pending
    )
    metrics = metrics or shared_metrics()

    def data_age() -> float | None:
        # The age /readyz judges: since the data was last confirmed by a source.
        with app.uow() as uow:
            return data_age_seconds(uow)

    metrics.set_data_age_source(data_age)
    metrics.set_source_health_reader(source_gauges_reader(app.uow, app.settings.daemon))
    ctx = ApiContext(
        app=app, settings=settings, verifier=verifier, decision_log=decision_log, metrics=metrics
    )
    flush_interval = log_settings.flush_seconds

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        # The decision log's writer and the warm-up are threads beside the event loop: a
        # request waits for them at most one switch interval (CPython's default: 5 ms).
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        flusher = BackgroundFlusher(
            [decision_log.flush, verifier.flush_usage],
            interval=flush_interval,
            name="soredi-sync-flusher",
        )
        decision_log.on_backlog = flusher.wake
        flusher.start()
        warmer = None
        if settings.warm_seconds > 0:
            from soredi_sync.ui import warm_jobs

            warmer = CacheWarmer(app, settings.warm_seconds, (*DEFAULT_JOBS, *warm_jobs()))
            warmer.start()
        api.state.warmer = warmer
        try:
            yield
        finally:
            decision_log.on_backlog = None
            if warmer is not None:
                warmer.stop()
            flusher.stop()
            sys.setswitchinterval(switch_interval)

    api = FastAPI(
        title="soredi-sync",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    api.state.ctx = ctx
    api.state.decision_log = decision_log
    api.state.verifier = verifier
    install_problem_handlers(api)
    for resource in (routing, registry, health, audit, plans, webhooks, fhir):
        api.include_router(resource.router)
    # The web console (/ui, not in the OpenAPI document). Imported here: ui sits above api.
    from soredi_sync.ui import served_pages, ui_body_limits, ui_router

    console = ui_router()
    api.include_router(console)
    api.state.ui_served_paths = served_pages(console)  # what the console's menu may offer
    _complete_document(api)
    # Outermost of the application's own layers: tokens and body sizes are judged before
    # FastAPI reads a body (api/limits.py).
    api.add_middleware(
        RequestLimits,
        verifier=verifier,
        max_body_bytes=settings.max_body_bytes,
        body_limits={
            **dict.fromkeys(routing.MESSAGE_PATHS, settings.max_bundle_bytes),
            routing.BATCH_PATH: MAX_BATCH * settings.max_body_bytes,
            **ui_body_limits(settings.max_bundle_bytes),
        },
        body_timeout=settings.body_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
    )

    return api


def _complete_document(api: FastAPI) -> None:
    """What FastAPI's generated document lacks, added once (FastAPI's documented way of
    extending it: a replacement ``openapi`` that edits the generated one):

    - every operation that takes a body may be answered 413 (too large) or 408 (too slow) by
      :class:`RequestLimits`;
    - the components that references written by hand point to, which FastAPI does not collect
      itself: ``Problem``, which every error answer refers to under
      ``application/problem+json`` (``problem_responses``), and the FHIR message body of
      ``routeMessage`` (``routing.MESSAGE_SCHEMAS``).
    """
    generate = api.openapi
    refusals = {str(status): response for status, response in problem_responses(408, 413).items()}

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if isinstance(operation, dict) and "requestBody" in operation:
                        for status, response in refusals.items():
                            operation.setdefault("responses", {}).setdefault(status, response)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, component in {**problem_schemas(), **routing.MESSAGE_SCHEMAS}.items():
                if components.setdefault(name, component) != component:
                    raise RuntimeError(f"two schemas named {name!r} in the OpenAPI document")
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
