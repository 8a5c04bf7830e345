"""CareCommunication messages for the sandbox's receivers, shaped like MedCom's own examples.

A gateway hands soredi-sync whole messages; to try routing against a sandbox register one needs
messages addressed to its units. :func:`care_communication` writes a FHIR message Bundle in
FHIR XML the way MedCom's CareCommunication examples are written: a ``MessageHeader`` whose
destination names the receiver Organization (GLN and SOR-ID) and its SOR endpoint, the
patient, the ``Communication`` with a coded category, a topic, a text payload and optionally
one attachment, the sender Organization, and a ``Provenance``. :func:`party` finds a GLN's
unit in a register, to address a message to it.

Everything is synthetic: the patient is MedCom's test patient and every id is derived from the
inputs, so the same call always writes the same bytes.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from soredi_sync.domain.model import Registry

FHIR = "http://hl7.org/fhir"
IG = "http://medcomfhir.dk/ig"
GLN_SYSTEM = "https://www.gs1.org/gln"
SOR_ID_SYSTEM = "urn:oid:1.2.208.176.1.1"
CPR_SYSTEM = "urn:oid:1.2.208.176.1.2"
SOR_ENDPOINT = "https://sor2.sum.dsdn.dk/#id="
DEFINITION = f"{IG}/carecommunication/medcom-careCommunication-message-definition|4.0.0"
# MedCom's test patient (its CareCommunication examples use her).
TEST_PATIENT = ("2512489996", "Nancy", "Ann Berggren")
_IDS = uuid.UUID("6f1c2d7e-5b1a-4c7e-9d3e-50f3ed1c0de5")  # namespace of the derived ids


@dataclass(frozen=True)
class Party:
    """A sender or receiver as a message names it: its GLN, its unit's SOR-ID and name."""

    gln: str
    sor_id: str
    name: str


@dataclass(frozen=True)
class Document:
    """One attachment: ``data`` travels base64-encoded in the bundle."""

    title: str
    content_type: str
    data: bytes


def party(registry: Registry, gln: str) -> Party:
    """The unit a message to ``gln`` is addressed to: the unit that has the GLN as its own (the
    lowest SOR-ID when several do), else the first unit that inherits it.

    :raises LookupError: no unit of the register uses ``gln``
    """
    own = sorted(sor_id for sor_id, unit in registry.units.items() if unit.gln == gln)
    users = own or registry.units_using(gln)
    if not users:
        raise LookupError(f"no unit uses GLN {gln}")
    return Party(gln, users[0], registry.units[users[0]].name)


