"""The routing facts of a MedCom FHIR message Bundle, as a gateway holds it.

:func:`parse_bundle` reads a FHIR message Bundle in XML (namespace ``http://hl7.org/fhir``) or
JSON - a CareCommunication, an Acknowledgement or a HospitalNotification - and answers what
routing needs (DOMAIN.md §3.1): who the receiver is (every identifier of the Organization that
``MessageHeader.destination.receiver`` points at, and the destination's SOR ``endpoint``, as
written: :mod:`soredi_sync.domain.identifiers` reads them), what the message is (its FHIR
message type and business message, from ``MessageHeader.definition`` or ``eventCoding``), and
how big it is (text characters, attachments with declared type, the type their first bytes
show, size and how their content travels, the whole bundle). :meth:`BundleFacts.to_route_request`
turns that into a :class:`~soredi_sync.domain.routing.RouteRequest`.

Anything else - a message event not accepted, an OIOXML ``Emessage``, a document Bundle, broken
XML/JSON - is refused with :class:`InvalidBundle`, whose message says what is wrong and whose
:attr:`InvalidBundle.problem` says it to a program.

Bundles can be 100 MB, nearly all of it base64 attachment data. XML is read with
``lxml.etree.iterparse`` and each element is dropped from the tree as soon as it has been read;
an attachment's size is computed from the length of its base64 text without decoding it, and
its type is sniffed from its first few base64 characters alone.
Hardening as in :mod:`soredi_sync.parsing.sor_xml`: entities are never resolved, no DTD is
loaded, nothing is fetched, and a DOCTYPE is refused - here by a scan of the prolog *before*
libxml2 sees the document, because ``huge_tree`` (needed for attachments over 10 MB) lifts
libxml2's own limits.

What a bundle may cost is bounded by more than its bytes (:class:`BundleBudget`): its elements
(XML elements; JSON object members and array items) and its nesting depth are counted while it
is read, and a bundle over either is refused as soon as it passes it, before the rest is read.
XML is counted on iterparse's events; JSON by a scan of its structure (strings are skipped with
``str.find``, nothing is built) before ``json.loads`` builds it, so memory follows the bundle's
bytes - nearly all of it attachment data - and never its element count. The message start is
judged early too: once the first entry is read (in XML, once its resource's name is), a Bundle
whose first entry is not a MessageHeader, or whose event is not accepted, is refused without
reading the rest.
"""

from __future__ import annotations

import base64
import binascii
import enum
import io
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from lxml import etree

from soredi_sync.domain.identifiers import GLN_SYSTEMS as _GLN_SYSTEMS
from soredi_sync.domain.identifiers import (
    LEGACY_GLN_SYSTEM,
    IdentifierKind,
    IdentifierSource,
    ReceiverIdentifier,
    read_identifier,
)
from soredi_sync.domain.identifiers import SOR_ID_SYSTEM as _SOR_ID_SYSTEM
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, AttachmentContent, RouteRequest
from soredi_sync.errors import SorediError

FHIR_NAMESPACE = "http://hl7.org/fhir"
# The official systems (domain.identifiers reads every spelling; these are for messages).
GLN_SYSTEMS = frozenset(_GLN_SYSTEMS)
SOR_ID_SYSTEM = _SOR_ID_SYSTEM
CARE_COMMUNICATION_EVENT = "care-communication-message"
ACKNOWLEDGEMENT_EVENT = "acknowledgement-message"
HOSPITAL_NOTIFICATION_EVENT = "hospital-notification-message"
CATEGORY_SYSTEM = (
    "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-careCommunication-categoryCodes"
)

# MessageHeader.eventCoding.code -> the FHIR SOR-EDI message type that advertises it
# (reference: MedCom's FHIR SOR-EDI code system), and -> our business message, i.e. the
# business_message of that type in config/message-types.tsv. The fallback when parse_bundle is
# given no message-type registry (whose definitions column says the same, and more).
EVENT_MESSAGE_TYPES: Mapping[str, str] = {
    CARE_COMMUNICATION_EVENT: "FDIS91",
    HOSPITAL_NOTIFICATION_EVENT: "FDIS20",
    ACKNOWLEDGEMENT_EVENT: "FCTL",
}
EVENT_BUSINESS_MESSAGES: Mapping[str, str] = {
    CARE_COMMUNICATION_EVENT: "correspondence",
    HOSPITAL_NOTIFICATION_EVENT: "hospital-notification",
    ACKNOWLEDGEMENT_EVENT: "acknowledgement",
}
KNOWN_EVENTS = tuple(EVENT_BUSINESS_MESSAGES)

# The magic numbers of the attachment types conversion allows (config/routing.toml
# [limits] allowed_mime_types): what an attachment's first bytes show it to be.
MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)
SNIFF_BYTES = max(len(magic) for magic, _ in MAGIC_NUMBERS)

XML_CONTENT_TYPES = frozenset(
    {"application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"}
)
JSON_CONTENT_TYPES = frozenset(
    {"application/fhir+json", "application/json", "application/json+fhir"}
)

_UTF8_BOM = b"\xef\xbb\xbf"
_FHIR_TAG_PREFIX = "{" + FHIR_NAMESPACE + "}"
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_RELATIVE_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_DESTINATION_USE = "medcom-messaging-destinationUseExtension"
_NO_WHITESPACE = str.maketrans("", "", " \t\r\n")
_NOT_BLANK = re.compile(r"[^ \t\r\n]")
_CORRESPONDENCE = EVENT_BUSINESS_MESSAGES[CARE_COMMUNICATION_EVENT]


