"""Routing decisions for the conversion gateway (DOMAIN.md §3.1), over one snapshot's index.

Pure: the policy comes in as a value (built from ``config/routing.toml``), the message types from
the registry data, the receiver data from a :class:`RoutingIndex`. Nothing here is specific to
one message type: business messages, syntaxes and binary attachment types all come from data.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from soredi_sync.domain.gln import has_valid_check_digit
from soredi_sync.domain.identifiers import ReceiverIdentifier
from soredi_sync.domain.message_types import MessageType, MessageTypeRegistry
from soredi_sync.domain.model import GlnMode, Registry, Unit, effective_gln

# The business message whose types carry legacy attachments (BIN01, XBIN01) in the registry.
BINARY_ATTACHMENT = "binary-attachment"


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


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversionStep:
    """One conversion a VANS can make, e.g. ``fhir->oioxml``, valid on the dates given."""

    source: str
    target: str
    valid_from: date | None = None
    valid_to: date | None = None  # inclusive
    requires_agreement: bool = False  # only with an agreement with the receiver's VANS

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    def open_on(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to


@dataclass(frozen=True, slots=True)
class Limits:
    max_attachments: int = 10
    allowed_mime_types: frozenset[str] = frozenset(
        {"application/pdf", "image/gif", "image/jpeg", "image/png", "image/tiff", "image/bmp"}
    )
    max_total_bytes: int = 100 * 1024 * 1024
    legacy_subject_max: int = 70
    legacy_text_max: int = 31_150
    reject_long_subject: bool = False  # False: warn
    reject_long_text: bool = False  # False: warn
    reject_link_attachments: bool = True  # on conversion; False: convert and warn
    reject_missing_category: bool = False  # on conversion; False: warn


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    conversions: tuple[ConversionStep, ...]
    agreements: Mapping[str, frozenset[str]]  # VANS code -> step names agreed with it
    syntax_preference: tuple[str, ...] = ("fhir", "oioxml", "edifact")
    limits: Limits = field(default_factory=Limits)
    reject_address_mismatch: bool = False  # on_address_mismatch; False: warn
    # The business message whose letters carry binary attachments where a syntax has no binary
    # type of its own (XDIS91 + XBIN01 -> one CareCommunication): a lone XBIN01/BIN01 is routed
    # as part of such a letter.
    binary_attachment_letter: str = "correspondence"


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
    """How one attachment travels: ``mime_type`` is the type it travels as (the sniffed one
    when the declared one is wrong and the sniffed one is allowed)."""

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


# -- the index -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingIndex:
    """What routing needs of one snapshot, arranged for O(1) look-ups."""

    snapshot: SnapshotRef
    registry: Registry
    types_by_gln: Mapping[str, frozenset[str]]
    owners_by_gln: Mapping[str, tuple[str, ...]]  # SOR-IDs of the units carrying the GLN

    @classmethod
    def build(cls, snapshot: SnapshotRef, registry: Registry) -> RoutingIndex:
        owners: dict[str, list[str]] = {}
        for unit in registry.units.values():
            if unit.gln_mode is GlnMode.OWN and unit.gln:
                owners.setdefault(unit.gln, []).append(unit.sor_id)
        return cls(
            snapshot=snapshot,
            registry=registry,
            types_by_gln={g: frozenset(t) for g, t in registry.capabilities.items()},
            owners_by_gln={g: tuple(sorted(s)) for g, s in owners.items()},
        )


# -- the resolver ---------------------------------------------------------------------------


class _Trace:
    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []
        self.warnings: list[RouteWarning] = []

    def add(self, rule: str, outcome: str, detail: str = "") -> None:
        self.entries.append(TraceEntry(rule, outcome, detail))

    def warn(self, code: WarningCode, text: str) -> None:
        self.warnings.append(RouteWarning(code, text))


class Resolver:
    """Decides how to deliver a message, on one :class:`RoutingIndex` and one policy.

    Order (DOMAIN.md §3.1): find the receiver and its address → native syntax if the receiver
    advertises it → a conversion path the policy allows on the date, in the receiver's syntax
    preference → reject. Every conversion checks the conversion limits.
    """

    def __init__(
        self, index: RoutingIndex, policy: RoutingPolicy, message_types: MessageTypeRegistry
    ) -> None:
        self.index = index
        self.policy = policy
        self.message_types = message_types
        self._by_business: dict[str, dict[str, tuple[MessageType, ...]]] = {}
        for mt in message_types:
            by_syntax = self._by_business.setdefault(mt.business_message, {})
            by_syntax[mt.syntax] = (*by_syntax.get(mt.syntax, ()), mt)
        self._binary = self._by_business.get(BINARY_ATTACHMENT, {})
        self._syntaxes = {mt.syntax for mt in message_types}

    def business_messages(self) -> list[str]:
        return sorted(self._by_business)

    def resolve(self, request: RouteRequest, today: date) -> RouteDecision:
        """Decide for ``request``; ``today`` is the decision date when the request has none.

        :raises RoutingInputError: unknown business message or sender syntax, or no receiver
        """
        by_syntax = self._by_business.get(request.business_message)
        if by_syntax is None or request.business_message == BINARY_ATTACHMENT:
            raise RoutingInputError(
                f"unknown business message {request.business_message!r}; known: "
                + ", ".join(m for m in self.business_messages() if m != BINARY_ATTACHMENT)
            )
        if request.sender_syntax not in self._syntaxes:
            raise RoutingInputError(
                f"unknown sender syntax {request.sender_syntax!r}; known: "
                + ", ".join(sorted(self._syntaxes))
            )
        if not request.receiver_gln and not request.receiver_sor_id:
            raise RoutingInputError("a receiver GLN or SOR-ID is required")

        day = request.at or today
        trace = _Trace()
        address, reason = self._address(request, day, trace)
        if reason is not None:
            return self._reject(reason, address, day, trace)
        gln = address.gln
        assert gln is not None
        advertised = self.index.types_by_gln.get(gln, frozenset())
        takes = {
            syntax: tuple(mt.code for mt in types if mt.code in advertised)
            for syntax, types in by_syntax.items()
        }
        takes = {syntax: codes for syntax, codes in takes.items() if codes}
        trace.add(
            "receiver-types",
            "found" if takes else "none",
            f"{request.business_message}: "
            + (", ".join(f"{s}={'/'.join(c)}" for s, c in sorted(takes.items())) or "no type"),
        )

        if request.sender_syntax in takes:
            trace.add(
                "native", "yes", f"receiver advertises {'/'.join(takes[request.sender_syntax])}"
            )
            return self._deliver(request, request.sender_syntax, takes, (), address, day, trace)
        trace.add("native", "no", f"receiver advertises no {request.sender_syntax} type")

        vans = self.index.registry.glns[gln].vans
        for target in self._targets(takes):
            path = self._path(request.sender_syntax, target, day, vans, trace)
            if path is None:
                continue
            if not vans:
                trace.add("vans", "missing", "conversion needs the receiver's VANS; GLN has none")
                return self._reject(Reason.NO_VANS, address, day, trace)
            plans = tuple(ConversionPlan(step.name, vans) for step in path)
            return self._deliver(request, target, takes, plans, address, day, trace)
        trace.add("conversion", "none", "no allowed conversion path to a syntax the receiver takes")
        return self._reject(Reason.UNABLE_TO_RECEIVE_MSG_TYPE, address, day, trace)

    # -- receiver -----------------------------------------------------------------------

    def _address(
        self, request: RouteRequest, day: date, trace: _Trace
    ) -> tuple[Address, Reason | None]:
        registry = self.index.registry
        gln = request.receiver_gln
        sor_id = request.receiver_sor_id
        if sor_id is not None:
            unit = registry.units.get(sor_id)
            if unit is None:
                trace.add("receiver", "unknown", f"SOR-ID {sor_id} is not in the snapshot")
                if gln is None:
                    return Address(sor_id, None, None), Reason.UNKNOWN_RECEIVER
                trace.warn(
                    WarningCode.ADDRESS_MISMATCH,
                    f"SOR-ID {sor_id} is not in the snapshot: decided on GLN {gln}",
                )
            else:
                if not unit.is_open_on(day):
                    trace.add("receiver", "closed", f"unit {sor_id} is closed on {day}")
                    return Address(sor_id, gln, None), Reason.RECEIVER_CLOSED
                found = self._nearest_gln(unit, trace)
                if found is None:
                    trace.add("address", "none", f"no GLN on the path from {sor_id} to its root")
                    return Address(sor_id, gln, None), Reason.NO_GLN_ON_PATH
                address = found
                if gln is not None and gln != address.gln:
                    trace.warn(
                        WarningCode.ADDRESS_MISMATCH,
                        f"SOR-ID {sor_id} resolves to GLN {address.gln}, not the given {gln}: "
                        "decided on the given GLN"
                    )
                    address = Address(sor_id, gln, None)
                return self._check_gln(address, day, trace)
        assert gln is not None
        owners = self.index.owners_by_gln.get(gln, ())
        record = registry.glns.get(gln)
        owner = owners[0] if owners else (record.owner_sor_id if record else None)
        return self._check_gln(Address(owner, gln, None), day, trace)

    def _nearest_gln(self, unit: Unit, trace: _Trace) -> Address | None:
        """The unit's GLN by inheritance; failing that, the nearest ancestor that has one."""
        units = self.index.registry.units
        current: Unit | None = unit
        seen: set[str] = set()
        while current is not None and current.sor_id not in seen:
            seen.add(current.sor_id)
            effective = effective_gln(units, current.sor_id)
            if effective.gln is not None:
                if current is not unit:
                    trace.warn(
                        WarningCode.ADDRESSED_THROUGH_ANCESTOR,
                        f"unit {unit.sor_id} has no GLN of its own or by inheritance: "
                        f"addressed through {current.sor_id}"
                    )
                inherited = effective.inherited_from
                trace.add(
                    "address",
                    "found",
                    f"SOR-ID {current.sor_id} GLN {effective.gln}"
                    + (f" inherited from {inherited}" if inherited else ""),
                )
                return Address(current.sor_id, effective.gln, inherited)
            current = units.get(current.parent_sor_id) if current.parent_sor_id else None
        return None

    def _check_gln(
        self, address: Address, day: date, trace: _Trace
    ) -> tuple[Address, Reason | None]:
        registry = self.index.registry
        gln = address.gln
        record = registry.glns.get(gln) if gln else None
        if record is None:
            trace.add("receiver", "unknown", f"GLN {gln} is not in the snapshot")
            return address, Reason.UNKNOWN_RECEIVER
        if not has_valid_check_digit(record.gln):
            trace.warn(WarningCode.GLN_CHECK_DIGIT, f"GLN {record.gln} has a wrong GS1 check digit")
        if not record.active:
            trace.add("receiver", "inactive", f"GLN {gln} is marked NonActive")
            return address, Reason.RECEIVER_INACTIVE
        if record.to_date is not None and record.to_date < day:
            trace.add("receiver", "closed", f"GLN {gln} ended {record.to_date}")
            return address, Reason.RECEIVER_CLOSED
        owners = self.index.owners_by_gln.get(record.gln, ())
        if owners and not any(registry.units[s].is_open_on(day) for s in owners):
            trace.add("receiver", "closed", f"every unit carrying GLN {gln} is closed on {day}")
            return address, Reason.RECEIVER_CLOSED
        trace.add("receiver", "active", f"GLN {gln}, VANS {record.vans or 'none'}")
        return address, None

    # -- conversion ---------------------------------------------------------------------

    def _targets(self, takes: Mapping[str, tuple[str, ...]]) -> Iterable[str]:
        preferred = [s for s in self.policy.syntax_preference if s in takes]
        return preferred + sorted(s for s in takes if s not in preferred)

    def _path(
        self, source: str, target: str, day: date, vans: str | None, trace: _Trace
    ) -> tuple[ConversionStep, ...] | None:
        """Shortest chain of conversion steps open on ``day`` (agreements checked per VANS)."""
        agreed = self.policy.agreements.get(vans or "", frozenset())
        usable: dict[str, list[ConversionStep]] = {}
        for step in self.policy.conversions:
            if not step.open_on(day):
                continue
            if step.requires_agreement and step.name not in agreed:
                continue
            usable.setdefault(step.source, []).append(step)
        queue: deque[tuple[str, tuple[ConversionStep, ...]]] = deque([(source, ())])
        seen = {source}
        while queue:
            syntax, path = queue.popleft()
            for step in usable.get(syntax, []):
                if step.target in seen:
                    continue
                chain = (*path, step)
                if step.target == target:
                    trace.add(
                        "conversion",
                        "allowed",
                        " then ".join(s.name for s in chain) + f" on {day}",
                    )
                    return chain
                seen.add(step.target)
                queue.append((step.target, chain))
        trace.add("conversion", "not-allowed", f"{source}->{target} on {day} (VANS {vans or '-'})")
        return None

    # -- outcomes -------------------------------------------------------------------------

    def _deliver(
        self,
        request: RouteRequest,
        syntax: str,
        takes: Mapping[str, tuple[str, ...]],
        conversion: tuple[ConversionPlan, ...],
        address: Address,
        day: date,
        trace: _Trace,
    ) -> RouteDecision:
        codes = takes[syntax]
        attachments: tuple[AttachmentPlan, ...] = ()
        if request.attachments:
            carrier = self._attachment_carrier(syntax, address, trace)
            if carrier is None:
                return self._reject(Reason.NO_ATTACHMENT_TYPE, address, day, trace)
            attachments = tuple(
                AttachmentPlan(a.mime_type, a.size, carrier) for a in request.attachments
            )
        if conversion:
            reason = self._check_limits(request, syntax, trace)
            if reason is not None:
                return self._reject(reason, address, day, trace)
        trace.add("decision", "deliver", f"{codes[0]} ({syntax})")
        return RouteDecision(
            decision=Decision.DELIVER,
            reason=None,
            message_type=codes[0],
            message_types=codes,
            syntax=syntax,
            conversion=conversion,
            attachments=attachments,
            address=address,
            warnings=tuple(trace.warnings),
            snapshot=self.index.snapshot,
            decided_on=day,
            trace=tuple(trace.entries),
        )

    def _attachment_carrier(self, syntax: str, address: Address, trace: _Trace) -> str | None:
        """'inline' where the syntax carries attachments itself, else the binary type to use."""
        binary_types = self._binary.get(syntax, ())
        if not binary_types:
            trace.add("attachments", "inline", f"{syntax} carries attachments in the message")
            return "inline"
        advertised = self.index.types_by_gln.get(address.gln or "", frozenset())
        for mt in binary_types:
            if mt.code in advertised:
                trace.add("attachments", "separate", f"one {mt.code} per attachment")
                return mt.code
        trace.add(
            "attachments",
            "impossible",
            f"receiver takes no {'/'.join(mt.code for mt in binary_types)}",
        )
        return None

    def _check_limits(self, request: RouteRequest, syntax: str, trace: _Trace) -> Reason | None:
        limits = self.policy.limits
        if len(request.attachments) > limits.max_attachments:
            trace.add(
                "limits",
                "too-many-attachments",
                f"{len(request.attachments)} > {limits.max_attachments}",
            )
            return Reason.TOO_MANY_ATTACHMENTS
        bad = sorted({a.mime_type for a in request.attachments} - limits.allowed_mime_types)
        if bad:
            trace.add("limits", "mime-not-allowed", ", ".join(bad))
            return Reason.MIME_NOT_ALLOWED
        total = request.total_size
        if total is None and request.attachments:
            total = sum(a.size for a in request.attachments)
        if total is not None and total > limits.max_total_bytes:
            trace.add("limits", "too-large", f"{total} bytes > {limits.max_total_bytes}")
            return Reason.TOO_LARGE
        if syntax != "fhir":
            subject = request.legacy_subject()
            if subject is not None and len(subject) > limits.legacy_subject_max:
                detail = f"{len(subject)} characters > {limits.legacy_subject_max}"
                if limits.reject_long_subject:
                    trace.add("limits", "subject-too-long", detail)
                    return Reason.SUBJECT_TOO_LONG
                trace.warn(
                    WarningCode.SUBJECT_TRUNCATED,
                    f"subject will be cut to {limits.legacy_subject_max} characters ({detail})"
                )
            text = request.text_length
            if text is not None and text > limits.legacy_text_max:
                detail = f"{text} characters > {limits.legacy_text_max}"
                if limits.reject_long_text:
                    trace.add("limits", "text-too-long", detail)
                    return Reason.TEXT_TOO_LONG
                trace.warn(
                    WarningCode.TEXT_OVER_LEGACY_LIMIT,
                    f"text is longer than the old legacy limit ({detail}); "
                    "a receiver that still has it must answer with a negative receipt"
                )
        trace.add("limits", "ok", "within the conversion limits")
        return None

    def _reject(self, reason: Reason, address: Address, day: date, trace: _Trace) -> RouteDecision:
        trace.add("decision", "reject", reason.value)
        return RouteDecision(
            decision=Decision.REJECT,
            reason=reason,
            message_type=None,
            message_types=(),
            syntax=None,
            conversion=(),
            attachments=(),
            address=address,
            warnings=tuple(trace.warnings),
            snapshot=self.index.snapshot,
            decided_on=day,
            trace=tuple(trace.entries),
        )