def small_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` (ASCII), small enough to read in a terminal."""
    safe = text.encode("ascii", "replace").decode().replace("\\", "/")
    safe = safe.replace("(", "[").replace(")", "]")
    stream = f"BT /F1 12 Tf 72 770 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def care_communication(
    receiver: Party,
    sender: Party,
    *,
    sent_at: datetime,
    category: str = "regarding-referral",
    topic: str = "Undersøgelser forud for visitation",
    text: str = "Vi har modtaget en henvisning på ovenstående patient.",
    attachments: Sequence[Document] = (),
) -> bytes:
    """A CareCommunication message Bundle from ``sender`` to ``receiver``, in FHIR XML.

    :param sent_at: the bundle's timestamp and the payloads' date (timezone-aware)
    :param category: a code of MedCom's CareCommunication category code system
    """
    if sent_at.tzinfo is None:
        raise ValueError("sent_at must be timezone-aware")
    seed = f"{receiver}|{sender}|{sent_at.isoformat()}|{category}|{topic}|{text}"
    ids = {
        kind: str(uuid.uuid5(_IDS, f"{kind}|{seed}"))
        for kind in ("Bundle", "MessageHeader", "Patient", "Communication", "Provenance")
    }
    ids["receiver"] = str(uuid.uuid5(_IDS, f"Organization|{receiver.gln}|{receiver.sor_id}"))
    ids["sender"] = str(uuid.uuid5(_IDS, f"Organization|{sender.gln}|{sender.sor_id}"))
    when = sent_at.isoformat(timespec="seconds")

    bundle = _el("Bundle")
    _value(bundle, "id", ids["Bundle"])
    _profile(bundle, "carecommunication", "medcom-careCommunication-message")
    _value(bundle, "type", "message")
    _value(bundle, "timestamp", when)

    header = _entry(bundle, "MessageHeader", ids["MessageHeader"])
    _profile(header, "carecommunication", "medcom-careCommunication-messageHeader")
    event = _sub(header, "eventCoding")
    _value(event, "system", f"{IG}/terminology/CodeSystem/medcom-messaging-eventCodes")
    _value(event, "code", "care-communication-message")
    destination = _sub(header, "destination")
    use = _sub(
        destination,
        "extension",
        url=f"{IG}/messaging/StructureDefinition/medcom-messaging-destinationUseExtension",
    )
    coding = _sub(use, "valueCoding")
    _value(coding, "system", f"{IG}/terminology/CodeSystem/medcom-messaging-destinationUse")
    _value(coding, "code", "primary")
    _value(destination, "endpoint", SOR_ENDPOINT + receiver.sor_id)
    _value(_sub(destination, "receiver"), "reference", f"Organization/{ids['receiver']}")
    _value(_sub(header, "sender"), "reference", f"Organization/{ids['sender']}")
    _value(_sub(header, "source"), "endpoint", SOR_ENDPOINT + sender.sor_id)
    _value(_sub(header, "focus"), "reference", f"Communication/{ids['Communication']}")
    _value(header, "definition", DEFINITION)

    patient = _entry(bundle, "Patient", ids["Patient"])
    _profile(patient, "core", "medcom-core-patient")
    cpr, given, family = TEST_PATIENT
    identifier = _sub(patient, "identifier")
    _value(identifier, "system", CPR_SYSTEM)
    _value(identifier, "value", cpr)
    name = _sub(patient, "name")
    _value(name, "use", "official")
    _value(name, "family", family)
    _value(name, "given", given)

    communication = _entry(bundle, "Communication", ids["Communication"])
    _profile(communication, "carecommunication", "medcom-careCommunication-communication")
    _value(_sub(communication, "identifier"), "value", f"urn:uuid:{ids['Communication']}")
    _value(communication, "status", "unknown")
    coding = _sub(_sub(communication, "category"), "coding")
    _value(
        coding,
        "system",
        f"{IG}/terminology/CodeSystem/medcom-careCommunication-categoryCodes",
    )
    _value(coding, "code", category)
    _value(_sub(communication, "subject"), "reference", f"Patient/{ids['Patient']}")
    _value(_sub(communication, "topic"), "text", topic)
    _payload(communication, when, seed, 0, sender_ref=ids["sender"], text=text)
    for index, document in enumerate(attachments, 1):
        _payload(communication, when, seed, index, sender_ref=ids["sender"], document=document)

    for role, who in (("receiver", receiver), ("sender", sender)):
        organization = _entry(bundle, "Organization", ids[role])
        _profile(organization, "messaging", "medcom-messaging-organization")
        for system, value in ((GLN_SYSTEM, who.gln), (SOR_ID_SYSTEM, who.sor_id)):
            identifier = _sub(organization, "identifier")
            _value(identifier, "system", system)
            _value(identifier, "value", value)
        _value(organization, "name", who.name)

    provenance = _entry(bundle, "Provenance", ids["Provenance"])
    _profile(provenance, "carecommunication", "medcom-careCommunication-provenance")
    _value(_sub(provenance, "target"), "reference", f"MessageHeader/{ids['MessageHeader']}")
    _value(provenance, "occurredDateTime", when)
    _value(provenance, "recorded", when)
    activity = _sub(_sub(provenance, "activity"), "coding")
    _value(activity, "system", f"{IG}/terminology/CodeSystem/medcom-messaging-activityCodes")
    _value(activity, "code", "new-message")
    agent = _sub(provenance, "agent")
    _value(_sub(agent, "who"), "reference", f"Organization/{ids['sender']}")
    return bytes(etree.tostring(bundle, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# -- FHIR XML, element by element -------------------------------------------------------------


def _el(name: str) -> etree._Element:
    return etree.Element(f"{{{FHIR}}}{name}", nsmap={None: FHIR})  # type: ignore[dict-item]


def _sub(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{FHIR}}}{name}", attributes)


def _value(parent: etree._Element, name: str, value: str) -> None:
    _sub(parent, name, value=value)


def _profile(resource: etree._Element, guide: str, name: str) -> None:
    _value(_sub(resource, "meta"), "profile", f"{IG}/{guide}/StructureDefinition/{name}")


def _entry(bundle: etree._Element, kind: str, resource_id: str) -> etree._Element:
    entry = _sub(bundle, "entry")
    _value(entry, "fullUrl", f"https://medcomfhir.dk/ig/carecommunication/{kind}/{resource_id}")
    resource = _sub(_sub(entry, "resource"), kind)
    _value(resource, "id", resource_id)
    return resource


def _payload(
    communication: etree._Element,
    when: str,
    seed: str,
    index: int,
    *,
    sender_ref: str,
    text: str | None = None,
    document: Document | None = None,
) -> None:
    payload = _sub(communication, "payload")
    core = f"{IG}/core/StructureDefinition/"
    _value(
        _sub(payload, "extension", url=core + "medcom-core-datetime-extension"),
        "valueDateTime",
        when,
    )
    identifier = _sub(
        _sub(payload, "extension", url=core + "medcom-core-identifier-extension"),
        "valueIdentifier",
    )
    _value(identifier, "value", f"urn:uuid:{uuid.uuid5(_IDS, f'payload|{index}|{seed}')}")
    _value(_sub(identifier, "assigner"), "reference", f"Organization/{sender_ref}")
    if text is not None:
        _value(payload, "contentString", text)
    if document is not None:
        attachment = _sub(payload, "contentAttachment")
        _value(attachment, "contentType", document.content_type)
        _value(attachment, "data", base64.b64encode(document.data).decode("ascii"))
        _value(attachment, "title", document.title)