class BundleProblem(enum.StrEnum):
    """What is wrong with a refused bundle, for programs (the message says it for people)."""

    # The body cannot be read as FHIR XML/JSON at all (HTTP 400).
    EMPTY = "empty"
    NOT_XML_OR_JSON = "not-xml-or-json"
    CONTENT_TYPE_MISMATCH = "content-type-mismatch"
    ENCODING = "encoding"
    MALFORMED = "malformed"
    DOCTYPE = "doctype"
    # Readable, but not a message we can route (HTTP 422).
    OIOXML = "oioxml"
    NOT_A_BUNDLE = "not-a-bundle"
    NOT_A_MESSAGE = "not-a-message"
    NO_MESSAGE_HEADER = "no-message-header"
    NO_EVENT = "no-event"
    WRONG_EVENT = "wrong-event"
    NO_RECEIVER = "no-receiver"
    RECEIVER_NOT_FOUND = "receiver-not-found"
    RECEIVER_NOT_ORGANIZATION = "receiver-not-organization"
    RECEIVER_UNIDENTIFIED = "receiver-unidentified"
    NO_COMMUNICATION = "no-communication"
    INVALID_ATTACHMENT = "invalid-attachment"
    # Over the bundle budget (HTTP 422): refused while reading, before the rest is read.
    TOO_MANY_ELEMENTS = "too-many-elements"
    TOO_DEEP = "too-deep"
    # Legacy input (parsing.oioxml, parsing.edifact; HTTP 422): readable, but no message type
    # the registry knows, or not a message routing can read.
    UNKNOWN_MESSAGE_TYPE = "unknown-message-type"
    NOT_A_MESSAGE_FILE = "not-a-message-file"


_UNREADABLE = frozenset(
    {
        BundleProblem.EMPTY,
        BundleProblem.NOT_XML_OR_JSON,
        BundleProblem.CONTENT_TYPE_MISMATCH,
        BundleProblem.ENCODING,
        BundleProblem.MALFORMED,
        BundleProblem.DOCTYPE,
    }
)


class InvalidBundle(SorediError):
    """The body is not a message Bundle (or, from the legacy parsers, a message) that can be
    routed.

    ``problem`` names the fault; ``unreadable`` is True when the body could not even be read
    as FHIR XML/JSON (a 400 rather than a 422); ``event_code`` is set for a refused event.
    """

    def __init__(self, problem: BundleProblem, message: str, *, event_code: str | None = None):
        super().__init__(message)
        self.problem = problem
        self.event_code = event_code

    @property
    def unreadable(self) -> bool:
        return self.problem in _UNREADABLE


# Every syntax's parser refuses input with these (the names say "bundle" for history).
MessageProblem = BundleProblem
InvalidMessage = InvalidBundle


@dataclass(frozen=True, slots=True)
class BundleBudget:
    """What reading one bundle may cost beyond its bytes (``[api] max_bundle_elements`` and
    ``max_bundle_depth``). A real CareCommunication has a few hundred elements, about 10 deep.

    :param max_elements: XML elements, or JSON object members and array items
    :param max_depth: nested XML elements, or nested JSON objects and arrays
    """

    max_elements: int = 100_000
    max_depth: int = 64

    def too_many(self) -> InvalidBundle:
        return InvalidBundle(
            BundleProblem.TOO_MANY_ELEMENTS,
            f"the bundle has more than {self.max_elements:,} elements, its element budget "
            "(max_bundle_elements): refused before reading the rest",
        )

    def too_deep(self) -> InvalidBundle:
        return InvalidBundle(
            BundleProblem.TOO_DEEP,
            f"the bundle nests deeper than {self.max_depth} levels, its depth budget "
            "(max_bundle_depth): refused before reading the rest",
        )


DEFAULT_BUDGET = BundleBudget()


@dataclass(frozen=True, slots=True)
class BundleFacts:
    """What routing needs to know of one message Bundle.

    ``message_type`` is the FHIR SOR-EDI type a receiver must advertise to take the message
    natively (``FDIS91``, ``FCTL``, ``FDIS20``) and ``business_message`` its business message;
    ``definition`` is ``MessageHeader.definition`` as written (a canonical, maybe with
    ``|version``). ``receiver_identifiers`` are every identifier of the receiver Organization
    and the destination's endpoint, as written; ``receiver_gln`` and ``receiver_sor_id`` are
    the first usable GLN and SOR-ID among them, in any spelling (for logs). ``category_coded``
    is False for a Communication whose category carries no code (or a CareCommunication with
    no category), None for a message without a Communication.
    ``text_length`` is the characters of every ``contentString`` payload together;
    ``attachments`` are the ``contentAttachment`` payloads (declared MIME type lower-cased
    without parameters, "" when none; size in bytes as declared or, failing that, as decoded
    from the base64 data; the type the first bytes show; how the content travels: data, link,
    none); ``total_size`` is the length in bytes of the bundle as received. ``notes`` says what
    was odd but not fatal (an attachment without size or data, an unresolved sender, ...).
    """

    bundle_id: str | None
    message_id: str | None
    event_code: str
    message_type: str
    business_message: str
    receiver_gln: str | None
    receiver_sor_id: str | None
    sender_gln: str | None
    sender_sor_id: str | None
    category: str | None
    topic: str | None
    text_length: int
    attachments: tuple[Attachment, ...]
    total_size: int
    wire_format: str  # "xml" or "json"
    notes: tuple[str, ...] = ()
    definition: str | None = None
    receiver_identifiers: tuple[ReceiverIdentifier, ...] = ()
    category_coded: bool | None = None

    @property
    def syntax(self) -> str:
        """The sender syntax of every bundle: ``fhir``."""
        return "fhir"

    def legacy_subject(self, category_names: Mapping[str, str]) -> str | None:
        """The XDIS91 subject a conversion makes: category name and topic, comma-separated.

        :param category_names: category code -> the name the legacy message shows (the Danish
            display of MedCom's category code list); an unknown code is shown as itself
        """
        name = category_names.get(self.category, self.category) if self.category else None
        parts = [part for part in (name, self.topic) if part]
        return ", ".join(parts) if parts else None

    def to_route_request(
        self,
        sender_syntax: str | None = None,
        at: date | None = None,
        *,
        category_names: Mapping[str, str] | None = None,
    ) -> RouteRequest:
        """The routing question for this message.

        :param sender_syntax: the syntax the sender is taken to use; None: ``fhir``
        :param category_names: when given, the request carries the exact legacy subject
            (:meth:`legacy_subject`); otherwise the resolver builds one from the category code
            and topic
        """
        return RouteRequest(
            business_message=self.business_message,
            sender_syntax=sender_syntax or self.syntax,
            receiver_gln=self.receiver_gln,
            receiver_sor_id=self.receiver_sor_id,
            text_length=self.text_length,
            subject=self.legacy_subject(category_names) if category_names is not None else None,
            category=self.category,
            topic=self.topic,
            attachments=self.attachments,
            total_size=self.total_size,
            at=at,
            message_id=self.message_id,
            receiver_identifiers=self.receiver_identifiers,
            category_coded=self.category_coded,
        )


