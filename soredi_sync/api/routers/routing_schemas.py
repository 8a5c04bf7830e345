"""The routing endpoints' bodies: a routing question in, a decision out (the published contract).

``RouteOut.model_validate(decision, context={"now": now})`` reads a
:class:`~soredi_sync.domain.routing.RouteDecision`; the snapshot's age is as of ``now``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from soredi_sync.api.common import GLN_PATTERN, SOR_ID_PATTERN, OutModel, attributes, now_of
from soredi_sync.api.problems import Problem
from soredi_sync.api.routers.at_once import DictValidator
from soredi_sync.domain.routing import Attachment, AttachmentContent, RouteRequest, SnapshotRef


class ReceiverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gln: str | None = Field(default=None, pattern=GLN_PATTERN, examples=["5790000121786"])
    sor_id: str | None = Field(default=None, pattern=SOR_ID_PATTERN)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if self.gln is None and self.sor_id is None:
            raise ValueError("give the receiver's gln, sor_id or both")
        return self


class SenderIn(BaseModel):
    """Who sends the message, as far as the caller knows: kept in the decision log for the
    traffic counts per sender (the decision does not depend on it)."""

    model_config = ConfigDict(extra="forbid")

    gln: str | None = Field(default=None, pattern=GLN_PATTERN, examples=["5790001382445"])
    sor_id: str | None = Field(default=None, pattern=SOR_ID_PATTERN)


AttachmentContentName = Literal["data", "separate", "link", "none"]
_CONTENT = {content.value: content for content in AttachmentContent}  # faster than the call


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mime_type: str = Field(
        max_length=255, examples=["application/pdf"], description='the declared type; "" if none'
    )
    size: int = Field(ge=0, description="bytes")
    title: str | None = Field(default=None, max_length=1000)
    content: AttachmentContentName = Field(
        default="data",
        description='how its bytes travel: "data" in the message, "separate" in a binary message '
        'of its own (XBIN01/BIN01), "link" a url only, "none" neither data nor url',
    )


class RouteIn(BaseModel):
    """A routing question (DOMAIN.md §3.1). Unknown fields are refused, so that a misspelt
    field (which could change the decision) is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")

    receiver: ReceiverIn
    sender: SenderIn | None = Field(
        default=None, description="the sender, if known: counted in the traffic, not decided on"
    )
    business_message: str = Field(max_length=40, examples=["correspondence"])
    sender_syntax: str = Field(max_length=20, examples=["fhir"])
    message_id: str | None = Field(default=None, max_length=200)
    text_length: int | None = Field(default=None, ge=0, description="characters")
    subject: str | None = Field(
        default=None, max_length=10_000, description="the legacy subject, if known"
    )
    category: str | None = Field(default=None, max_length=200)
    topic: str | None = Field(default=None, max_length=10_000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10_000)
    total_size: int | None = Field(default=None, ge=0, description="bytes")
    at: date | None = Field(default=None, description="decision date (default: today, Danish)")
    category_coded: bool | None = Field(
        default=None,
        description="false: the category has no code (or the message has none where one is "
        "required); omitted: not known",
    )

    def to_request(self) -> RouteRequest:
        question = route_request(self.model_dump())
        assert question is not None  # the model checked the receiver
        return question


def route_request(body: dict[str, Any]) -> RouteRequest | None:
    """The question of a ``RouteIn`` body read as dicts (:data:`ROUTE_DICTS`); None when the
    receiver gives neither GLN nor SOR-ID (``ReceiverIn``'s own check)."""
    receiver = body["receiver"]
    gln, sor_id = receiver["gln"], receiver["sor_id"]
    if gln is None and sor_id is None:
        return None
    sender = body["sender"] or _NO_SENDER
    return RouteRequest(
        business_message=body["business_message"],
        sender_syntax=body["sender_syntax"],
        receiver_gln=gln,
        receiver_sor_id=sor_id,
        text_length=body["text_length"],
        subject=body["subject"],
        category=body["category"],
        topic=body["topic"],
        attachments=tuple(
            Attachment(a["mime_type"], a["size"], a["title"], _CONTENT[a["content"]])
            for a in body["attachments"]
        ),
        total_size=body["total_size"],
        at=body["at"],
        message_id=body["message_id"],
        category_coded=body["category_coded"],
        sender_gln=sender["gln"],
        sender_sor_id=sender["sor_id"],
    )


