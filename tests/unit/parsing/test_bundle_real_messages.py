"""The routing facts of real MedCom FHIR messages, as published and minimally edited.

The nine FHIR messages of the shared reference folder (``messages/``: CareCommunication,
Acknowledgement, HospitalNotification) are read where they lie, never copied. Each is read as
published and converted to the other syntax by the generic converter of ``test_bundle``; each
class of real input the router must handle (identifier spellings, an endpoint naming another
unit, a category without a code, link-only and empty attachments, a mislabelled attachment, a
definition that disagrees with the event) is made by a minimal edit of a real message and
checked in FHIR XML and FHIR JSON.
"""

from __future__ import annotations

import base64
import json
import re
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from soredi_sync.domain.identifiers import (
    IdentifierKind,
    IdentifierSource,
    ReceiverIdentifier,
    SystemSpelling,
    read_identifier,
)
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, AttachmentContent
from soredi_sync.parsing.attachment_bytes import base64_head
from soredi_sync.parsing.fhir import parse_bundle
from soredi_sync.parsing.refusals import BundleProblem, InvalidBundle
from tests.support.fhir import json_to_xml, xml_to_json
from tests.support.reference import reference_path

SOR = "https://sor2.sum.dsdn.dk/#id="
GLN_SYSTEM = "https://www.gs1.org/gln"
SOR_SYSTEM = "urn:oid:1.2.208.176.1.1"
CC_DEFINITION = (
    "http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/"
    "MedComCareCommunicationMessageDefinition|5.0"
)
ACK_DEFINITION = (
    "http://medcomfhir.dk/ig/acknowledgement/medcom-acknowledgement-message-definition|2.0.0"
)


@dataclass(frozen=True)
class Expected:
    """What the README of messages/ (and the message itself) says of one real message."""

    message_type: str
    business_message: str
    receiver: tuple[str, str]  # GLN, SOR-ID (the README's table)
    definition: str | None
    category: str | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def category_coded(self) -> bool | None:
        return None if self.business_message != "correspondence" else self.category is not None


LAEGEHUSET_OESTERBRO = ("5790002408496", "1017421000016003")
HERLEV_GENTOFTE_HEART = ("5790000209354", "265161000016000")
PNG_LABEL_ON_JPEG = Attachment(
    "image/png", 10334, "madpyramiden", AttachmentContent.DATA, sniffed_type="image/jpeg"
)
PDF = Attachment(
    "application/pdf", 113327, "Kalenderoversigt", AttachmentContent.DATA, "application/pdf"
)

REAL: dict[str, Expected] = {
    "cc5-S-A-new-longtext.json": Expected(
        "FDIS91",
        "correspondence",
        ("5790001353308", "330461000016004"),
        CC_DEFINITION,
        "acute-ambulant",
    ),
    # The message labels its attachment image/png, but its bytes are a JPEG (FF D8 FF E0, JFIF).
    "cc5-S-B-png.xml": Expected(
        "FDIS91",
        "correspondence",
        LAEGEHUSET_OESTERBRO,
        CC_DEFINITION,
        "regarding-referral",
        (PNG_LABEL_ON_JPEG,),
    ),
    "cc5-S-C-simple.json": Expected(
        "FDIS91", "correspondence", LAEGEHUSET_OESTERBRO, CC_DEFINITION, "examination-results"
    ),
    "cc5-S-D-pdf.xml": Expected(
        "FDIS91", "correspondence", LAEGEHUSET_OESTERBRO, CC_DEFINITION, "decease", (PDF,)
    ),
    "cc5-S-E-forward.json": Expected(
        "FDIS91", "correspondence", LAEGEHUSET_OESTERBRO, CC_DEFINITION, "decease"
    ),
    "cc5-S-TekCPR-to-MedComXDIS91.json": Expected(
        "FDIS91",
        "correspondence",
        ("5790000121526", "325251000016005"),
        CC_DEFINITION,
        "examination-results",
    ),
    "ack-AA-3.3.1.1.xml": Expected(
        "FCTL", "acknowledgement", HERLEV_GENTOFTE_HEART, ACK_DEFINITION
    ),
    "ack-AE-3.4.4.json": Expected("FCTL", "acknowledgement", HERLEV_GENTOFTE_HEART, ACK_DEFINITION),
    "hn-SLHJ_H-discharge.json": Expected(
        "FDIS20", "hospital-notification", ("5790001348120", "953741000016009"), None
    ),
}