def parse_bundle(
    data: bytes,
    content_type: str | None = None,
    *,
    allow_events: Collection[str] = KNOWN_EVENTS,
    budget: BundleBudget | None = None,
    message_types: MessageTypeRegistry | None = None,
) -> BundleFacts:
    """Read the routing facts of a message Bundle in FHIR XML or FHIR JSON.

    :param data: the bundle exactly as received (a UTF-8 BOM is allowed)
    :param content_type: the HTTP Content-Type; XML for ``application/fhir+xml``,
        ``application/xml``, ``text/xml``, JSON for ``application/fhir+json``,
        ``application/json``; parameters are ignored. None or anything else: decided by the
        first non-blank byte
    :param allow_events: the ``MessageHeader.eventCoding`` codes accepted; by default every
        known event (CareCommunication, Acknowledgement, HospitalNotification). Each must be a
        key of :data:`EVENT_BUSINESS_MESSAGES` or an event ``message_types`` knows
    :param budget: elements and depth allowed; default :data:`DEFAULT_BUDGET`
    :param message_types: when given, the message type is the one the registry names for
        ``MessageHeader.definition`` (``|version`` ignored) and for the event code - the
        event's when they disagree, with a note - and the business message is that type's;
        without it, :data:`EVENT_MESSAGE_TYPES` and :data:`EVENT_BUSINESS_MESSAGES`
    :raises InvalidBundle: the body is not such a message Bundle (see :class:`BundleProblem`),
        or is over ``budget``
    :raises ValueError: ``allow_events`` names an event with no business message
    """
    unknown = sorted(
        event
        for event in set(allow_events) - EVENT_BUSINESS_MESSAGES.keys()
        if message_types is None or message_types.code_for_definition(event) is None
    )
    if unknown:
        raise ValueError(f"no business message is known for event(s) {', '.join(unknown)}")
    wire_format = _detect_format(data, content_type)
    events = frozenset(allow_events)
    budget = budget or DEFAULT_BUDGET
    if wire_format == "xml":
        bundle = _read_xml(data, budget, events)
    else:
        bundle = _read_json(data, budget, events)
    return _Extractor(bundle, events, message_types).facts(len(data), wire_format)


def base64_decoded_size(text: str) -> int:
    """The number of bytes ``text`` (base64, whitespace allowed) decodes to, without decoding."""
    return _Base64Data.of(text).size


def sniff_mime_type(head: bytes) -> str | None:
    """The allowed attachment type whose magic number ``head`` (the first bytes) starts with:
    ``application/pdf``, ``image/png``, ``image/jpeg``, ``image/gif``, ``image/tiff`` or
    ``image/bmp``; None for anything else."""
    for magic, mime_type in MAGIC_NUMBERS:
        if head.startswith(magic):
            return mime_type
    return None