_NO_SENDER = {"gln": None, "sor_id": None}


class ConversionOut(OutModel):
    step: str = Field(examples=["fhir->oioxml"])
    by: str | None = Field(description="VANS code of the receiver, who converts")


class AttachmentPlanOut(OutModel):
    index: int = Field(description="1-based, in the message's order")
    title: str | None
    mime_type: str = Field(description="the type it travels as")
    declared_type: str | None = Field(description="the type the message declares, if any")
    sniffed_type: str | None = Field(description="the type its first bytes show, if known")
    size: int = Field(description="bytes")
    content: str = Field(description='"data", "separate", "link" or "none"')
    carried_as: str = Field(description='"inline" or a binary message type such as XBIN01')


class RouteWarningOut(OutModel):
    code: str = Field(examples=["LEGACY_GLN_SYSTEM"], description="stable, for programs")
    message: str = Field(description="for people")


class MessageReadOut(OutModel):
    """What was read from a message sent as it is (``POST /v1/route/message``)."""

    syntax: str = Field(examples=["oioxml"], description="the sender syntax, as read")
    message_type: str = Field(examples=["XDIS91"], description="the type on the wire")
    business_message: str = Field(examples=["correspondence"])


class AddressOut(OutModel):
    sor_id: str | None
    gln: str | None
    inherited_from: str | None


class SnapshotRefOut(OutModel):
    id: int
    taken_at: datetime
    age_seconds: float

    @model_validator(mode="before")
    @classmethod
    def _aged(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, SnapshotRef):
            age = round((now_of(info) - data.taken_at).total_seconds(), 3)
            return attributes(data, cls, age_seconds=age)
        return data


class TraceOut(OutModel):
    rule: str
    outcome: str
    detail: str


class RouteOut(OutModel):
    """How to deliver the message, or why not, and on which snapshot that was decided."""

    decision: Literal["deliver", "reject"]
    reason: str | None
    message_type: str | None
    message_types: list[str]
    syntax: str | None
    conversion: list[ConversionOut]
    attachments: list[AttachmentPlanOut]
    address: AddressOut
    warnings: list[RouteWarningOut]
    snapshot: SnapshotRefOut
    decided_on: date
    trace: list[TraceOut]
    message_id: str | None = None
    message: MessageReadOut | None = Field(
        default=None, description="what was read from the message; none for POST /v1/route"
    )


MAX_BATCH = 1000  # requests in one POST /v1/route/batch


class RouteBatchIn(BaseModel):
    """Routing questions to decide in one call (a gateway's queue), each as the body of
    `POST /v1/route`. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    requests: list[RouteIn] = Field(min_length=1, max_length=MAX_BATCH)


# The two bodies read as dicts by the quick path (api/routers/at_once.py): ReceiverIn's check
# is route_request's.
ROUTE_DICTS = DictValidator(RouteIn, rechecked=[ReceiverIn._one_of])
BATCH_DICTS = DictValidator(RouteBatchIn, rechecked=[ReceiverIn._one_of])


class RouteBatchItemOut(OutModel):
    """One answer, in the order of the questions: a decision (`status` 200) or the problem
    `POST /v1/route` would have answered for that question alone (403 outside the token's
    owners, 422 an unknown business message or syntax)."""

    index: int = Field(description="0-based position of the question in `requests`")
    status: int = Field(examples=[200])
    decision: RouteOut | None = None
    problem: Problem | None = Field(
        default=None, description="the problem document `POST /v1/route` would answer"
    )


class RouteBatchOut(OutModel):
    """One answer per question, every decision on the same snapshot."""

    results: list[RouteBatchItemOut]
