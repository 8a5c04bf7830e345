"""Request and response bodies of the HTTP API: the published contract.

They mirror the domain records field by field but are declared here on purpose, so a change
inside the domain does not silently change what the gateway receives.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from fastapi import Path as FastApiPath
from pydantic import BaseModel, ConfigDict, Field, model_validator

from soredi_sync.db.repository import ChangeRecord, SnapshotInfo
from soredi_sync.domain.model import GlnMode, UnitKind
from soredi_sync.domain.routing import (
    Attachment,
    AttachmentContent,
    RouteDecision,
    RouteRequest,
)

GLN_PATTERN = r"^\d{13}$"
# Ids and cursors are 64-bit in the database: larger numbers are a 422, never a 500.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, FastApiPath(ge=1, le=MAX_ROW_ID, description="an id")]

SOR_ID_PATTERN = r"^\d{1,20}$"


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- route --------------------------------------------------------------------------------


class ReceiverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gln: str | None = Field(default=None, pattern=GLN_PATTERN, examples=["5790000121786"])
    sor_id: str | None = Field(default=None, pattern=SOR_ID_PATTERN)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if self.gln is None and self.sor_id is None:
            raise ValueError("give the receiver's gln, sor_id or both")
        return self


AttachmentContentName = Literal["data", "separate", "link", "none"]


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
        return RouteRequest(
            business_message=self.business_message,
            sender_syntax=self.sender_syntax,
            receiver_gln=self.receiver.gln,
            receiver_sor_id=self.receiver.sor_id,
            text_length=self.text_length,
            subject=self.subject,
            category=self.category,
            topic=self.topic,
            attachments=tuple(
                Attachment(a.mime_type, a.size, a.title, AttachmentContent(a.content))
                for a in self.attachments
            ),
            total_size=self.total_size,
            at=self.at,
            message_id=self.message_id,
            category_coded=self.category_coded,
        )


class ConversionOut(BaseModel):
    step: str = Field(examples=["fhir->oioxml"])
    by: str | None = Field(description="VANS code of the receiver, who converts")


class AttachmentPlanOut(BaseModel):
    index: int = Field(description="1-based, in the message's order")
    title: str | None
    mime_type: str = Field(description="the type it travels as")
    declared_type: str | None = Field(description="the type the message declares, if any")
    sniffed_type: str | None = Field(description="the type its first bytes show, if known")
    size: int = Field(description="bytes")
    content: str = Field(description='"data", "separate", "link" or "none"')
    carried_as: str = Field(description='"inline" or a binary message type such as XBIN01')


class RouteWarningOut(BaseModel):
    code: str = Field(examples=["LEGACY_GLN_SYSTEM"], description="stable, for programs")
    message: str = Field(description="for people")


class MessageReadOut(BaseModel):
    """What was read from a message sent as it is (``POST /v1/route/message``)."""

    syntax: str = Field(examples=["oioxml"], description="the sender syntax, as read")
    message_type: str = Field(examples=["XDIS91"], description="the type on the wire")
    business_message: str = Field(examples=["correspondence"])


class AddressOut(BaseModel):
    sor_id: str | None
    gln: str | None
    inherited_from: str | None


class SnapshotRefOut(BaseModel):
    id: int
    taken_at: datetime
    age_seconds: float


class TraceOut(BaseModel):
    rule: str
    outcome: str
    detail: str


class RouteOut(BaseModel):
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

    @classmethod
    def of(
        cls,
        decision: RouteDecision,
        now: datetime,
        message_id: str | None,
        message: MessageReadOut | None = None,
    ) -> RouteOut:
        snapshot = decision.snapshot
        return cls(
            decision=decision.decision.value,
            reason=decision.reason.value if decision.reason else None,
            message_type=decision.message_type,
            message_types=list(decision.message_types),
            syntax=decision.syntax,
            conversion=[ConversionOut(step=c.step, by=c.by) for c in decision.conversion],
            attachments=[
                AttachmentPlanOut(
                    index=a.index,
                    title=a.title,
                    mime_type=a.mime_type,
                    declared_type=a.declared_type,
                    sniffed_type=a.sniffed_type,
                    size=a.size,
                    content=a.content.value,
                    carried_as=a.carried_as,
                )
                for a in decision.attachments
            ],
            address=AddressOut(
                sor_id=decision.address.sor_id,
                gln=decision.address.gln,
                inherited_from=decision.address.inherited_from,
            ),
            warnings=[
                RouteWarningOut(code=w.code.value, message=w.message) for w in decision.warnings
            ],
            snapshot=SnapshotRefOut(
                id=snapshot.id,
                taken_at=snapshot.taken_at,
                age_seconds=round(decision.age_seconds(now), 3),
            ),
            decided_on=decision.decided_on,
            trace=[
                TraceOut(rule=t.rule, outcome=t.outcome, detail=t.detail) for t in decision.trace
            ],
            message_id=message_id,
            message=message,
        )


# -- registry -----------------------------------------------------------------------------


class SnapshotOut(_Out):
    id: int
    source: str
    taken_at: datetime
    source_date: date | None
    effective_date: date
    unit_count: int
    gln_count: int
    capability_count: int
    change_count: int
    baseline: bool
    age_seconds: float

    @classmethod
    def of(cls, info: SnapshotInfo, now: datetime) -> SnapshotOut:
        return cls(
            id=info.id,
            source=info.source,
            taken_at=info.taken_at,
            source_date=info.source_date,
            effective_date=info.effective_date,
            unit_count=info.unit_count,
            gln_count=info.gln_count,
            capability_count=info.capability_count,
            change_count=info.change_count,
            baseline=info.baseline,
            age_seconds=round(info.age_seconds(now), 3),
        )


class CurrentSnapshotOut(BaseModel):
    snapshot: SnapshotOut
    last_change_cursor: int = Field(description="the change feed's cursor at this snapshot")


class UnitOut(_Out):
    sor_id: str
    name: str
    kind: UnitKind
    parent_sor_id: str | None
    owner_sor_id: str = Field(description="the institution owner at the root of the tree")
    type_code: str | None
    gln_mode: GlnMode
    gln: str | None
    from_date: date | None
    to_date: date | None
    shak: str | None
    provider_number: str | None
    pharmacy_number: str | None
    postal_code: str | None


class GlnOut(_Out):
    gln: str
    active: bool
    only_internal: bool
    system_supplier: str | None
    system_type: str | None
    vans: str | None = Field(description="communication supplier (VANS) code")
    region_code: str | None
    edi_administrator: str | None
    owner_sor_id: str | None
    from_date: date | None
    to_date: date | None


class CapabilityOut(_Out):
    message_type: str
    version_code: str | None


class EffectiveGlnOut(_Out):
    gln: str | None
    path: list[str] = Field(description="SOR-IDs walked from the unit to the GLN's owner")
    inherited_from: str | None


class UnitViewOut(BaseModel):
    snapshot: SnapshotOut
    unit: UnitOut
    effective: EffectiveGlnOut
    ancestors: list[UnitOut] = Field(description="parent first, up to the institution owner")
    children: list[UnitOut]
    gln: GlnOut | None = Field(description="the effective GLN's attributes")
    message_types: list[CapabilityOut]


class GlnViewOut(BaseModel):
    snapshot: SnapshotOut
    gln: GlnOut
    message_types: list[CapabilityOut]
    owners: list[UnitOut] = Field(description="units carrying the GLN themselves")
    inheritors: list[UnitOut] = Field(description="units that inherit it")


class ChangeOut(_Out):
    cursor: int
    snapshot_id: int
    entity: str
    key: str
    gln: str | None
    kind: str
    details: dict[str, Any]

    @classmethod
    def of(cls, record: ChangeRecord) -> ChangeOut:
        return cls.model_validate(record)


class ChangesOut(BaseModel):
    changes: list[ChangeOut]
    next_cursor: int = Field(description="pass as ?cursor= to continue")


# -- health -------------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok"]


class SourceHealthOut(BaseModel):
    source: str
    consecutive_failures: int
    degraded: bool
    last_status: str | None
    last_success_at: datetime | None


class WebhookHealthOut(BaseModel):
    stuck_deliveries: int = Field(
        description="deliveries due for longer than webhooks.stuck_after_seconds without being "
        "sent, or whose dispatcher's claim ran out; they do not make the replica unready"
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