def base64_head(text: str, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes (or fewer) ``text`` (base64, whitespace allowed) decodes to,
    decoding only its first few characters; b"" when they are not base64."""
    wanted = -(-size // 3) * 4  # whole groups of 4 characters
    first = _NOT_BLANK.search(text)  # in C, without copying leading blanks
    if first is None:
        return b""
    start, taken = first.start(), max(wanted * 2, 64)
    while True:
        compact = text[start : start + taken].translate(_NO_WHITESPACE)
        if len(compact) >= wanted or start + taken >= len(text):
            break
        taken *= 4  # blanks between the first characters: read further
    compact = compact[:wanted]
    compact = compact[: len(compact) - len(compact) % 4]
    try:
        return base64.b64decode(compact, validate=True)[:size]
    except (binascii.Error, ValueError):
        return b""


# -- format detection -------------------------------------------------------------------------


def _detect_format(data: bytes, content_type: str | None) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and 0 in data[:2]):
        raise InvalidBundle(
            BundleProblem.ENCODING,
            "the body is UTF-16 or UTF-32 encoded: FHIR XML and JSON must be UTF-8",
        )
    start = 3 if data.startswith(_UTF8_BOM) else 0
    first_at = _WHITESPACE.match(data, start)
    begin = first_at.end() if first_at else start
    if begin >= len(data):
        raise InvalidBundle(BundleProblem.EMPTY, "the body is empty: expected a FHIR Bundle")
    first = data[begin : begin + 1]
    sniffed = "xml" if first == b"<" else "json" if first in (b"{", b"[") else None
    declared = None
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in XML_CONTENT_TYPES:
            declared = "xml"
        elif media_type in JSON_CONTENT_TYPES:
            declared = "json"
    if declared is not None and sniffed is not None and declared != sniffed:
        raise InvalidBundle(
            BundleProblem.CONTENT_TYPE_MISMATCH,
            f"the content type {content_type!r} says {declared.upper()} "
            f"but the body is {sniffed.upper()} (it starts with {first.decode()!r})",
        )
    found = declared or sniffed
    if found is None:
        preview = data[begin : begin + 20]
        raise InvalidBundle(
            BundleProblem.NOT_XML_OR_JSON,
            f"the body is neither XML nor JSON (it starts with {preview!r}): "
            "expected a FHIR Bundle",
        )
    return found


# -- JSON -------------------------------------------------------------------------------------


def _read_json(data: bytes, budget: BundleBudget, allow_events: frozenset[str]) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidBundle(
            BundleProblem.ENCODING, f"the JSON is not valid UTF-8 (at byte {exc.start})"
        ) from exc
    _JsonScan(text, budget, allow_events).run()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidBundle(
            BundleProblem.MALFORMED,
            f"malformed JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
        ) from exc
    except RecursionError as exc:
        raise InvalidBundle(BundleProblem.MALFORMED, "malformed JSON: nested too deeply") from exc
    if not isinstance(document, dict):
        raise InvalidBundle(
            BundleProblem.NOT_A_BUNDLE,
            f"the JSON is a {type(document).__name__}, not a FHIR Bundle object",
        )
    resource_type = document.get("resourceType")
    if resource_type != "Bundle":
        what = f"a {resource_type}" if isinstance(resource_type, str) else "no resourceType"
        raise InvalidBundle(
            BundleProblem.NOT_A_BUNDLE, f"the JSON resource has {what}, not a FHIR Bundle"
        )
    return document


# Every character the scan stops at; anything else (blanks, numbers, literals) is skipped by
# the regular expression in C.
_JSON_STRUCTURE = re.compile(r'["{}\[\],:]')
_ROOT_MEMBERS = frozenset({"resourceType", "type", "entry"})


class _JsonScan:
    """One pass over the JSON's structure that builds nothing: counts elements (object members
    and array items) and depth against the budget, and, as soon as the first entry of the
    root's ``entry`` array has been passed, reads that entry alone and judges the message
    start (:func:`_message_start`). Malformed JSON is left to ``json.loads`` to describe."""

    def __init__(self, text: str, budget: BundleBudget, allow_events: frozenset[str]) -> None:
        self.text = text
        self.budget = budget
        self.allow_events = allow_events

    def run(self) -> None:
        text = self.text
        search = _JSON_STRUCTURE.search
        find = text.find
        max_elements, max_depth = self.budget.max_elements, self.budget.max_depth
        stack: list[str] = []
        elements = 0
        pos = 0
        # The root object's short string members (resourceType, type) and where its entries are.
        root: dict[str, str] = {}
        last_key: str | None = None  # the root's member whose value comes next
        string: str | None = None  # the last short string read at the root's level
        in_entries = False
        first_entry = -1  # where the first entry starts, until it has been judged
        while True:
            found = search(text, pos)
            if found is None:
                return
            at = found.start()
            char = text[at]
            pos = at + 1
            if char == '"':
                end = find('"', pos)
                while end > 0 and text[end - 1] == "\\" and _escaped(text, end):
                    end = find('"', end + 1)
                if end < 0:
                    return  # unterminated: json.loads says where
                at_root = len(stack) == 1 and stack[0] == "{"
                if at_root and end - pos <= 64:
                    string = text[pos:end]
                    if last_key is not None:
                        root.setdefault(last_key, string)
                        last_key = None
                pos = end + 1
            elif char == ":":
                elements += 1
                if len(stack) == 1:
                    last_key = string if string in _ROOT_MEMBERS else None
            elif char == ",":
                if stack and stack[-1] == "[":
                    elements += 1
                elif len(stack) == 1:
                    last_key = string = None
            elif char == "{" or char == "[":
                stack.append(char)
                depth = len(stack)
                if depth > max_depth:
                    raise self.budget.too_deep()
                if char == "[":
                    elements += 1
                    if depth == 2 and last_key == "entry":
                        in_entries = first_entry == -1
                elif depth == 3 and in_entries and first_entry == -1:
                    first_entry = at
                if depth == 2:
                    last_key = None
            elif stack:  # } or ]
                stack.pop()
                if in_entries and len(stack) == 2 and char == "}" and first_entry >= 0:
                    self._judge_first_entry(root, text[first_entry : at + 1])
                    in_entries = False
                elif in_entries and len(stack) == 1:
                    in_entries = False
            if elements > max_elements:
                raise self.budget.too_many()

    def _judge_first_entry(self, root: dict[str, str], entry_text: str) -> None:
        # Judged early only when the root said it is a Bundle and gave its type before its
        # entries, as FHIR JSON writers do; otherwise the whole bundle is read and judged.
        if root.get("resourceType") != "Bundle" or "type" not in root:
            return
        try:
            entry = json.loads(entry_text)
        except (json.JSONDecodeError, RecursionError):
            return  # json.loads of the whole body says what is wrong, and where
        _message_start({**root, "entry": [entry]}, self.allow_events)


def _escaped(text: str, quote: int) -> bool:
    """Whether the quote at ``quote`` is escaped (an odd number of backslashes before it)."""
    start = quote - 1
    while start >= 0 and text[start] == "\\":
        start -= 1
    return (quote - 1 - start) % 2 == 1


# -- XML --------------------------------------------------------------------------------------


class _Base64Data:
    """What is kept of an attachment's base64 ``data``: its decoded size and its first few
    bytes (enough for :func:`sniff_mime_type`), never the data."""

    __slots__ = ("size", "malformed", "head")

    def __init__(self, size: int, malformed: bool, head: bytes = b"") -> None:
        self.size = size
        self.malformed = malformed
        self.head = head

    @classmethod
    def of(cls, text: str) -> _Base64Data:
        # Whitespace is allowed inside base64 (and XML attribute normalisation turns line
        # breaks into spaces); str.count runs in C, so 100 MB costs milliseconds.
        chars = len(text) - sum(text.count(ws) for ws in " \t\r\n")
        end = len(text)
        while end and text[end - 1] in " \t\r\n":  # not rstrip(): that copies 100 MB
            end -= 1
        tail = text[max(end - 2, 0) : end]
        padding = 2 if tail == "==" else 1 if tail.endswith("=") else 0
        # Unpadded base64 (2 or 3 chars in the last group) decodes to 1 or 2 bytes; floor
        # handles it. A last group of 1 char cannot be base64.
        size = max(chars * 3 // 4 - padding, 0)
        return cls(size, chars % 4 == 1, base64_head(text))

    @property
    def sniffed_type(self) -> str | None:
        return sniff_mime_type(self.head)


class _Frame:
    """One open FHIR element while the XML is read."""

    __slots__ = ("name", "value", "url", "children")

    def __init__(self, name: str, value: Any, url: str | None) -> None:
        self.name = name
        self.value = value
        self.url = url
        self.children: dict[str, list[Any]] = {}

    def node(self) -> Any:
        """The element in the shape of FHIR JSON, except that every child is a list."""
        if self.name[:1].isupper():  # a resource: Bundle, MessageHeader, Organization, ...
            return {"resourceType": self.name, **self.children}
        if self.value is not None:  # a primitive (its extensions are not needed)
            return self.value
        if len(self.children) == 1 and self.url is None:
            ((name, items),) = self.children.items()
            if name[:1].isupper() and len(items) == 1:  # <resource><Organization>
                return items[0]
        node: dict[str, Any] = dict(self.children)
        if self.url is not None:
            node["url"] = self.url
        return node


_SKIP = _Frame("", None, None)  # narrative XHTML and anything else outside the FHIR namespace


def xml_root_at(data: bytes, *, what: str = "FHIR XML") -> int:
    """Where the root element starts, past the XML declaration, comments and processing
    instructions; ``len(data)`` when there is nothing but those. This is how a DOCTYPE is refused
    before libxml2 parses anything (with huge_tree, its limits are off).

    :param what: the kind of document, for the refusal ("FHIR XML", "an OIOXML message")
    :raises InvalidMessage: ``DOCTYPE`` for a document type declaration (entity expansion and
        external fetches are never allowed), ``MALFORMED`` for another ``<!`` declaration
        before the root
    """
    pos = 3 if data.startswith(_UTF8_BOM) else 0
    while True:
        found = _WHITESPACE.match(data, pos)
        pos = found.end() if found else pos
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
        elif data.startswith(b"<!", pos):
            if data[pos + 2 : pos + 9].upper() == b"DOCTYPE":
                raise InvalidBundle(
                    BundleProblem.DOCTYPE,
                    "the XML has a DOCTYPE declaration, which is refused (entity expansion "
                    f"and external fetches are not allowed; {what} never has one)",
                )
            raise InvalidBundle(
                BundleProblem.MALFORMED,
                f"malformed XML: unexpected {data[pos : pos + 12]!r} before the root element",
            )
        else:
            return min(pos, len(data))  # the root element (or garbage, which libxml2 reports)
        if end < 0:
            return len(data)  # unterminated: libxml2 reports it
        pos = end + 2 if data[end] == ord("?") else end + 3


def hardened_iterparse(data: bytes, encoding: str | None = None) -> Any:
    """``iterparse`` start and end events over ``data`` that never resolve an entity, load a
    DTD or touch the network. ``huge_tree`` lets attachments over 10 MB through; that is safe
    only because the caller has refused a DOCTYPE with :func:`xml_root_at` first."""
    return etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
        encoding=encoding,
    )


def _read_xml(data: bytes, budget: BundleBudget, allow_events: frozenset[str]) -> dict[str, Any]:
    xml_root_at(data)
    context = hardened_iterparse(data)
    stack: list[_Frame] = []
    bundle: Any = None
    elements = 0
    max_elements, max_depth = budget.max_elements, budget.max_depth
    first_entry = True  # until the first entry of the Bundle has been judged
    try:
        for event, elem in context:
            if event == "start":
                if not stack and bundle is None:
                    _check_xml_root(elem, context)
                elements += 1
                if elements > max_elements:
                    raise budget.too_many()
                if len(stack) >= max_depth:
                    raise budget.too_deep()
                tag = elem.tag
                if (stack and stack[-1] is _SKIP) or not tag.startswith(_FHIR_TAG_PREFIX):
                    stack.append(_SKIP)
                    continue
                name = tag[len(_FHIR_TAG_PREFIX) :]
                if first_entry and len(stack) == 3 and stack[2].name == "resource":
                    # The first entry's resource is named: judge it before reading it.
                    _judge_early(stack[0], {"resource": [{"resourceType": name}]}, allow_events)
                value: Any = elem.get("value")
                if name == "data" and value is not None:
                    value = _Base64Data.of(value)
                stack.append(_Frame(name, value, elem.get("url")))
                continue
            frame = stack.pop()
            if frame is not _SKIP:
                node = frame.node()
                if stack:
                    stack[-1].children.setdefault(frame.name, []).append(node)
                    if first_entry and len(stack) == 1 and frame.name == "entry":
                        _judge_early(stack[0], node, allow_events)
                        first_entry = False
                else:
                    bundle = node
            # Drop what has been read, so a 100 MB bundle is not kept twice.
            elem.clear(keep_tail=True)
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise InvalidBundle(BundleProblem.MALFORMED, _syntax_error(exc)) from exc
    if not isinstance(bundle, dict):  # pragma: no cover - libxml2 reports a missing root
        raise InvalidBundle(BundleProblem.MALFORMED, "malformed XML: no root element")
    return bundle


def _judge_early(root: _Frame, entry: Any, allow_events: frozenset[str]) -> None:
    """The message start, judged on the first entry as soon as it is read, when the Bundle's
    type came before its entries as FHIR XML orders them (otherwise at the end, in full)."""
    if "type" in root.children:
        _message_start({"resourceType": "Bundle", **root.children, "entry": [entry]}, allow_events)


def _syntax_error(exc: etree.XMLSyntaxError) -> str:
    """libxml2's message. iterparse can report a bare "no element found" where the parser's
    last error (its log is per thread, so the newest entry is this parse's) says more."""
    line: Any = exc.lineno or "?"
    message = exc.msg
    last = getattr(exc.error_log, "last_error", None)
    if message.startswith("no element found") and last is not None:
        line, message = last.line, last.message
    return f"malformed XML (line {line}): {message}"


def _check_xml_root(elem: Any, context: Any) -> None:
    docinfo = elem.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # pragma: no cover - prolog scan
        raise InvalidBundle(BundleProblem.DOCTYPE, "the XML has a DOCTYPE declaration")
    namespace, localname = _split_tag(elem.tag)
    if ":" in localname:
        # libxml2 (in recover mode for an undeclared prefix) keeps "a:Bundle" as the name.
        raise InvalidBundle(
            BundleProblem.MALFORMED,
            f"malformed XML: the root element {localname!r} uses an undeclared namespace prefix",
        )
    if localname == "Emessage":
        raise InvalidBundle(
            BundleProblem.OIOXML,
            f"OIOXML message ({_describe_emessage(context)}) — not a FHIR Bundle: "
            "a CareCommunication must be a FHIR message Bundle",
        )
    if localname != "Bundle" or namespace != FHIR_NAMESPACE:
        where = f" in namespace {namespace}" if namespace else " in no namespace"
        raise InvalidBundle(
            BundleProblem.NOT_A_BUNDLE,
            f"the XML root is {localname}{where}, not a FHIR Bundle "
            f"(Bundle in namespace {FHIR_NAMESPACE})",
        )


def _split_tag(tag: Any) -> tuple[str | None, str]:
    """(namespace, local name) of an element's tag, never raising (unlike ``etree.QName``,
    which refuses names lxml keeps for undeclared prefixes)."""
    text = tag if isinstance(tag, str) else ""
    if text.startswith("{"):
        namespace, _, localname = text[1:].partition("}")
        return namespace, localname
    return None, text


def _describe_emessage(context: Any) -> str:
    """``Emessage/ClinicalEmail, XDIS91``: the letter element and its statistical code."""
    letter: str | None = None
    code: str | None = None
    depth = 1
    try:
        for event, elem in context:
            local = _split_tag(elem.tag)[1]
            if event == "start":
                depth += 1
                if depth == 2 and letter is None and local != "Envelope":
                    letter = local
            else:
                depth -= 1
                if local == "StatisticalCode" and code is None and elem.text:
                    code = elem.text.strip()
                elem.clear(keep_tail=True)
            if (letter is not None and code is not None) or depth == 0:
                break
    except etree.XMLSyntaxError:
        pass  # it is OIOXML either way
    path = f"Emessage/{letter}" if letter else "Emessage"
    return f"{path}, {code}" if code else path


# -- the facts --------------------------------------------------------------------------------


def _items(node: Any, key: str) -> list[Any]:
    """A child as a list, whether JSON has it single or repeated (XML nodes are lists)."""
    if not isinstance(node, dict):
        return []
    value = node.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(node: Any, key: str) -> Any:
    items = _items(node, key)
    return items[0] if items else None


def _text(node: Any, key: str) -> str | None:
    value = _first(node, key)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _kind(resource: Any) -> str:
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) else "resource without a resourceType"


