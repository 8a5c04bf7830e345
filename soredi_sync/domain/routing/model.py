"""What a routing decision is made of: the reasons and warnings it gives, the request it
answers, the decision itself (DOMAIN.md §3.1), and the trace a decision is written into."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from soredi_sync.domain.identifiers import ReceiverIdentifier


class Decision(enum.StrEnum):
    DELIVER = "deliver"
    REJECT = "reject"


class Reason(enum.StrEnum):
    """Why a message is rejected. MedCom's own code where one fits, ours otherwise."""

    # MedCom (acknowledgement / conversion use cases)
    UNABLE_TO_RECEIVE_MSG_TYPE = "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE"
    # Ours
    UNKNOWN_RECEIVER = "RECEIVER_UNKNOWN"
    RECEIVER_INACTIVE = "RECEIVER_INACTIVE"
    RECEIVER_CLOSED = "RECEIVER_CLOSED"
    NO_GLN_ON_PATH = "RECEIVER_NO_GLN_ON_PATH"
    NO_VANS = "RECEIVER_NO_VANS"
    NO_ATTACHMENT_TYPE = "RECEIVER_UNABLE_TO_RECEIVE_ATTACHMENTS"
    TOO_MANY_ATTACHMENTS = "TOO_MANY_ATTACHMENTS"
    MIME_NOT_ALLOWED = "ATTACHMENT_MIME_TYPE_NOT_ALLOWED"
    TOO_LARGE = "MESSAGE_TOO_LARGE"
    SUBJECT_TOO_LONG = "SUBJECT_TOO_LONG"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    ADDRESS_MISMATCH = "ADDRESS_MISMATCH"  # on_address_mismatch = "reject"
    ATTACHMENT_LINK_NOT_CONVERTIBLE = "ATTACHMENT_LINK_NOT_CONVERTIBLE"
    ATTACHMENT_WITHOUT_CONTENT = "ATTACHMENT_WITHOUT_CONTENT"
    CATEGORY_MISSING = "CATEGORY_MISSING"  # on_category_missing = "reject"


class WarningCode(enum.StrEnum):
    """What a delivered (or rejected) message should make its sender or operator look at."""

    # Receiver identification
    LEGACY_GLN_SYSTEM = "LEGACY_GLN_SYSTEM"  # a GLN under urn:oid:1.3.88
    IDENTIFIER_SYSTEM_MISSPELT = "IDENTIFIER_SYSTEM_MISSPELT"  # recognised, but misspelt
    IDENTIFIER_SYSTEM_UNKNOWN = "IDENTIFIER_SYSTEM_UNKNOWN"  # listed, not used
    IDENTIFIER_VALUE_INVALID = "IDENTIFIER_VALUE_INVALID"  # e.g. a 12-digit GLN
    ADDRESS_MISMATCH = "ADDRESS_MISMATCH"  # the identifiers name different units
    ADDRESSED_THROUGH_ANCESTOR = "ADDRESSED_THROUGH_ANCESTOR"  # unit has no GLN, parent has
    GLN_CHECK_DIGIT = "GLN_CHECK_DIGIT"
    # Attachments
    ATTACHMENT_TYPE_MISMATCH = "ATTACHMENT_TYPE_MISMATCH"  # declared type is not the bytes'
    ATTACHMENT_WITHOUT_CONTENT = "ATTACHMENT_WITHOUT_CONTENT"  # neither data nor url (native)
    ATTACHMENT_LINK = "ATTACHMENT_LINK"  # a link-only attachment (native, or by policy)
    # Content
    CATEGORY_MISSING = "CATEGORY_MISSING"
    SUBJECT_TRUNCATED = "SUBJECT_TRUNCATED"
    TEXT_OVER_LEGACY_LIMIT = "TEXT_OVER_LEGACY_LIMIT"


@dataclass(frozen=True, slots=True)
class RouteWarning:
    """One warning: a stable code for programs, a sentence for people."""

    code: WarningCode
    message: str

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class RoutingInputError(ValueError):
    """The request itself is unusable (unknown business message or syntax, no receiver)."""


