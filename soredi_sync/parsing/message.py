"""One entry for every message syntax a gateway hands us: FHIR, OIOXML or EDIFACT.

:func:`parse_message` looks at the body, not at its name: ``<`` starts XML - an OIOXML
``Emessage`` (read by :mod:`soredi_sync.parsing.oioxml`) or anything else, which goes to the
FHIR bundle reader (:func:`~soredi_sync.parsing.fhir.parse_bundle`, which says what is wrong
with a non-Bundle); ``{`` or ``[`` starts FHIR JSON; ``UNA`` or ``UNB`` starts an EDIFACT
interchange (:mod:`soredi_sync.parsing.edifact`). The answer is a
:class:`~soredi_sync.parsing.fhir.BundleFacts` or a
:class:`~soredi_sync.parsing.facts.LegacyFacts`; both give ``syntax`` (the sender syntax),
``message_type``, ``business_message``, ``message_id``, ``notes`` and ``to_route_request``.

A declared content type is checked against the body: a type that names another wire format
(JSON declared, XML sent) is refused with ``CONTENT_TYPE_MISMATCH``; ``text/plain``,
``application/octet-stream``, none or any type not listed leaves it to the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import RouteRequest, RoutingInputError
from soredi_sync.parsing.edifact import parse_edifact
from soredi_sync.parsing.facts import LegacyFacts
from soredi_sync.parsing.fhir import (
    JSON_CONTENT_TYPES,
    XML_CONTENT_TYPES,
    BundleFacts,
    parse_bundle,
)
from soredi_sync.parsing.oioxml import OIOXML_ROOT, parse_oioxml, xml_root_name
from soredi_sync.parsing.refusals import BundleBudget, BundleProblem, InvalidMessage

__all__ = [
    "LegacyFacts",
    "MessageFacts",
    "parse_message",
    "route_request_for",
    "sniff_wire_format",
]

MessageFacts = BundleFacts | LegacyFacts

# RFC 1767 registers application/EDIFACT (and EDI-X12, EDI-consent); x-edifact is seen too.
EDIFACT_CONTENT_TYPES = frozenset({"application/edifact", "application/x-edifact"})
# Types that say nothing about the wire format: the body decides.
NEUTRAL_CONTENT_TYPES = frozenset({"text/plain", "application/octet-stream"})

_UTF8_BOM = b"\xef\xbb\xbf"
_BLANKS = re.compile(rb"[ \t\r\n]*")
_FORMAT_NAMES = {"xml": "XML", "json": "JSON", "edifact": "EDIFACT"}


def parse_message(
    data: bytes,
    content_type: str | None,
    *,
    message_types: MessageTypeRegistry,
    budget: BundleBudget | None = None,
) -> MessageFacts:
    """Read the routing facts of a FHIR bundle, an OIOXML message or an EDIFACT interchange.

    :param data: the message exactly as received
    :param content_type: the HTTP Content-Type (parameters ignored, any case); see the module
        docstring for which types are checked against the body
    :param message_types: the registry that names message types (``config/message-types.tsv``)
    :param budget: elements and depth allowed; default
        :data:`~soredi_sync.parsing.refusals.DEFAULT_BUDGET`
    :raises InvalidMessage: the body is not a message that can be routed; ``problem`` says why
        (``NOT_A_MESSAGE_FILE`` for a body that is none of the three syntaxes)
    """
    wire_format = sniff_wire_format(data)
    declared = _declared_format(content_type)
    if declared is not None and declared != wire_format:
        raise InvalidMessage(
            BundleProblem.CONTENT_TYPE_MISMATCH,
            f"the content type {content_type!r} says {_FORMAT_NAMES[declared]} but the body is "
            f"{_FORMAT_NAMES[wire_format]} (it starts with {_preview(data, 12)!r})",
        )
    if wire_format == "edifact":
        return parse_edifact(data, message_types=message_types, budget=budget)
    if wire_format == "xml" and xml_root_name(data) == OIOXML_ROOT:
        return parse_oioxml(data, message_types=message_types, budget=budget)
    # parse_bundle checks the content type itself (XML/JSON only: EDIFACT was handled above).
    return parse_bundle(data, content_type, budget=budget, message_types=message_types)


def route_request_for(
    facts: MessageFacts,
    sender_syntax: str | None = None,
    at: date | None = None,
    *,
    category_names: Mapping[str, str] | None = None,
) -> RouteRequest:
    """The routing question for a parsed message (the CLI's and the API's one rule).

    :param sender_syntax: route a FHIR message as if sent in this syntax; None: as read
    :raises RoutingInputError: ``sender_syntax`` names another syntax for a legacy message,
        which is always routed in its own
    """
    if sender_syntax is not None and facts.syntax != "fhir" and sender_syntax != facts.syntax:
        raise RoutingInputError(
            "the sender syntax overrides the syntax of a FHIR message only; this is a "
            f"{facts.message_type} ({facts.syntax}) message"
        )
    return facts.to_route_request(sender_syntax, at, category_names=category_names)


def sniff_wire_format(data: bytes) -> str:
    """``xml``, ``json`` or ``edifact``, by the first bytes of the body.

    :raises InvalidMessage: ``EMPTY``; ``ENCODING`` for UTF-16/UTF-32; ``NOT_A_MESSAGE_FILE``
        for anything else, naming what the body starts with
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and 0 in data[:2]):
        raise InvalidMessage(
            BundleProblem.ENCODING,
            "the body is UTF-16 or UTF-32 encoded: messages are read in UTF-8 or a one-byte "
            "character set",
        )
    head = _preview(data, 3)
    if not head:
        raise InvalidMessage(BundleProblem.EMPTY, "the body is empty: expected a message")
    if head.startswith(b"<"):
        return "xml"
    if head[:1] in (b"{", b"["):
        return "json"
    if head in (b"UNA", b"UNB"):
        return "edifact"
    raise InvalidMessage(
        BundleProblem.NOT_A_MESSAGE_FILE,
        f"the body is not a message: it starts with {_preview(data, 20)!r}, where a FHIR bundle "
        "(XML or JSON), an OIOXML Emessage or an EDIFACT interchange (UNA/UNB) was expected",
    )


def _declared_format(content_type: str | None) -> str | None:
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in XML_CONTENT_TYPES:
        return "xml"
    if media_type in JSON_CONTENT_TYPES:
        return "json"
    if media_type in EDIFACT_CONTENT_TYPES:
        return "edifact"
    return None  # neutral (NEUTRAL_CONTENT_TYPES) or not a message type: the body decides


def _preview(data: bytes, size: int) -> bytes:
    """The first ``size`` bytes past a UTF-8 BOM and blanks (never a copy of the body)."""
    start = 3 if data.startswith(_UTF8_BOM) else 0
    begin = _BLANKS.match(data, start).end()  # type: ignore[union-attr]
    return data[begin : begin + size]