def _identifiers_of(organization: Any) -> list[ReceiverIdentifier]:
    """Every identifier of an Organization that has a value, system and value as written."""
    found: list[ReceiverIdentifier] = []
    for identifier in _items(organization, "identifier"):
        value = _first(identifier, "value")
        if isinstance(value, int) and not isinstance(value, bool):  # a GLN as a JSON number
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            continue
        system = _first(identifier, "system")
        found.append(
            ReceiverIdentifier(
                IdentifierSource.ORGANIZATION, system if isinstance(system, str) else None, value
            )
        )
    return found


def _listing(identifiers: list[ReceiverIdentifier]) -> str:
    """What a receiver's identifiers are, for a refusal that names them all."""
    if not identifiers:
        return "no identifier and no endpoint"
    parts: list[str] = []
    for identifier in identifiers:
        if identifier.source is IdentifierSource.ENDPOINT:
            parts.append(f"the endpoint {identifier.value!r}, which names no SOR-ID")
            continue
        read = read_identifier(identifier)
        what = f"{identifier.value!r} under " + (
            repr(identifier.system) if identifier.system is not None else "no system"
        )
        if read.kind is not IdentifierKind.UNKNOWN:
            label = "GLN" if read.kind is IdentifierKind.GLN else "SOR-ID"
            what += f" (not a valid {label})"
        parts.append(what)
    return "; ".join(parts)


