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
from soredi_sync.domain.identifiers import (
    GLN_SYSTEMS,
    SOR_ID_SYSTEM,
    IdentifierKind,
    IdentifierSource,
    ReadIdentifier,
    ReceiverIdentifier,
    SystemSpelling,
    read_identifier,
)
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
    # The business messages this step converts; empty: every one.
    messages: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    def covers(self, business_message: str) -> bool:
        return not self.messages or business_message in self.messages

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


# -- the index -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingIndex:
    """What routing needs of one snapshot, arranged for O(1) look-ups."""

    snapshot: SnapshotRef
    registry: Registry
    types_by_gln: Mapping[str, frozenset[str]]
    owners_by_gln: Mapping[str, tuple[str, ...]]  # SOR-IDs of the units carrying the GLN
    # GLNs of the snapshot whose GS1 check digit is wrong (checked once, not per decision)
    bad_check_digits: frozenset[str] = frozenset()

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
            bad_check_digits=frozenset(g for g in registry.glns if not has_valid_check_digit(g)),
        )


# -- the resolver ---------------------------------------------------------------------------

# Which usable identifier addresses the message, best first: a VANS delivers by GLN, so the
# first GLN; failing that, the receiver's own SOR-ID (Organization, request); the SOR reference
# of MessageHeader.destination.endpoint last. See docs/routing.md.
_GLN_RANK = 0
_SOR_ID_RANK = 1
_ENDPOINT_RANK = 2

_NO_ADDRESS = Address(None, None, None)


class _Trace:
    __slots__ = ("entries", "warnings")

    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []
        self.warnings: list[RouteWarning] = []

    def add(self, rule: str, outcome: str, detail: str = "") -> None:
        self.entries.append(TraceEntry(rule, outcome, detail))

    def warn(self, code: WarningCode, text: str) -> None:
        self.warnings.append(RouteWarning(code, text))


@dataclass(slots=True)
class _Named:
    """What one usable receiver identifier names in the snapshot, resolved on its own."""

    read: ReadIdentifier
    rank: int
    known: bool  # the GLN or SOR-ID is in the snapshot
    unit: Unit | None  # the unit named (SOR-ID), or the first unit carrying the GLN
    # Where the identifier leads: a GLN and the unit to address. None: a SOR-ID with no GLN up
    # its tree (or not in the snapshot).
    address: Address | None
    through: str | None = None  # a SOR-ID addressed through this ancestor (no GLN of its own)

    @property
    def gln(self) -> str | None:
        return self.address.gln if self.address is not None else None

    def label(self) -> str:
        kind = "GLN" if self.read.kind is IdentifierKind.GLN else "SOR-ID"
        return f"{self.read.identifier.source.value} {kind} {self.read.value}"

    def describe(self) -> str:
        """The identifier and the unit it names: source, SOR-ID, name and GLN."""
        if not self.known:
            return f"{self.label()} (not in the snapshot)"
        unit = self.unit
        if self.read.kind is IdentifierKind.GLN:
            if unit is None:
                return f"{self.label()} (no unit in the snapshot carries it)"
            return f"{self.label()} (SOR-ID {unit.sor_id} {unit.name!r})"
        assert unit is not None
        return f"{self.label()} ({unit.name!r}, GLN {self.gln or 'none up its tree'})"


@dataclass(frozen=True, slots=True)
class _Offer:
    """One syntax in which a business message can travel, and the types that carry it."""

    syntax: str
    types: tuple[MessageType, ...]
    # A binary attachment carried inside a letter (the syntax has no binary type of its own)
    letter: str | None = None


def _attachment_name(index: int, attachment: Attachment) -> str:
    title = repr(attachment.title) if attachment.title else "untitled"
    return f"attachment {index} ({title}, {attachment.mime_type or 'no declared type'})"


_WITH_CONTENT = frozenset({AttachmentContent.DATA, AttachmentContent.SEPARATE})


def _has_content(attachment: Attachment) -> bool:
    return attachment.content in _WITH_CONTENT