# -- request and answer ------------------------------------------------------------------------


class AttachmentContent(enum.StrEnum):
    """How an attachment's bytes travel with the message."""

    DATA = "data"  # in the message (FHIR data, or an OIOXML/EDIFACT binary object)
    SEPARATE = "separate"  # in a binary message of its own, referenced from the letter
    LINK = "link"  # only a url: the bytes are elsewhere
    NONE = "none"  # neither data nor url


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment as the message declares it.

    :param mime_type: the declared type, lower-cased without parameters; "" when none
    :param size: bytes (declared, or decoded from the data)
    :param sniffed_type: the type its first bytes show, when they match one of the allowed
        types' magic numbers; None when not known (no data, or unrecognised bytes)
    """

    mime_type: str
    size: int
    title: str | None = None
    content: AttachmentContent = AttachmentContent.DATA
    sniffed_type: str | None = None


@dataclass(frozen=True, slots=True)
class RouteRequest:
    business_message: str
    sender_syntax: str
    receiver_gln: str | None = None
    receiver_sor_id: str | None = None
    text_length: int | None = None
    subject: str | None = None  # as the legacy message would carry it (category + topic)
    category: str | None = None
    topic: str | None = None
    attachments: tuple[Attachment, ...] = ()
    total_size: int | None = None
    at: date | None = None
    message_id: str | None = None
    # Every identifier the message gives for its receiver, as written. When empty, the
    # receiver is receiver_gln / receiver_sor_id (source "request", official systems).
    receiver_identifiers: tuple[ReceiverIdentifier, ...] = ()
    # False: the message has a category without a code (or none where one is required);
    # None: not known or not applicable (the request gave no such fact).
    category_coded: bool | None = None
    # Who sends it, when known: for the traffic counts (never read by the resolver).
    sender_gln: str | None = None
    sender_sor_id: str | None = None

    def legacy_subject(self) -> str | None:
        """The subject a legacy receiver gets: given, or category + topic (FHIR→XDIS91)."""
        if self.subject is not None:
            return self.subject
        parts = [p for p in (self.category, self.topic) if p]
        return " ".join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class ConversionPlan:
    step: str  # e.g. fhir->oioxml
    by: str | None  # VANS code of the receiver, who converts


@dataclass(frozen=True, slots=True)
class AttachmentPlan:
    """How one attachment travels: ``mime_type`` is the type it travels as — on conversion the
    sniffed one when the bytes show one, on native delivery the declared one (unchanged)."""

    mime_type: str
    size: int
    carried_as: str  # "inline" or a binary message type such as XBIN01
    index: int = 1  # 1-based, in the message's order
    title: str | None = None
    declared_type: str | None = None
    sniffed_type: str | None = None
    content: AttachmentContent = AttachmentContent.DATA


@dataclass(frozen=True, slots=True)
class Address:
    sor_id: str | None
    gln: str | None
    inherited_from: str | None


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    id: int
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class TraceEntry:
    rule: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class RouteDecision:
    decision: Decision
    reason: Reason | None
    message_type: str | None
    message_types: tuple[str, ...]  # every type of the business message in that syntax it takes
    syntax: str | None
    conversion: tuple[ConversionPlan, ...]
    attachments: tuple[AttachmentPlan, ...]
    address: Address
    warnings: tuple[RouteWarning, ...]
    snapshot: SnapshotRef
    decided_on: date
    trace: tuple[TraceEntry, ...]

    def age_seconds(self, now: datetime) -> float:
        return (now - self.snapshot.taken_at).total_seconds()


# -- the trace --------------------------------------------------------------------------------


class _Trace:
    __slots__ = ("entries", "warnings")

    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []
        self.warnings: list[RouteWarning] = []

    def add(self, rule: str, outcome: str, detail: str = "") -> None:
        self.entries.append(TraceEntry(rule, outcome, detail))

    def warn(self, code: WarningCode, text: str) -> None:
        self.warnings.append(RouteWarning(code, text))