def _message_start(
    bundle: dict[str, Any], allow_events: frozenset[str]
) -> tuple[list[Any], dict[str, Any], str]:
    """The entries, the MessageHeader and its accepted event of a message Bundle.

    :raises InvalidBundle: not a message Bundle, no MessageHeader first, or an event not in
        ``allow_events``
    """
    bundle_type = _text(bundle, "type")
    if bundle_type != "message":
        raise InvalidBundle(
            BundleProblem.NOT_A_MESSAGE,
            f"Bundle.type is {bundle_type!r}, expected 'message'"
            if bundle_type
            else "the Bundle has no type; expected 'message'",
        )
    entries = _items(bundle, "entry")
    if not entries:
        raise InvalidBundle(
            BundleProblem.NO_MESSAGE_HEADER, "the Bundle has no entries: no MessageHeader"
        )
    header = _first(entries[0], "resource")
    if not isinstance(header, dict):
        raise InvalidBundle(
            BundleProblem.NO_MESSAGE_HEADER,
            "the first entry has no resource: a message Bundle starts with its MessageHeader",
        )
    if _kind(header) != "MessageHeader":
        raise InvalidBundle(
            BundleProblem.NO_MESSAGE_HEADER,
            f"the first entry is a {_kind(header)}, not a MessageHeader "
            "(a message Bundle starts with its MessageHeader)",
        )
    if len(header) == 1:  # only its name is known yet (XML, judged at the resource's start)
        return entries, header, ""
    return entries, header, _event(header, allow_events)


def _event(header: Any, allow_events: frozenset[str]) -> str:
    code = _text(_first(header, "eventCoding"), "code")
    if code is None:
        raise InvalidBundle(
            BundleProblem.NO_EVENT, "the MessageHeader has no eventCoding code: unknown message"
        )
    if code in allow_events:
        return code
    business = EVENT_BUSINESS_MESSAGES.get(code)
    what = f" (business message {business})" if business else ""
    if allow_events == {CARE_COMMUNICATION_EVENT}:
        message = f"{code} is not a CareCommunication message{what}"
    else:
        message = (
            f"{code}{what} is not one of the accepted events ({', '.join(sorted(allow_events))})"
        )
    raise InvalidBundle(BundleProblem.WRONG_EVENT, message, event_code=code)


