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
XML/JSON - is refused with :class:`~soredi_sync.parsing.refusals.InvalidBundle`, whose message
says what is wrong and whose :attr:`~soredi_sync.parsing.refusals.InvalidBundle.problem` says it
to a program.

Bundles can be 100 MB, nearly all of it base64 attachment data. XML is read with
``lxml.etree.iterparse`` and each element is dropped from the tree as soon as it has been read;
an attachment's size is computed from the length of its base64 text without decoding it, and
its type is sniffed from its first few base64 characters alone.
Hardening as in :mod:`soredi_sync.parsing.sor_xml`: entities are never resolved, no DTD is
loaded, nothing is fetched, and a DOCTYPE is refused - here by a scan of the prolog *before*
libxml2 sees the document, because ``huge_tree`` (needed for attachments over 10 MB) lifts
libxml2's own limits.

What a bundle may cost is bounded by more than its bytes
(:class:`~soredi_sync.parsing.refusals.BundleBudget`): its elements (XML elements; JSON object
members and array items) and its nesting depth are counted while it is read, and a bundle over
either is refused as soon as it passes it, before the rest is read.
XML is counted on iterparse's events; JSON by a scan of its structure (strings are skipped with
``str.find``, nothing is built) before ``json.loads`` builds it, so memory follows the bundle's
bytes - nearly all of it attachment data - and never its element count. The message start is
judged early too: once the first entry is read (in XML, once its resource's name is), a Bundle
whose first entry is not a MessageHeader, or whose event is not accepted, is refused without
reading the rest.

The modules: ``bundle`` (:func:`parse_bundle`, the wire format), ``xml_reader`` and
``json_reader`` (reading within the budget), ``nodes`` (the message start), ``extract`` (the
facts), ``facts`` (:class:`BundleFacts`) and ``vocabulary`` (events and systems). Import from here.
"""

from __future__ import annotations

from soredi_sync.parsing.fhir.bundle import JSON_CONTENT_TYPES, XML_CONTENT_TYPES, parse_bundle
from soredi_sync.parsing.fhir.facts import BundleFacts
from soredi_sync.parsing.fhir.vocabulary import (
    ACKNOWLEDGEMENT_EVENT,
    CARE_COMMUNICATION_EVENT,
    CATEGORY_SYSTEM,
    EVENT_BUSINESS_MESSAGES,
    EVENT_MESSAGE_TYPES,
    FHIR_NAMESPACE,
    GLN_SYSTEMS,
    HOSPITAL_NOTIFICATION_EVENT,
    KNOWN_EVENTS,
    SOR_ID_SYSTEM,
)

__all__ = [
    "ACKNOWLEDGEMENT_EVENT",
    "CARE_COMMUNICATION_EVENT",
    "CATEGORY_SYSTEM",
    "EVENT_BUSINESS_MESSAGES",
    "EVENT_MESSAGE_TYPES",
    "FHIR_NAMESPACE",
    "GLN_SYSTEMS",
    "HOSPITAL_NOTIFICATION_EVENT",
    "JSON_CONTENT_TYPES",
    "KNOWN_EVENTS",
    "SOR_ID_SYSTEM",
    "XML_CONTENT_TYPES",
    "BundleFacts",
    "parse_bundle",
]
