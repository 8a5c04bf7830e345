"""Change subscriptions (webhooks) over HTTP: scope ``webhook:admin``, unrestricted tokens only.

An owner-restricted token gets 403 on every endpoint here, even with the scope. A subscription
is an operator's tool: it names an arbitrary URL and sees who else is subscribed, and a
restricted token that could subscribe "to its own owners" would still get records whose owner
changed away from it (a unit's ``before``), so the rule is the change feed's: unrestricted only.

Configured subscriptions (``[[webhooks.subscriptions]]``) are listed here but can be changed
only in the configuration (DELETE answers 409). The endpoints are plain ``def``: they run in
the thread pool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from soredi_sync.api.common import (
    GLN_PATTERN,
    SOR_ID_PATTERN,
    OutModel,
    RowId,
    attributes,
    from_context,
)
from soredi_sync.api.deps import WebhookAdmin, actor, context
from soredi_sync.api.problems import ApiProblem, problem_responses
from soredi_sync.ports.records import Subscription
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.webhooks import (
    InvalidWebhook,
    WebhookConflict,
    WebhookFilter,
    address_policy,
    create_subscription,
    deactivate_subscription,
    delivery_counts,
    get_subscription,
    list_subscriptions,
    recent_deliveries,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["region-north"])
    url: str = Field(min_length=1, max_length=2000, examples=["https://gateway.example/hook"])
    glns: list[Annotated[str, Field(pattern=GLN_PATTERN)]] = Field(default_factory=list)
    owners: list[Annotated[str, Field(pattern=SOR_ID_PATTERN)]] = Field(
        default_factory=list, description="SOR-IDs of institution owners"
    )
    message_types: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, examples=[["FDIS91", "XDIS91"]]
    )
    kinds: list[Literal["added", "removed", "changed"]] = Field(default_factory=list)
    entities: list[Literal["unit", "gln", "capability"]] = Field(default_factory=list)


class FiltersOut(OutModel):
    glns: list[str]
    owners: list[str]
    message_types: list[str]
    kinds: list[str]
    entities: list[str]


class WebhookOut(OutModel):
    id: int
    name: str
    url: str = Field(description="where deliveries go, without any user-info (credentials)")
    has_credentials: bool = Field(
        description="the registered URL carried user-info, sent as HTTP Basic and never shown"
    )
    origin: Literal["config", "api"]
    active: bool
    created_at: datetime
    created_by: str
    cursor: int = Field(description="the last change id scanned for this subscription")
    filters: FiltersOut
    deliveries: dict[str, int] = Field(description="deliveries per state")

    @model_validator(mode="before")
    @classmethod
    def _subscription(cls, data: Any, info: ValidationInfo) -> Any:
        # A stored subscription: its filters as the service reads them, and its deliveries
        # per state from context={"deliveries": delivery_counts(uow)}.
        if not isinstance(data, Subscription):
            return data
        deliveries: dict[int, dict[str, int]] = from_context(info, "deliveries")
        return attributes(
            data,
            cls,
            origin="config" if data.origin == "config" else "api",
            filters=WebhookFilter.of(data.filters).as_dict(),
            deliveries=deliveries.get(data.id, {}),
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="the HMAC key; shown now and never again")


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


DeliveryState = Literal["pending", "sending", "delivered", "failed", "cancelled"]


class DeliveryOut(OutModel):
    id: int
    created_at: datetime
    first_change_id: int
    last_change_id: int
    change_count: int
    status: DeliveryState
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    claimed_until: datetime | None = Field(
        default=None, description="while sending: when the dispatcher's claim ends"
    )


class DeliveriesOut(BaseModel):
    webhook_id: int
    deliveries: list[DeliveryOut]


def _out(uow: UnitOfWork, sub: Subscription) -> WebhookOut:
    return WebhookOut.model_validate(sub, context={"deliveries": delivery_counts(uow)})


@router.post(
    "/webhooks",
    status_code=201,
    responses=problem_responses(400, 401, 403, 409, 422),
    summary="Register a change subscription (the secret is in this answer only)",
    operation_id="createWebhook",
)
def post_webhook(request: Request, caller: WebhookAdmin, body: WebhookIn) -> WebhookCreatedOut:
    """The subscription gets the changes made from now on that pass its filters (fields
    ANDed, values ORed, empty matches all), POSTed after each sync and signed with `secret`
    (`X-Soredi-Signature: sha256=HMAC(secret, timestamp + "." + body)`). Store the secret now:
    it is not shown again. The name of a removed subscription may be used again; a name in use
    is 409. A URL whose host is or resolves to a loopback, private, link-local or otherwise
    non-public address is refused (422) unless the operator allows it
    (`webhooks.allow_networks` / `allow_hosts`). User-info in the URL is stored apart, sent as
    HTTP Basic and never shown again (`has_credentials`). Needs `webhook:admin` and a token not
    restricted to owners."""
    settings = context(request).app.settings.webhooks
    with context(request).app.uow() as uow:
        try:
            created = create_subscription(
                uow,
                name=body.name,
                url=body.url,
                webhook_filter=WebhookFilter.build(
                    glns=body.glns,
                    owners=body.owners,
                    message_types=body.message_types,
                    kinds=body.kinds,
                    entities=body.entities,
                ),
                actor=actor(caller),
                policy=address_policy(settings),
            )
        except InvalidWebhook as exc:
            raise ApiProblem(422, "invalid-webhook", str(exc)) from None
        except WebhookConflict as exc:
            raise ApiProblem(409, "webhook-conflict", str(exc)) from None
        out = _out(uow, created.subscription)
    return WebhookCreatedOut(**out.model_dump(), secret=created.secret)


@router.get(
    "/webhooks",
    responses=problem_responses(401, 403),
    summary="Every change subscription, configured and registered, active or removed",
    operation_id="listWebhooks",
)
def list_webhooks(request: Request, caller: WebhookAdmin) -> WebhooksOut:
    """Needs `webhook:admin` and a token not restricted to owners."""
    with context(request).app.uow() as uow:
        counts = delivery_counts(uow)
        subs = list_subscriptions(uow)
    outs = [WebhookOut.model_validate(s, context={"deliveries": counts}) for s in subs]
    return WebhooksOut(webhooks=outs)


@router.get(
    "/webhooks/{webhook_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="One change subscription and its deliveries per state",
    operation_id="getWebhook",
)
def get_webhook(request: Request, caller: WebhookAdmin, webhook_id: RowId) -> WebhookOut:
    """Needs `webhook:admin` and a token not restricted to owners."""
    with context(request).app.uow() as uow:
        return _out(uow, get_subscription(uow, webhook_id))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Remove a change subscription (its pending deliveries are cancelled)",
    operation_id="deleteWebhook",
)
def delete_webhook(request: Request, caller: WebhookAdmin, webhook_id: RowId) -> Response:
    """The subscription stops and stays listed, inactive, with its deliveries. A configured
    subscription is removed from the configuration instead (409). Needs `webhook:admin` and a
    token not restricted to owners."""
    with context(request).app.uow() as uow:
        try:
            deactivate_subscription(uow, webhook_id, actor=actor(caller))
        except WebhookConflict as exc:
            raise ApiProblem(409, "webhook-conflict", str(exc)) from None
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    responses=problem_responses(401, 403, 404, 422),
    summary="The subscription's recent deliveries and their state, newest first",
    operation_id="listWebhookDeliveries",
)
def get_deliveries(
    request: Request,
    caller: WebhookAdmin,
    webhook_id: RowId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    status: Annotated[DeliveryState | None, Query()] = None,
) -> DeliveriesOut:
    """Per delivery: the changes it carries (first/last change id, count), `status`
    (`pending`, `sending` while a dispatcher POSTs it, `delivered`, `failed` after the last
    attempt, `cancelled` when the subscription was removed), attempts, the last HTTP status or
    error class and when the next attempt is due. Needs `webhook:admin` and a token not
    restricted to owners."""
    with context(request).app.uow() as uow:
        deliveries = recent_deliveries(uow, webhook_id, limit, status)
    outs = [DeliveryOut.model_validate(d) for d in deliveries]
    return DeliveriesOut(webhook_id=webhook_id, deliveries=outs)
