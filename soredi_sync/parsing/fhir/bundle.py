"""Reading a FHIR message Bundle: its wire format (XML or JSON, from the content type and the
first byte), read within the budget, then its routing facts (:func:`parse_bundle`)."""

from __future__ import annotations

import re
from collections.abc import Collection

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.parsing.fhir.extract import _Extractor
from soredi_sync.parsing.fhir.facts import BundleFacts
from soredi_sync.parsing.fhir.json_reader import _read_json
from soredi_sync.parsing.fhir.vocabulary import EVENT_BUSINESS_MESSAGES, KNOWN_EVENTS
from soredi_sync.parsing.fhir.xml_reader import _read_xml
from soredi_sync.parsing.refusals import (
    DEFAULT_BUDGET,
    BundleBudget,
    BundleProblem,
    InvalidBundle,
)

XML_CONTENT_TYPES = frozenset(
    {"application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"}
)
JSON_CONTENT_TYPES = frozenset(
    {"application/fhir+json", "application/json", "application/json+fhir"}
)

_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = re.compile(rb"[ \t\r\n]*")


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
