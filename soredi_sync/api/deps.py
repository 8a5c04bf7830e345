"""What the routers' endpoints depend on: the app's :class:`ApiContext` and one token check per
scope (``RouteReader``, ``RegistryReader``, ``AuditReader``, ``PlanWriter``, ``WebhookAdmin``).

:func:`soredi_sync.api.create_app` puts the context on ``api.state.ctx``; an endpoint reaches it
through its request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from soredi_sync.api.problems import Forbidden, marks_authorization
from soredi_sync.api.security import VERIFIED_TOKEN, authorize, bearer_scheme
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App
from soredi_sync.observability.metrics import Metrics, shared_metrics
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services.decision_log import DecisionLog
from soredi_sync.services.tokens import Scope, TokenVerifier


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


def actor(caller: TokenRecord) -> str:
    """Who a change made through the API is recorded as."""
    return f"token:{caller.name}"


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


@marks_authorization
async def audit_reader(request: Request, credentials: Credentials) -> TokenRecord:
    return authorize(context(request).verifier, credentials, Scope.AUDIT_READ)


@marks_authorization
async def plan_writer(request: Request, credentials: Credentials) -> TokenRecord:
    return authorize(context(request).verifier, credentials, Scope.PLAN_WRITE)


@marks_authorization
async def webhook_admin(request: Request, credentials: Credentials) -> TokenRecord:
    """``webhook:admin``, and a token not restricted to owners (``routers/webhooks.py`` says
    why)."""
    record = authorize(context(request).verifier, credentials, Scope.WEBHOOK_ADMIN)
    if record.owners:
        raise Forbidden("change subscriptions need a token not restricted to owners")
    return record


RouteReader = Annotated[TokenRecord, Depends(route_reader)]
RegistryReader = Annotated[TokenRecord, Depends(registry_reader)]
AuditReader = Annotated[TokenRecord, Depends(audit_reader)]
PlanWriter = Annotated[TokenRecord, Depends(plan_writer)]
WebhookAdmin = Annotated[TokenRecord, Depends(webhook_admin)]
