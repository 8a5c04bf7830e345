"""Probes and the metrics scrape, no token needed: ``/healthz``, ``/readyz``, ``/metrics``.

``/readyz`` is plain ``def``, on a pooled session in the thread pool: it must answer 503 rather
than hang the event loop when the database does, and must not pin a connection to each thread.

Under ``soredi-sync run`` the API also answers for its daemon: ``app.state.daemon_readiness``
(set by ``daemon/runner.py`` and, in each API worker, ``daemon/api_workers.py``) says why the
daemon is not ready (starting, stopping), or ``None``; ``/readyz`` answers 503
``daemon-not-running`` then. Without it (``soredi-sync serve``) nothing changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from soredi_sync.api.common import OutModel
from soredi_sync.api.deps import context
from soredi_sync.api.problems import ApiProblem, problem_responses
from soredi_sync.errors import NoSnapshot
from soredi_sync.services.health import data_health, monitored_sources, webhook_health

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: Literal["ok"]


class SourceHealthOut(OutModel):
    source: str
    consecutive_failures: int
    degraded: bool
    last_status: str | None
    last_success_at: datetime | None


class WebhookHealthOut(OutModel):
    stuck_deliveries: int = Field(
        validation_alias="stuck",
        description="deliveries due for longer than webhooks.stuck_after_seconds without being "
        "sent, or whose dispatcher's claim ran out; they do not make the replica unready",
    )
    oldest_stuck_since: datetime | None
    stuck_after_seconds: float


class ReadyOut(BaseModel):
    status: Literal["ready"]
    snapshot_id: int
    # Seconds since the data was last confirmed against a source (an accepted sync run).
    data_age_seconds: float | None
    max_data_age_seconds: float
    sources: list[SourceHealthOut]
    webhooks: WebhookHealthOut


@router.get(
    "/healthz",
    summary="The process is alive",
    operation_id="getHealth",
)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
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
    daemon_readiness = getattr(request.app.state, "daemon_readiness", None)
    if daemon_readiness is not None and (reason := daemon_readiness()) is not None:
        raise ApiProblem(503, "daemon-not-running", reason)
    # A pooled session in the thread pool, not the routing service's per-thread connection:
    # the probe must not pin a connection to each pool thread, nor stall the event loop when
    # the database hangs.
    settings = context(request).app.settings
    daemon = settings.daemon
    sources = monitored_sources(daemon)
    try:
        with context(request).app.uow() as uow:
            current = uow.registry.current_snapshot()
            data = data_health(
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
    if daemon.ready_requires_fresh_data and not data.fresh:
        age = data.data_age_seconds or 0.0
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
        data_age_seconds=data.data_age_seconds,
        max_data_age_seconds=data.max_age_seconds,
        sources=[SourceHealthOut.model_validate(s) for s in data.sources],
        webhooks=WebhookHealthOut.model_validate(hooks),
    )


# No token: Prometheus scrapes it. Expose it on the internal network only, never through the
# proxy the gateways reach. Plain def: the data age is a database read.
@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    body, content_type = context(request).metrics.exposition()
    return Response(body, media_type=content_type)