class _Extractor:
    def __init__(
        self,
        bundle: dict[str, Any],
        allow_events: frozenset[str],
        message_types: MessageTypeRegistry | None = None,
    ) -> None:
        self.bundle = bundle
        self.allow_events = allow_events
        self.message_types = message_types
        self.notes: list[str] = []
        self.by_url: dict[str, Any] = {}
        self.by_id: dict[tuple[str, str], list[Any]] = {}
        self.resources: list[dict[str, Any]] = []

    def facts(self, total_size: int, wire_format: str) -> BundleFacts:
        bundle = self.bundle
        entries, header, event = _message_start(bundle, self.allow_events)
        self._index(entries)
        header_url = _text(entries[0], "fullUrl")
        definition = _text(header, "definition")
        message_type, business_message = self._message_type(event, definition)

        receiver, identifiers = self._receiver(header, header_url)
        receiver_gln, receiver_sor_id = self._first_usable(identifiers, "receiver")
        if receiver_gln is None and receiver_sor_id is None:
            raise InvalidBundle(
                BundleProblem.RECEIVER_UNIDENTIFIED,
                f"the receiver {receiver} has neither a GLN nor a SOR-ID that can be read "
                f"(a GLN under {', '.join(sorted(GLN_SYSTEMS))} or {LEGACY_GLN_SYSTEM}; a SOR-ID "
                f"under {SOR_ID_SYSTEM} or in a SOR endpoint): it has {_listing(identifiers)}",
            )
        sender_gln, sender_sor_id = self._sender(header, header_url)

        communication = self._communication(header, header_url, business_message)
        category, category_coded = self._category(communication, business_message)
        text_length, attachments = self._payloads(communication)
        bundle_identifier = _first(bundle, "identifier")
        return BundleFacts(
            bundle_id=_text(bundle, "id"),
            message_id=_text(header, "id") or _text(bundle_identifier, "value"),
            event_code=event,
            message_type=message_type,
            business_message=business_message,
            receiver_gln=receiver_gln,
            receiver_sor_id=receiver_sor_id,
            sender_gln=sender_gln,
            sender_sor_id=sender_sor_id,
            category=category,
            topic=_text(_first(communication, "topic"), "text"),
            text_length=text_length,
            attachments=attachments,
            total_size=total_size,
            wire_format=wire_format,
            notes=tuple(self.notes),
            definition=definition,
            receiver_identifiers=tuple(identifiers),
            category_coded=category_coded,
        )

    # -- the message type --------------------------------------------------------------------

    def _message_type(self, event: str, definition: str | None) -> tuple[str, str]:
        """The FHIR message type and business message. The definition and the event each name
        a type through the registry (the event through :data:`EVENT_MESSAGE_TYPES` when the
        registry does not know it); the event's wins, and a definition naming another type, or
        none the registry knows, is noted. Without a registry, :data:`EVENT_MESSAGE_TYPES`."""
        types = self.message_types
        if types is None:
            return EVENT_MESSAGE_TYPES[event], EVENT_BUSINESS_MESSAGES[event]
        by_event = types.code_for_definition(event) or EVENT_MESSAGE_TYPES.get(event)
        by_definition = types.code_for_definition(definition) if definition else None
        if definition is not None and by_definition is None:
            self.notes.append(
                f"the message definition {definition!r} is not in the message-type registry: "
                f"the type is the event's ({event})"
            )
        elif by_event is not None and by_definition is not None and by_event != by_definition:
            self.notes.append(
                f"the message definition {definition!r} names {by_definition} but the event "
                f"{event} names {by_event}: used the event's"
            )
        code = by_event or by_definition
        if code is None:  # pragma: no cover - parse_bundle accepts only events it can type
            raise InvalidBundle(
                BundleProblem.UNKNOWN_MESSAGE_TYPE,
                f"no message type is known for the event {event}",
                event_code=event,
            )
        if code in types:
            return code, types.get(code).business_message
        return code, EVENT_BUSINESS_MESSAGES[event]

    # -- header ------------------------------------------------------------------------------

    def _receiver(
        self, header: Any, header_url: str | None
    ) -> tuple[str, list[ReceiverIdentifier]]:
        """The receiver, described for people, and every identifier it is given: the receiver
        Organization's, then the chosen destination's endpoint."""
        destinations = _items(header, "destination")
        if not destinations:
            raise InvalidBundle(
                BundleProblem.NO_RECEIVER, "the MessageHeader has no destination: no receiver"
            )
        primary = [d for d in destinations if self._destination_use(d) == "primary"]
        destination = (primary or destinations)[0]
        if len(destinations) > 1:
            self.notes.append(
                f"{len(destinations)} destinations: routed to the "
                + ("primary one" if primary else "first one")
            )
        endpoint = _text(destination, "endpoint")
        endpoints = (
            [ReceiverIdentifier(IdentifierSource.ENDPOINT, None, endpoint)] if endpoint else []
        )
        reference = _first(destination, "receiver")
        if not isinstance(reference, dict) or not (
            _text(reference, "reference") or _items(reference, "identifier")
        ):
            if endpoints and read_identifier(endpoints[0]).usable:
                self.notes.append(
                    f"the MessageHeader destination has no receiver: addressed by its endpoint "
                    f"{endpoint}"
                )
                return f"endpoint {endpoint}", endpoints
            raise InvalidBundle(
                BundleProblem.NO_RECEIVER,
                "the MessageHeader destination has no receiver"
                + (f", and its endpoint {endpoint!r} names no SOR-ID" if endpoint else ""),
            )
        target = _text(reference, "reference")
        if target is None:  # a logical reference: the identifier stands for the Organization
            organization = {
                "resourceType": "Organization",
                "identifier": _items(reference, "identifier"),
            }
            return "Organization (by identifier)", _identifiers_of(organization) + endpoints
        resource = self._resolve(target, header, header_url)
        if resource is None:
            raise InvalidBundle(
                BundleProblem.RECEIVER_NOT_FOUND,
                f"the receiver reference {target!r} matches no entry in the Bundle "
                "(by fullUrl or by Organization id)",
            )
        if _kind(resource) != "Organization":
            raise InvalidBundle(
                BundleProblem.RECEIVER_NOT_ORGANIZATION,
                f"the receiver reference {target!r} is a {_kind(resource)}, not an Organization",
            )
        return self._describe(resource), _identifiers_of(resource) + endpoints

    @staticmethod
    def _destination_use(destination: Any) -> str | None:
        for extension in _items(destination, "extension"):
            url = _text(extension, "url")
            if url and url.endswith(_DESTINATION_USE):
                return _text(_first(extension, "valueCoding"), "code")
        return None

    def _sender(self, header: Any, header_url: str | None) -> tuple[str | None, str | None]:
        reference = _first(header, "sender")
        target = _text(reference, "reference")
        if target is None:
            if _items(reference, "identifier"):
                organization = {"identifier": _items(reference, "identifier")}
                return self._first_usable(_identifiers_of(organization), "sender")
            self.notes.append("the MessageHeader has no sender")
            return None, None
        resource = self._resolve(target, header, header_url)
        if resource is None:
            self.notes.append(f"the sender reference {target!r} matches no entry in the Bundle")
            return None, None
        gln, sor_id = self._first_usable(_identifiers_of(resource), "sender")
        if gln is None and sor_id is None:
            self.notes.append(f"the sender {self._describe(resource)} has no GLN or SOR-ID")
        return gln, sor_id

    def _first_usable(
        self, identifiers: Iterable[ReceiverIdentifier], role: str
    ) -> tuple[str | None, str | None]:
        """The first usable GLN and SOR-ID, in any spelling; several of one kind on the
        Organization itself are noted (the endpoint is compared by the resolver)."""
        found: dict[IdentifierKind, list[str]] = {IdentifierKind.GLN: [], IdentifierKind.SOR_ID: []}
        first: dict[IdentifierKind, str] = {}
        for identifier in identifiers:
            read = read_identifier(identifier)
            if not read.usable or read.value is None:
                continue
            first.setdefault(read.kind, read.value)
            if identifier.source is IdentifierSource.ORGANIZATION:
                found[read.kind].append(read.value)
        for kind, label in ((IdentifierKind.GLN, "GLNs"), (IdentifierKind.SOR_ID, "SOR-IDs")):
            values = found[kind]
            if len(set(values)) > 1:
                self.notes.append(f"the {role} has {len(set(values))} {label}: used {values[0]}")
        return first.get(IdentifierKind.GLN), first.get(IdentifierKind.SOR_ID)

    # -- references --------------------------------------------------------------------------

    def _index(self, entries: list[Any]) -> None:
        for entry in entries:
            resource = _first(entry, "resource")
            if not isinstance(resource, dict):
                continue
            self.resources.append(resource)
            url = _text(entry, "fullUrl")
            if url is not None:
                self.by_url.setdefault(url, resource)
            resource_id = _text(resource, "id")
            if resource_id is not None:
                self.by_id.setdefault((_kind(resource), resource_id), []).append(resource)

    def _resolve(self, reference: str, source: Any, source_url: str | None) -> Any:
        """The resource a literal reference points at within the Bundle, or None."""
        if reference.startswith("#"):
            for contained in _items(source, "contained"):
                if _text(contained, "id") == reference[1:]:
                    return contained
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        match = _RELATIVE_REFERENCE.match(reference)
        if match is None:
            return None
        kind, resource_id = match.group(1), match.group(2)
        # A relative reference is resolved against the base of the referring entry's fullUrl.
        if source_url is not None and "://" in source_url:
            base = source_url.rsplit("/", 2)[0]
            found = self.by_url.get(f"{base}/{kind}/{resource_id}")
            if found is not None:
                return found
        candidates = self.by_id.get((kind, resource_id), [])
        return candidates[0] if len(candidates) == 1 else None

    @staticmethod
    def _describe(resource: Any) -> str:
        name = _text(resource, "name")
        resource_id = _text(resource, "id")
        parts = [_kind(resource)]
        if resource_id:
            parts.append(resource_id)
        if name:
            parts.append(f"({name})")
        return " ".join(parts)

    # -- the communication -------------------------------------------------------------------

    def _communication(self, header: Any, header_url: str | None, business_message: str) -> Any:
        for focus in _items(header, "focus"):
            target = _text(focus, "reference")
            if target is None:
                continue
            resource = self._resolve(target, header, header_url)
            if _kind(resource) == "Communication":
                return resource
        found = [r for r in self.resources if _kind(r) == "Communication"]
        if found:
            if len(found) > 1:
                self.notes.append(f"{len(found)} Communication resources: read the first")
            return found[0]
        if business_message == _CORRESPONDENCE:
            raise InvalidBundle(
                BundleProblem.NO_COMMUNICATION,
                "the CareCommunication Bundle has no Communication resource",
            )
        return None

    def _category(
        self, communication: Any, business_message: str
    ) -> tuple[str | None, bool | None]:
        """The category code (MedCom's coding first) and whether there is one: False for a
        category without a code, or none in a CareCommunication; None without a Communication."""
        if communication is None:
            return None, None
        categories = _items(communication, "category")
        codes: list[tuple[bool, str]] = []
        for category in categories:
            for coding in _items(category, "coding"):
                code = _text(coding, "code")
                if code is not None:
                    codes.append((_text(coding, "system") != CATEGORY_SYSTEM, code))
        if codes:
            return min(codes)[1], True
        if categories:
            self.notes.append("the Communication has a category without a code")
            return None, False
        if business_message == _CORRESPONDENCE:
            self.notes.append("the CareCommunication has no category")
            return None, False
        return None, None

    def _payloads(self, communication: Any) -> tuple[int, tuple[Attachment, ...]]:
        text_length = 0
        attachments: list[Attachment] = []
        for number, payload in enumerate(_items(communication, "payload"), start=1):
            content = _first(payload, "contentString")
            if isinstance(content, str):
                text_length += len(content)
                continue
            attachment = _first(payload, "contentAttachment")
            if isinstance(attachment, dict):
                attachments.append(self._attachment(attachment, number))
            elif _first(payload, "contentReference") is not None:
                self.notes.append(f"payload {number} is a reference: not counted")
        return text_length, tuple(attachments)

    def _attachment(self, attachment: dict[str, Any], number: int) -> Attachment:
        label = f"attachment in payload {number}"
        title = _text(attachment, "title")
        if title:
            label += f" ({title!r})"
        mime_type = (_text(attachment, "contentType") or "").split(";", 1)[0].strip().lower()
        if not mime_type:
            self.notes.append(f"the {label} has no contentType")
        raw = _first(attachment, "data")
        data = _Base64Data.of(raw) if isinstance(raw, str) else raw
        if not isinstance(data, _Base64Data):
            data = None
        elif data.malformed:
            self.notes.append(f"the {label} has data whose length is not valid base64")
        if data is not None and data.size == 0:
            self.notes.append(f"the {label} has empty data")
            data = None
        url = _text(attachment, "url")
        if data is not None:
            content = AttachmentContent.DATA
        elif url is not None:
            content = AttachmentContent.LINK
        else:
            content = AttachmentContent.NONE
            self.notes.append(f"the {label} has neither data nor url: it has no content")
        declared = _first(attachment, "size")
        if declared is not None:
            size = self._size(declared, label)
            if data is not None and data.size != size:
                self.notes.append(
                    f"the {label} declares size {size} but its data decodes to {data.size} "
                    "bytes: used the declared size"
                )
        elif data is not None:
            size = data.size
        else:
            size = 0
            if content is AttachmentContent.LINK:
                self.notes.append(f"the {label} is a link ({url}) without size: size taken as 0")
        return Attachment(
            mime_type,
            size,
            title=title,
            content=content,
            sniffed_type=data.sniffed_type if data is not None else None,
        )

    @staticmethod
    def _size(value: Any, label: str) -> int:
        # R4 JSON: a number; XML and R5 JSON (integer64): a string of digits.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value.strip())
        raise InvalidBundle(
            BundleProblem.INVALID_ATTACHMENT,
            f"the {label} has an invalid size {value!r} (expected a non-negative integer)",
        )