class Resolver:
    """Decides how to deliver a message, on one :class:`RoutingIndex` and one policy.

    Order (DOMAIN.md §3.1, docs/routing.md): read every receiver identifier and choose the one
    that addresses the message → the receiver and its address → native syntax if the receiver
    advertises it → a conversion path the policy allows on the date, in the receiver's syntax
    preference → reject. Every conversion checks the conversion limits.
    """

    def __init__(
        self, index: RoutingIndex, policy: RoutingPolicy, message_types: MessageTypeRegistry
    ) -> None:
        self.index = index
        self.policy = policy
        self.message_types = message_types
        by_business: dict[str, dict[str, tuple[MessageType, ...]]] = {}
        for mt in message_types:
            by_syntax = by_business.setdefault(mt.business_message, {})
            by_syntax[mt.syntax] = (*by_syntax.get(mt.syntax, ()), mt)
        self._binary = by_business.get(BINARY_ATTACHMENT, {})
        self._syntaxes = {mt.syntax for mt in message_types}
        letter = policy.binary_attachment_letter
        self._offers: dict[str, tuple[_Offer, ...]] = {}
        # The business message whose conversion steps apply: a binary attachment travels with
        # (or inside) its letter, so the letter's steps convert it.
        self._step_message: dict[str, str] = {}
        for business, by_syntax in by_business.items():
            offers = [_Offer(syntax, types) for syntax, types in by_syntax.items()]
            self._step_message[business] = business
            if business == BINARY_ATTACHMENT and letter in by_business:
                # Where a syntax has no binary type (FHIR carries attachments inline), a binary
                # attachment travels inside a letter of that syntax.
                offers += [
                    _Offer(syntax, types, letter)
                    for syntax, types in by_business[letter].items()
                    if syntax not in by_syntax
                ]
                self._step_message[business] = letter
            self._offers[business] = tuple(sorted(offers, key=lambda o: o.syntax))

    def business_messages(self) -> list[str]:
        return sorted(self._offers)

    def resolve(self, request: RouteRequest, today: date) -> RouteDecision:
        """Decide for ``request``; ``today`` is the decision date when the request has none.

        :raises RoutingInputError: unknown business message or sender syntax, or no receiver
            identifier at all
        """
        offers = self._offers.get(request.business_message)
        if offers is None:
            raise RoutingInputError(
                f"unknown business message {request.business_message!r}; known: "
                + ", ".join(self.business_messages())
            )
        if request.sender_syntax not in self._syntaxes:
            raise RoutingInputError(
                f"unknown sender syntax {request.sender_syntax!r}; known: "
                + ", ".join(sorted(self._syntaxes))
            )
        if not request.receiver_identifiers and not (
            request.receiver_gln or request.receiver_sor_id
        ):
            raise RoutingInputError("a receiver GLN or SOR-ID is required")

        day = request.at or today
        trace = _Trace()
        address, reason = self._address(request, day, trace)
        if reason is not None:
            return self._reject(reason, address, day, trace)
        gln = address.gln
        assert gln is not None
        advertised = self.index.types_by_gln.get(gln, frozenset())
        takes: dict[str, tuple[str, ...]] = {}
        letters: dict[str, str] = {}
        found: list[str] = []
        for offer in offers:  # in syntax order
            codes = tuple([mt.code for mt in offer.types if mt.code in advertised])
            if codes:
                takes[offer.syntax] = codes
                found.append(f"{offer.syntax}={'/'.join(codes)}")
                if offer.letter is not None:
                    letters[offer.syntax] = offer.letter
                    found[-1] += f" (inside a {offer.letter} letter)"
        trace.add(
            "receiver-types",
            "found" if takes else "none",
            f"{request.business_message}: {', '.join(found) or 'no type'}",
        )

        if request.sender_syntax in takes:
            trace.add(
                "native", "yes", f"receiver advertises {'/'.join(takes[request.sender_syntax])}"
            )
            return self._deliver(
                request, request.sender_syntax, takes, letters, (), address, day, trace
            )
        trace.add("native", "no", f"receiver advertises no {request.sender_syntax} type")

        vans = self.index.registry.glns[gln].vans
        step_message = self._step_message[request.business_message]
        for target in self._targets(takes):
            path = self._path(request.sender_syntax, target, step_message, day, vans, trace)
            if path is None:
                continue
            if not vans:
                trace.add("vans", "missing", "conversion needs the receiver's VANS; GLN has none")
                return self._reject(Reason.NO_VANS, address, day, trace)
            plans = tuple(ConversionPlan(step.name, vans) for step in path)
            return self._deliver(request, target, takes, letters, plans, address, day, trace)
        trace.add("conversion", "none", "no allowed conversion path to a syntax the receiver takes")
        return self._reject(Reason.UNABLE_TO_RECEIVE_MSG_TYPE, address, day, trace)

    # -- receiver identification ----------------------------------------------------------

    def _address(
        self, request: RouteRequest, day: date, trace: _Trace
    ) -> tuple[Address, Reason | None]:
        """Read every receiver identifier, resolve each on its own, choose the one that
        addresses the message and compare the others with it (docs/routing.md)."""
        reads = (
            [read_identifier(i) for i in request.receiver_identifiers]
            if request.receiver_identifiers
            else _request_reads(request)
        )
        named: list[_Named] = []
        unknown: list[ReadIdentifier] = []
        for read in reads:
            if self._read(read, trace):
                named.append(self._name(read))
            elif read.kind is IdentifierKind.UNKNOWN:
                unknown.append(read)
        if not named:
            for read in unknown:
                ident = read.identifier
                if ident.source is IdentifierSource.ENDPOINT:
                    text = f"endpoint {ident.value!r} holds no SOR-ID"
                else:
                    system = repr(ident.system) if ident.system is not None else "no system"
                    text = (
                        f"{ident.source.value} identifier {ident.value!r} under {system} is not "
                        "a GLN or SOR-ID"
                    )
                trace.warn(WarningCode.IDENTIFIER_SYSTEM_UNKNOWN, text)
            trace.add("receiver", "unknown", "no usable GLN or SOR-ID for the receiver")
            return _NO_ADDRESS, Reason.UNKNOWN_RECEIVER

        # The unit to address: the chosen identifier's, or, when a GLN is chosen, the first
        # SOR-ID that agrees with it (the unit the sender meant, on that GLN).
        chosen = receiver = named[0]
        mismatch = False
        if len(named) > 1:
            ranked = sorted(named, key=lambda n: n.rank)
            chosen = receiver = ranked[0]
            trace.add(
                "addressed-by",
                chosen.read.kind.value,
                f"{chosen.label()}: the first GLN, else the receiver's SOR-ID, else the "
                "endpoint's (the VANS delivers by GLN)",
            )
            for other in ranked[1:]:
                if self._agree(chosen, other, receiver, trace):
                    if (
                        receiver is chosen
                        and chosen.read.kind is IdentifierKind.GLN
                        and other.read.kind is IdentifierKind.SOR_ID
                    ):
                        receiver = other
                    continue
                mismatch = True
                trace.warn(
                    WarningCode.ADDRESS_MISMATCH,
                    f"{other.describe()} names another receiver than {chosen.describe()}, which "
                    "addresses the message (the first GLN, else the receiver's SOR-ID, else the "
                    "endpoint's: the VANS delivers by GLN)",
                )

        if not chosen.known:
            what = "GLN" if chosen.read.kind is IdentifierKind.GLN else "SOR-ID"
            detail = f"{what} {chosen.read.value} is not in the snapshot"
            if what == "GLN" and not has_valid_check_digit(chosen.read.value or ""):
                detail += " (and its GS1 check digit is wrong)"
            trace.add("receiver", "unknown", detail)
            if chosen.read.kind is IdentifierKind.GLN:
                return Address(None, chosen.read.value, None), Reason.UNKNOWN_RECEIVER
            return Address(chosen.read.value, None, None), Reason.UNKNOWN_RECEIVER
        if mismatch and self.policy.reject_address_mismatch:
            trace.add(
                "identification", "rejected", "on_address_mismatch = reject: identifiers disagree"
            )
            return chosen.address or _NO_ADDRESS, Reason.ADDRESS_MISMATCH

        if receiver.read.kind is IdentifierKind.SOR_ID:
            unit = receiver.unit
            assert unit is not None
            if not unit.is_open_on(day):
                trace.add("receiver", "closed", f"unit {unit.sor_id} is closed on {day}")
                return Address(unit.sor_id, receiver.gln, None), Reason.RECEIVER_CLOSED
            address = receiver.address
            if address is None:
                trace.add("address", "none", f"no GLN on the path from {unit.sor_id} to its root")
                return Address(unit.sor_id, None, None), Reason.NO_GLN_ON_PATH
            if receiver.through is not None:
                trace.warn(
                    WarningCode.ADDRESSED_THROUGH_ANCESTOR,
                    f"unit {unit.sor_id} has no GLN of its own or by inheritance: "
                    f"addressed through {receiver.through}",
                )
            trace.add(
                "address",
                "found",
                f"SOR-ID {address.sor_id} GLN {address.gln}"
                + (f" inherited from {address.inherited_from}" if address.inherited_from else ""),
            )
        else:
            address = receiver.address or _NO_ADDRESS
        return self._check_gln(address, day, trace)

    def _read(self, read: ReadIdentifier, trace: _Trace) -> bool:
        """Trace one identifier as read, warn about its spelling or value; True when usable."""
        ident = read.identifier
        source = ident.source.value
        if ident.source is IdentifierSource.ENDPOINT:
            written = ident.value
        elif ident.system is None:
            written = f"(no system) {ident.value!r}"
        else:
            written = f"{ident.system} {ident.value!r}"
        if read.kind is IdentifierKind.UNKNOWN:
            endpoint = ident.source is IdentifierSource.ENDPOINT
            why = "no SOR-ID in the reference" if endpoint else "not a GLN or SOR-ID system"
            trace.add("identifier", "unknown", f"{source}: {written}: {why}")
            return False
        kind = "GLN" if read.kind is IdentifierKind.GLN else "SOR-ID"
        if read.value is None:
            trace.add("identifier", "invalid", f"{source}: {written}: not a valid {kind}")
            trace.warn(
                WarningCode.IDENTIFIER_VALUE_INVALID,
                f"{source} {kind} {ident.value!r} is not a valid {kind}"
                + (" (13 digits)" if read.kind is IdentifierKind.GLN else " (1 to 20 digits)")
                + ": not used",
            )
            return False
        if read.spelling is SystemSpelling.LEGACY:
            trace.warn(
                WarningCode.LEGACY_GLN_SYSTEM,
                f"{source} GLN {read.value} is under {ident.system} (GS1's OID, older MedCom "
                f"profiles): read as a GLN; current profiles use {GLN_SYSTEMS[0]}",
            )
        elif read.spelling is SystemSpelling.MISSPELT:
            official = GLN_SYSTEMS[0] if read.kind is IdentifierKind.GLN else SOR_ID_SYSTEM
            trace.warn(
                WarningCode.IDENTIFIER_SYSTEM_MISSPELT,
                f"{source} {kind} {read.value} is under the misspelt system {ident.system!r}: "
                f"read as {official}",
            )
        spelling = "" if read.spelling is SystemSpelling.OFFICIAL else f" ({read.spelling.value})"
        trace.add(
            "identifier", read.kind.value, f"{source}: {written}{spelling} = {kind} {read.value}"
        )
        return True

    def _name(self, read: ReadIdentifier) -> _Named:
        """What one usable identifier names, on its own."""
        value = read.value
        assert value is not None
        units = self.index.registry.units
        if read.kind is IdentifierKind.GLN:
            record = self.index.registry.glns.get(value)
            owners = self.index.owners_by_gln.get(value, ())
            owner = owners[0] if owners else (record.owner_sor_id if record else None)
            return _Named(
                read,
                _GLN_RANK,
                record is not None,
                units.get(owner) if owner else None,
                Address(owner, value, None),
            )
        rank = (
            _ENDPOINT_RANK if read.identifier.source is IdentifierSource.ENDPOINT else _SOR_ID_RANK
        )
        unit = units.get(value)
        if unit is None:
            return _Named(read, rank, False, None, None)
        found = self._nearest_gln(unit)
        if found is None:
            return _Named(read, rank, True, unit, None)
        address, through = found
        return _Named(read, rank, True, unit, address, through)

    def _agree(self, chosen: _Named, other: _Named, receiver: _Named, trace: _Trace) -> bool:
        """Whether ``other`` names the receiver ``chosen`` names: the same GLN. ``receiver``
        is the identifier whose unit is addressed so far (for the trace)."""
        if other.read.kind is chosen.read.kind and other.read.value == chosen.read.value:
            trace.add("identification", "consistent", f"{other.label()} repeats it")
            return True
        if not other.known and not chosen.known:
            # Nothing to compare: the receiver is unknown whichever names it.
            trace.add(
                "identification",
                "unverifiable",
                f"neither {other.label()} nor {chosen.label()} is in the snapshot",
            )
            return True
        if not other.known or other.gln is None or other.gln != chosen.gln:
            trace.add("identification", "mismatch", f"{other.describe()} vs {chosen.describe()}")
            return False
        unit, addressed = other.unit, receiver.unit
        if (
            receiver.read.kind is IdentifierKind.SOR_ID
            and unit is not None
            and addressed is not None
            and unit.sor_id != addressed.sor_id
        ):
            detail = (
                f"{other.label()} is unit {unit.sor_id} {unit.name!r}, another unit than the "
                f"addressed {addressed.sor_id} {addressed.name!r}, with the same GLN {other.gln}"
            )
        else:
            detail = f"{other.describe()} has the GLN of {chosen.label()}"
        trace.add("identification", "consistent", detail)
        return True

    def _nearest_gln(self, unit: Unit) -> tuple[Address, str | None] | None:
        """The unit's GLN by inheritance; failing that, the nearest ancestor that has one
        (with that ancestor's SOR-ID as the second value)."""
        units = self.index.registry.units
        current: Unit | None = unit
        seen: set[str] = set()
        while current is not None and current.sor_id not in seen:
            seen.add(current.sor_id)
            effective = effective_gln(units, current.sor_id)
            if effective.gln is not None:
                address = Address(current.sor_id, effective.gln, effective.inherited_from)
                return address, (current.sor_id if current is not unit else None)
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
        if record.gln in self.index.bad_check_digits:
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
        self,
        source: str,
        target: str,
        business_message: str,
        day: date,
        vans: str | None,
        trace: _Trace,
    ) -> tuple[ConversionStep, ...] | None:
        """Shortest chain of conversion steps open on ``day`` that convert ``business_message``
        (agreements checked per VANS)."""
        agreed = self.policy.agreements.get(vans or "", frozenset())
        usable: dict[str, list[ConversionStep]] = {}
        for step in self.policy.conversions:
            if not step.open_on(day) or (step.messages and business_message not in step.messages):
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
        trace.add(
            "conversion",
            "not-allowed",
            f"{source}->{target} for {business_message} on {day} (VANS {vans or '-'})",
        )
        return None

    # -- outcomes -------------------------------------------------------------------------

    def _deliver(
        self,
        request: RouteRequest,
        syntax: str,
        takes: Mapping[str, tuple[str, ...]],
        letters: Mapping[str, str],
        conversion: tuple[ConversionPlan, ...],
        address: Address,
        day: date,
        trace: _Trace,
    ) -> RouteDecision:
        codes = takes[syntax]
        converting = bool(conversion)
        letter = letters.get(syntax)
        if letter is not None:
            trace.add(
                "binary-letter",
                "inside-letter",
                f"{syntax} has no binary type: the attachment travels inside the letter "
                f"{codes[0]} ({letter}), which the receiver advertises",
            )
        if request.attachments:
            self._attachment_warnings(request.attachments, converting, trace)
        if converting:
            reason = self._check_limits(request, syntax, trace)
            if reason is not None:
                return self._reject(reason, address, day, trace)
        elif request.category_coded is False:
            trace.warn(
                WarningCode.CATEGORY_MISSING,
                "the message's category has no code (or the message has none)",
            )
        attachments: tuple[AttachmentPlan, ...] = ()
        if request.attachments:
            planned = self._plan_attachments(
                request.attachments, syntax, converting, address, trace
            )
            if planned is None:
                return self._reject(Reason.NO_ATTACHMENT_TYPE, address, day, trace)
            attachments = planned
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

    def _attachment_warnings(
        self, attachments: tuple[Attachment, ...], converting: bool, trace: _Trace
    ) -> None:
        """The findings on each attachment that never refuse a message by themselves."""
        link_rejected = converting and self.policy.limits.reject_link_attachments
        for index, attachment in enumerate(attachments, 1):
            sniffed = attachment.sniffed_type
            if sniffed and sniffed != attachment.mime_type:
                trace.warn(
                    WarningCode.ATTACHMENT_TYPE_MISMATCH,
                    f"{_attachment_name(index, attachment)}: its bytes are {sniffed}"
                    + (" (no type declared)" if not attachment.mime_type else "")
                    + (
                        f"; converted as {sniffed}"
                        if converting or not attachment.mime_type
                        else f"; delivered unchanged, labelled {attachment.mime_type}, which "
                        "the receiver may fail to open"
                    ),
                )
            content = attachment.content
            if content is AttachmentContent.LINK and not link_rejected:
                trace.warn(
                    WarningCode.ATTACHMENT_LINK,
                    f"{_attachment_name(index, attachment)} is a link only (no data): "
                    + (
                        "converted without it (a conversion cannot fetch it)"
                        if converting
                        else "delivered as a link; the receiver must fetch it"
                    ),
                )
            elif content is AttachmentContent.NONE and not converting:
                trace.warn(
                    WarningCode.ATTACHMENT_WITHOUT_CONTENT,
                    f"{_attachment_name(index, attachment)} has neither data nor a url",
                )

    def _plan_attachments(
        self,
        attachments: tuple[Attachment, ...],
        syntax: str,
        converting: bool,
        address: Address,
        trace: _Trace,
    ) -> tuple[AttachmentPlan, ...] | None:
        """How each attachment travels; None when the receiver cannot take them."""
        # A conversion drops link-only attachments (on_attachment_link = "warn"; "reject" has
        # refused the message before this).
        travelling: list[tuple[int, Attachment]] = []
        for index, a in enumerate(attachments, 1):
            if converting and a.content is AttachmentContent.LINK:
                trace.add("attachment", "left-out", f"{_attachment_name(index, a)}: a link only")
            else:
                travelling.append((index, a))
        if not travelling:
            return ()
        carrier = self._attachment_carrier(syntax, address, trace)
        if carrier is None:
            return None
        plans = []
        for index, a in travelling:
            # A conversion writes the type anew (the bytes' own where they show one); native
            # delivery passes the message on unchanged, label and all.
            travels_as = (
                (a.sniffed_type or a.mime_type) if converting else (a.mime_type or a.sniffed_type)
            ) or ""
            trace.add(
                "attachment",
                a.content.value,
                f"{_attachment_name(index, a)}: {a.size} bytes, bytes show "
                f"{a.sniffed_type or 'no known type'}, travels as {travels_as or 'no type'} "
                + ("inline" if carrier == "inline" else f"in a {carrier}"),
            )
            plans.append(
                AttachmentPlan(
                    mime_type=travels_as,
                    size=a.size,
                    carried_as=carrier,
                    index=index,
                    title=a.title,
                    declared_type=a.mime_type or None,
                    sniffed_type=a.sniffed_type,
                    content=a.content,
                )
            )
        return tuple(plans)

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
        """The limits of a converted message, in this order: attachments (too many, without
        content, links, types, size), then the legacy subject and text."""
        limits = self.policy.limits
        attachments = request.attachments
        if attachments:
            reason = self._check_attachment_limits(attachments, trace)
            if reason is not None:
                return reason
        total = request.total_size
        if total is None and attachments:
            total = sum(a.size for a in attachments if _has_content(a))
        if total is not None and total > limits.max_total_bytes:
            trace.add("limits", "too-large", f"{total} bytes > {limits.max_total_bytes}")
            return Reason.TOO_LARGE
        legacy = syntax != "fhir"
        if request.category_coded is False:
            if legacy and limits.reject_missing_category:
                trace.add(
                    "limits",
                    "category-missing",
                    "the category has no code: the legacy subject is built from it",
                )
                return Reason.CATEGORY_MISSING
            trace.warn(
                WarningCode.CATEGORY_MISSING,
                "the message's category has no code"
                + (
                    ": the legacy subject, built from the category, will be incomplete"
                    if legacy
                    else ""
                ),
            )
        if legacy:
            subject = request.legacy_subject()
            if subject is not None and len(subject) > limits.legacy_subject_max:
                detail = f"{len(subject)} characters > {limits.legacy_subject_max}"
                if limits.reject_long_subject:
                    trace.add("limits", "subject-too-long", detail)
                    return Reason.SUBJECT_TOO_LONG
                trace.warn(
                    WarningCode.SUBJECT_TRUNCATED,
                    f"subject will be cut to {limits.legacy_subject_max} characters ({detail})",
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
                    "a receiver that still has it must answer with a negative receipt",
                )
        trace.add("limits", "ok", "within the conversion limits")
        return None

    def _check_attachment_limits(
        self, attachments: tuple[Attachment, ...], trace: _Trace
    ) -> Reason | None:
        limits = self.policy.limits
        if len(attachments) > limits.max_attachments:
            trace.add(
                "limits", "too-many-attachments", f"{len(attachments)} > {limits.max_attachments}"
            )
            return Reason.TOO_MANY_ATTACHMENTS
        empty: list[str] = []
        links: list[str] = []
        bad: list[str] = []
        for index, a in enumerate(attachments, 1):
            if a.content is AttachmentContent.NONE:
                empty.append(_attachment_name(index, a))
            elif a.content is AttachmentContent.LINK:
                links.append(_attachment_name(index, a))
            elif (a.sniffed_type or a.mime_type) not in limits.allowed_mime_types:
                bad.append(
                    _attachment_name(index, a)
                    + (f" whose bytes are {a.sniffed_type}" if a.sniffed_type else "")
                )
        if empty:
            trace.add(
                "limits",
                "without-content",
                "; ".join(empty) + ": neither data nor a url, nothing to convert",
            )
            return Reason.ATTACHMENT_WITHOUT_CONTENT
        if links and limits.reject_link_attachments:
            trace.add(
                "limits",
                "link-not-convertible",
                "; ".join(links) + ": a link only, which a conversion cannot fetch",
            )
            return Reason.ATTACHMENT_LINK_NOT_CONVERTIBLE
        if bad:
            trace.add("limits", "mime-not-allowed", "; ".join(bad))
            return Reason.MIME_NOT_ALLOWED
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


def _request_reads(request: RouteRequest) -> list[ReadIdentifier]:
    """The receiver as the caller gave it (receiver_gln, receiver_sor_id), read as identifiers
    under the official systems (what :func:`read_identifier` makes of them, without parsing
    the system: this is every decision's path)."""
    reads = []
    if request.receiver_gln:
        gln = request.receiver_gln
        value = gln.strip()
        reads.append(
            ReadIdentifier(
                ReceiverIdentifier(IdentifierSource.REQUEST, GLN_SYSTEMS[0], gln),
                IdentifierKind.GLN,
                SystemSpelling.OFFICIAL,
                value if len(value) == 13 and value.isascii() and value.isdigit() else None,
            )
        )
    if request.receiver_sor_id:
        reads.append(
            read_identifier(
                ReceiverIdentifier(IdentifierSource.REQUEST, SOR_ID_SYSTEM, request.receiver_sor_id)
            )
        )
    return reads