def published(name: str) -> bytes:
    """A real message of the shared reference folder, byte for byte as published."""
    return reference_path("messages", name).read_bytes()


def as_json(name: str) -> dict[str, Any]:
    """A real message as FHIR JSON (an XML one through the generic converter), to edit."""
    data = published(name)
    if name.endswith(".json"):
        document: dict[str, Any] = json.loads(data)
        return document
    return xml_to_json(data, always_lists=False)


Encode = Callable[[dict[str, Any]], bytes]


@pytest.fixture(params=["xml", "json"])
def encode(request: pytest.FixtureRequest) -> Encode:
    """An edited message in either syntax."""
    if request.param == "xml":
        return json_to_xml
    return lambda bundle: json.dumps(bundle, ensure_ascii=False).encode()


def listed(node: dict[str, Any], key: str) -> list[Any]:
    """``node[key]`` as a list, stored back as one (JSON and converted XML differ here)."""
    value = node.get(key)
    items = [] if value is None else value if isinstance(value, list) else [value]
    node[key] = items
    return items


def header(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = listed(bundle, "entry")[0]["resource"]
    return resource


def destination(bundle: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = listed(header(bundle), "destination")[0]
    return found


def resource(bundle: dict[str, Any], reference: str) -> dict[str, Any]:
    """The entry a relative reference (``Organization/<id>``) names."""
    kind, _, resource_id = reference.partition("/")
    for entry in listed(bundle, "entry"):
        found: dict[str, Any] = entry["resource"]
        if found["resourceType"] == kind and found.get("id") == resource_id:
            return found
    raise AssertionError(f"{reference} is not in the bundle")


def receiver(bundle: dict[str, Any]) -> dict[str, Any]:
    return resource(bundle, destination(bundle)["receiver"]["reference"])


def communication(bundle: dict[str, Any]) -> dict[str, Any]:
    return resource(bundle, listed(header(bundle), "focus")[0]["reference"])


def attachment(bundle: dict[str, Any]) -> dict[str, Any]:
    payloads = listed(communication(bundle), "payload")
    found: dict[str, Any] = next(p for p in payloads if "contentAttachment" in p)
    return found["contentAttachment"]  # type: ignore[no-any-return]


def identifier(organization: dict[str, Any], system: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        i for i in listed(organization, "identifier") if i["system"] == system
    )
    return found


def refusal(data: bytes, **kwargs: Any) -> InvalidBundle:
    with pytest.raises(InvalidBundle) as caught:
        parse_bundle(data, **kwargs)
    return caught.value


# -- the nine real messages, as published and in the other syntax ------------------------------


class TestRealMessagesAsPublished:
    @pytest.mark.parametrize("name", sorted(REAL))
    def test_every_real_message_gives_its_type_receiver_endpoint_category_and_attachments(
        self, name: str, message_types: MessageTypeRegistry
    ) -> None:
        expected = REAL[name]
        data = published(name)
        facts = parse_bundle(data, message_types=message_types)
        gln, sor_id = expected.receiver
        assert (facts.syntax, facts.message_type, facts.business_message) == (
            "fhir",
            expected.message_type,
            expected.business_message,
        )
        assert facts.definition == expected.definition
        assert (facts.receiver_gln, facts.receiver_sor_id) == expected.receiver
        assert facts.receiver_identifiers == (
            ReceiverIdentifier(IdentifierSource.ORGANIZATION, GLN_SYSTEM, gln),
            ReceiverIdentifier(IdentifierSource.ORGANIZATION, SOR_SYSTEM, sor_id),
            ReceiverIdentifier(IdentifierSource.ENDPOINT, None, f"{SOR}{sor_id}"),
        )
        assert (facts.category, facts.category_coded) == (
            expected.category,
            expected.category_coded,
        )
        assert facts.attachments == expected.attachments
        assert facts.wire_format == ("xml" if name.endswith(".xml") else "json")
        assert (facts.total_size, facts.notes) == (len(data), ())

    @pytest.mark.parametrize("name", sorted(REAL))
    def test_the_event_tables_type_every_real_message_as_the_registry_does(
        self, name: str, message_types: MessageTypeRegistry
    ) -> None:
        with_registry = parse_bundle(published(name), message_types=message_types)
        assert parse_bundle(published(name)) == with_registry

    @pytest.mark.parametrize("name", sorted(REAL))
    def test_every_real_message_gives_the_same_facts_in_the_other_syntax(
        self, name: str, message_types: MessageTypeRegistry
    ) -> None:
        bundle = as_json(name)
        other = json_to_xml(bundle) if name.endswith(".json") else json.dumps(bundle).encode()
        facts = parse_bundle(other, message_types=message_types)
        original = parse_bundle(published(name), message_types=message_types)
        assert replace(facts, total_size=0, wire_format="") == replace(
            original, total_size=0, wire_format=""
        )

    @pytest.mark.parametrize("name", sorted(REAL))
    def test_every_real_message_asks_the_resolver_with_all_it_says_of_its_receiver(
        self, name: str, message_types: MessageTypeRegistry
    ) -> None:
        facts = parse_bundle(published(name), message_types=message_types)
        request = facts.to_route_request()
        assert (request.business_message, request.sender_syntax) == (
            REAL[name].business_message,
            "fhir",
        )
        assert request.receiver_identifiers == facts.receiver_identifiers
        assert (request.receiver_gln, request.receiver_sor_id) == REAL[name].receiver
        assert (request.category_coded, request.attachments) == (
            REAL[name].category_coded,
            REAL[name].attachments,
        )
        assert (request.message_id, request.total_size) == (facts.message_id, facts.total_size)
        assert facts.to_route_request("oioxml").sender_syntax == "oioxml"

    @pytest.mark.parametrize(
        ("name", "head"), [("cc5-S-B-png.xml", b"\xff\xd8\xff"), ("cc5-S-D-pdf.xml", b"%PDF-")]
    )
    def test_the_size_and_type_of_a_real_attachment_are_those_of_its_decoded_bytes(
        self, name: str, head: bytes
    ) -> None:
        text = published(name).decode()
        data = re.search(r'<data value="([^"]*)"', text)
        assert data is not None
        decoded = base64.b64decode(data.group(1))
        (found,) = parse_bundle(published(name)).attachments
        assert found.size == len(decoded)
        assert decoded.startswith(head)


# -- receiver identifiers: real messages, minimally edited ---------------------------------------


class TestRealReceiverIdentifiers:
    def test_a_gln_under_gs1s_oid_is_read_and_kept_as_written(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-C-simple.json")
        identifier(receiver(bundle), GLN_SYSTEM)["system"] = "urn:oid:1.3.88"
        facts = parse_bundle(encode(bundle))
        assert (facts.receiver_gln, facts.receiver_sor_id) == LAEGEHUSET_OESTERBRO
        written = facts.receiver_identifiers[0]
        assert written == ReceiverIdentifier(
            IdentifierSource.ORGANIZATION, "urn:oid:1.3.88", LAEGEHUSET_OESTERBRO[0]
        )
        assert read_identifier(written).spelling is SystemSpelling.LEGACY

    def test_a_misspelt_sor_system_is_read_not_dropped(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-C-simple.json")
        identifier(receiver(bundle), SOR_SYSTEM)["system"] = "urn:oid1.2.208.176.1.1"
        facts = parse_bundle(encode(bundle))
        assert facts.receiver_sor_id == LAEGEHUSET_OESTERBRO[1]
        misspelt = facts.receiver_identifiers[1]
        assert misspelt.system == "urn:oid1.2.208.176.1.1"
        read = read_identifier(misspelt)
        assert (read.kind, read.spelling) == (IdentifierKind.SOR_ID, SystemSpelling.MISSPELT)

    def test_a_gln_alone_under_gs1s_oid_identifies_the_receiver(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-TekCPR-to-MedComXDIS91.json")
        organization = receiver(bundle)
        organization["identifier"] = [{"system": "urn:oid:1.3.88", "value": "5790000121526"}]
        del destination(bundle)["endpoint"]
        facts = parse_bundle(encode(bundle))
        assert (facts.receiver_gln, facts.receiver_sor_id) == ("5790000121526", None)

    def test_an_endpoint_naming_another_unit_is_given_to_the_resolver_beside_the_organization(
        self, encode: Encode
    ) -> None:
        bundle = as_json("cc5-S-C-simple.json")
        own_unit = "328081000016004"  # the sender's own SOR-ID (its source endpoint)
        destination(bundle)["endpoint"] = f"{SOR}{own_unit}"
        facts = parse_bundle(encode(bundle))
        assert (facts.receiver_gln, facts.receiver_sor_id) == LAEGEHUSET_OESTERBRO
        assert facts.receiver_identifiers[-1] == ReceiverIdentifier(
            IdentifierSource.ENDPOINT, None, f"{SOR}{own_unit}"
        )
        assert read_identifier(facts.receiver_identifiers[-1]).value == own_unit

    def test_an_organization_without_a_readable_identifier_is_addressed_by_the_endpoint(
        self, encode: Encode
    ) -> None:
        bundle = as_json("hn-SLHJ_H-discharge.json")
        receiver(bundle)["identifier"] = [
            {"system": "urn:oid:1.2.208.176.1.2", "value": "953741000016009"}  # a CPR OID
        ]
        facts = parse_bundle(encode(bundle))
        assert (facts.receiver_gln, facts.receiver_sor_id) == (None, "953741000016009")
        assert [i.source for i in facts.receiver_identifiers] == [
            IdentifierSource.ORGANIZATION,
            IdentifierSource.ENDPOINT,
        ]

    def test_a_receiver_with_nothing_readable_is_refused_listing_what_it_has(
        self, encode: Encode
    ) -> None:
        bundle = as_json("ack-AA-3.3.1.1.xml")
        receiver(bundle)["identifier"] = [
            {"system": "urn:oid:1.2.208.176.1.2", "value": "953741000016009"},
            {"system": GLN_SYSTEM, "value": "579000020935"},  # 12 digits
        ]
        destination(bundle)["endpoint"] = "https://gateway.test/fhir/ack"
        error = refusal(encode(bundle))
        assert error.problem is BundleProblem.RECEIVER_UNIDENTIFIED
        assert str(error).startswith(
            "the receiver Organization 87f589d3-d31d-4d7e-980e-323369ecd969 (Receiver "
            "Organization) has neither a GLN nor a SOR-ID that can be read"
        )
        assert str(error).endswith(
            "it has '953741000016009' under 'urn:oid:1.2.208.176.1.2'; '579000020935' under "
            "'https://www.gs1.org/gln' (not a valid GLN); the endpoint "
            "'https://gateway.test/fhir/ack', which names no SOR-ID"
        )

    def test_a_sender_gln_under_gs1s_oid_is_read_too(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-C-simple.json")
        sender = resource(bundle, header(bundle)["sender"]["reference"])
        identifier(sender, GLN_SYSTEM)["system"] = "urn:oid:1.3.88"
        facts = parse_bundle(encode(bundle))
        assert (facts.sender_gln, facts.sender_sor_id) == ("5790000121786", "328081000016004")


# -- category ----------------------------------------------------------------------------------


class TestRealCategory:
    def test_a_category_coding_without_a_code_is_not_coded(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-C-simple.json")
        for category in listed(communication(bundle), "category"):
            for coding in listed(category, "coding"):
                del coding["code"]
        facts = parse_bundle(encode(bundle))
        assert (facts.category, facts.category_coded) == (None, False)
        assert "the Communication has a category without a code" in facts.notes
        assert facts.to_route_request().category_coded is False

    def test_a_carecommunication_without_category_is_not_coded(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-D-pdf.xml")
        del communication(bundle)["category"]
        facts = parse_bundle(encode(bundle))
        assert (facts.category, facts.category_coded) == (None, False)
        assert "the CareCommunication has no category" in facts.notes

    @pytest.mark.parametrize("name", ["ack-AE-3.4.4.json", "hn-SLHJ_H-discharge.json"])
    def test_a_message_without_a_communication_has_no_category_to_code(
        self, name: str, encode: Encode
    ) -> None:
        facts = parse_bundle(encode(as_json(name)))
        assert (facts.category, facts.category_coded) == (None, None)
        assert facts.notes == ()


# -- attachments -------------------------------------------------------------------------------


class TestRealAttachments:
    def test_a_link_instead_of_data_travels_as_a_link_with_its_declared_size(
        self, encode: Encode
    ) -> None:
        bundle = as_json("cc5-S-D-pdf.xml")
        content = attachment(bundle)
        del content["data"]
        content["url"] = "https://files.example.test/kalenderoversigt.pdf"
        content["size"] = 113327
        (found,) = parse_bundle(encode(bundle)).attachments
        assert found == Attachment(
            "application/pdf", 113327, "Kalenderoversigt", AttachmentContent.LINK, None
        )

    def test_a_link_without_content_type_or_size_is_read_and_noted(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-B-png.xml")
        content = attachment(bundle)
        del content["data"], content["contentType"]
        content["url"] = "https://files.example.test/madpyramiden"
        facts = parse_bundle(encode(bundle))
        assert facts.attachments == (
            Attachment("", 0, "madpyramiden", AttachmentContent.LINK, None),
        )
        assert facts.notes == (
            "the attachment in payload 2 ('madpyramiden') has no contentType",
            "the attachment in payload 2 ('madpyramiden') is a link "
            "(https://files.example.test/madpyramiden) without size: size taken as 0",
        )

    def test_an_attachment_with_neither_data_nor_url_has_no_content(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-D-pdf.xml")
        del attachment(bundle)["data"]
        facts = parse_bundle(encode(bundle))
        assert facts.attachments == (
            Attachment("application/pdf", 0, "Kalenderoversigt", AttachmentContent.NONE, None),
        )
        assert (
            "the attachment in payload 2 ('Kalenderoversigt') has neither data nor url: "
            "it has no content"
        ) in facts.notes

    def test_empty_data_is_no_content(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-D-pdf.xml")
        attachment(bundle)["data"] = "  "
        (found,) = parse_bundle(encode(bundle)).attachments
        assert (found.content, found.size, found.sniffed_type) == (AttachmentContent.NONE, 0, None)

    def test_a_jpeg_relabelled_as_pdf_is_sniffed_as_jpeg(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-B-png.xml")
        attachment(bundle)["contentType"] = "application/pdf"
        (found,) = parse_bundle(encode(bundle)).attachments
        assert (found.mime_type, found.sniffed_type, found.size) == (
            "application/pdf",
            "image/jpeg",
            10334,
        )

    def test_data_wrapped_in_mime_lines_gives_the_same_size_and_type(self, encode: Encode) -> None:
        bundle = as_json("cc5-S-D-pdf.xml")
        content = attachment(bundle)
        data = content["data"]
        content["data"] = "\n" + "\r\n".join(data[i : i + 76] for i in range(0, len(data), 76))
        (found,) = parse_bundle(encode(bundle)).attachments
        assert found == PDF

    @pytest.mark.parametrize("blanks", [0, 50_000_000], ids=["data-first", "50-mb-of-blanks-first"])
    def test_sniffing_decodes_only_the_first_characters_of_100_mb(self, blanks: int) -> None:
        pdf = base64.b64encode(b"%PDF-1.7\r\n%\xb5\xb5").decode()  # 16 characters
        text = "\n" * blanks + pdf + "!" * (100_000_000 - blanks)  # the rest is not base64
        tracemalloc.start()
        started = time.perf_counter()
        try:
            head = base64_head(text)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert head.startswith(b"%PDF-")
        assert peak < 100_000, f"peak {peak:,} bytes"
        assert time.perf_counter() - started < 0.5


# -- message type: definition and event ----------------------------------------------------------


class TestRealMessageTypes:
    def test_a_definition_that_names_another_type_loses_to_the_event_and_is_noted(
        self, encode: Encode, message_types: MessageTypeRegistry
    ) -> None:
        bundle = as_json("ack-AE-3.4.4.json")
        header(bundle)["definition"] = CC_DEFINITION
        facts = parse_bundle(encode(bundle), message_types=message_types)
        assert (facts.message_type, facts.business_message) == ("FCTL", "acknowledgement")
        assert facts.notes == (
            f"the message definition {CC_DEFINITION!r} names FDIS91 but the event "
            "acknowledgement-message names FCTL: used the event's",
        )

    def test_an_unknown_definition_is_noted_and_the_event_types_the_message(
        self, encode: Encode, message_types: MessageTypeRegistry
    ) -> None:
        bundle = as_json("cc5-S-E-forward.json")
        definition = "http://example.test/MessageDefinition/local|1"
        header(bundle)["definition"] = definition
        facts = parse_bundle(encode(bundle), message_types=message_types)
        assert (facts.message_type, facts.definition) == ("FDIS91", definition)
        assert facts.notes == (
            f"the message definition {definition!r} is not in the message-type registry: "
            "the type is the event's (care-communication-message)",
        )

    def test_a_hospital_notification_without_definition_is_typed_by_its_event(
        self, encode: Encode, message_types: MessageTypeRegistry
    ) -> None:
        facts = parse_bundle(
            encode(as_json("hn-SLHJ_H-discharge.json")), message_types=message_types
        )
        assert (facts.definition, facts.message_type, facts.business_message) == (
            None,
            "FDIS20",
            "hospital-notification",
        )

    def test_an_acknowledgement_is_refused_where_only_carecommunication_is_allowed(
        self, encode: Encode
    ) -> None:
        error = refusal(
            encode(as_json("ack-AA-3.3.1.1.xml")), allow_events=["care-communication-message"]
        )
        assert error.problem is BundleProblem.WRONG_EVENT
        assert error.event_code == "acknowledgement-message"
