"""Reading the routing facts of legacy MedCom messages: OIOXML Emessages and EDIFACT interchanges.

Every class of input is checked on a real message from the shared reference folder (read where
it lies, never copied), or on a minimal edit of one: another character-set declaration, other
UNA separators, CR/LF between segments, a second message, a type the registry does not know,
a DOCTYPE, a cut-short file. The BIN01 interchanges are built around the real PDF object of
MedCom's XBIN01 example.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soredi_sync.config import config_dir
from soredi_sync.domain.identifiers import (
    IdentifierKind,
    IdentifierSource,
    ReceiverIdentifier,
    SystemSpelling,
    read_identifier,
)
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln
from soredi_sync.domain.routing import (
    Attachment,
    AttachmentContent,
    Decision,
    Resolver,
    RoutingIndex,
    SnapshotRef,
)
from soredi_sync.parsing.edifact import parse_edifact
from soredi_sync.parsing.facts import LegacyFacts
from soredi_sync.parsing.oioxml import parse_oioxml
from soredi_sync.parsing.refusals import BundleBudget, BundleProblem, InvalidMessage
from soredi_sync.reference_data import load_routing_policy
from tests.support.factories import registry, unit
from tests.support.reference import reference_path

XDIS91_PHYSIO = "xdis91-ec-physio-2014.xml"
XCTL03_RECEIPT = "xctl03-ec-receipt.xml"
DIS91_EDI = "edi-DIS91-1998.edi"
CTL03_EDI = "edi-CTL03.edi"
EXAMPLES = ("services", "carecommunication", "examples")
FLOW1_XDIS91 = "Flow1-XDIS91_Ex_to_FHIR.xml"
FLOW1_XBIN01 = "Flow1-XBIN01_Ex_to_FHIR.xml"
ODENSE_HJEMMEPLEJE_GLN = "5790000121441"  # receiver of the Flow1/Flow3 letters
MEDCOM_TESTCENTER_GLN = "5790001382445"  # their sender, and receiver of the receipts
PDF_SIZE = 4297  # the PDF object of MedCom's XBIN01 examples


def message(name: str) -> bytes:
    """One of the real messages of the shared reference folder, as published."""
    return reference_path("messages", name).read_bytes()


def example(name: str) -> bytes:
    """One of MedCom's CareCommunication flow examples, as published."""
    return reference_path(*EXAMPLES, name).read_bytes()


def gln(value: str, source: IdentifierSource) -> ReceiverIdentifier:
    return ReceiverIdentifier(source, None, value, IdentifierKind.GLN)


def refusal(parse: Callable[[], object]) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse()
    return caught.value


def real_pdf() -> bytes:
    """The PDF object of MedCom's XBIN01 example, decoded."""
    xbin01 = example(FLOW1_XBIN01)
    found = re.search(rb"<Object_Base64Encoded>(.*?)</Object_Base64Encoded>", xbin01, re.S)
    assert found is not None
    return base64.b64decode(found.group(1))


# -- OIOXML --------------------------------------------------------------------------------------


def oioxml(data: bytes, registry: MessageTypeRegistry, **kwargs: object) -> LegacyFacts:
    return parse_oioxml(data, message_types=registry, **kwargs)  # type: ignore[arg-type]


def physio_text(data: bytes, encoding: str) -> str:
    """The letter text of the physiotherapist's XDIS91, read here by hand: Break is a line."""
    text = data.decode(encoding)
    found = re.search(r"<Text01>(.*)</Text01>", text, re.S)
    assert found is not None
    return found.group(1).replace("<Break/>", "\n").strip()


def redeclared(data: bytes, encoding: str) -> bytes:
    """The windows-1252 file, re-encoded and re-declared in ``encoding``."""
    text = data.decode("cp1252").replace('encoding="windows-1252"', f'encoding="{encoding}"')
    return text.encode(encoding)


class TestOioxmlRealMessages:
    def test_an_xdis91_in_windows_1252_is_read_with_its_danish_letters(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(XDIS91_PHYSIO)
        facts = oioxml(data, message_types)
        assert (facts.syntax, facts.message_type, facts.business_message) == (
            "oioxml",
            "XDIS91",
            "correspondence",
        )
        assert facts.receiver_identifiers == (gln("5790000120314", IdentifierSource.OIOXML),)
        assert facts.receiver_gln == "5790000120314"
        assert facts.sender_gln == "5790000121526"
        assert facts.subject == "Undtagelsesredegørelse - fortsat individuel behandling"
        assert facts.text_length == len(physio_text(data, "cp1252"))
        assert (facts.message_id, facts.envelope_id) == ("12152000000203", "12152000000202")
        assert (facts.version_code, facts.encoding, facts.wire_format) == (
            "XD9134L",
            "windows-1252",
            "xml",
        )
        assert (facts.attachments, facts.total_size, facts.notes) == ((), len(data), ())

    def test_an_eanidentifier_reads_as_an_official_gln(
        self, message_types: MessageTypeRegistry
    ) -> None:
        (identifier,) = oioxml(message(XDIS91_PHYSIO), message_types).receiver_identifiers
        read = read_identifier(identifier)
        assert (read.kind, read.spelling, read.value) == (
            IdentifierKind.GLN,
            SystemSpelling.OFFICIAL,
            "5790000120314",
        )

    def test_a_receipt_goes_to_its_own_receiver_not_to_the_original_receiver(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(XCTL03_RECEIPT)
        assert b"<OriginalReceiver><EANIdentifier>5790000120420" in data
        facts = oioxml(data, message_types)
        assert (facts.message_type, facts.business_message) == ("XCTL03", "acknowledgement")
        assert facts.receiver_identifiers == (gln("5790000181872", IdentifierSource.OIOXML),)
        assert facts.sender_gln == "5790000120420"
        assert (facts.subject, facts.text_length, facts.attachments) == (None, None, ())

    def test_a_receipt_without_its_own_receiver_is_refused_rather_than_sent_back(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(XCTL03_RECEIPT).replace(
            b"<Receiver><EANIdentifier>5790000181872</EANIdentifier></Receiver>", b""
        )
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.NO_RECEIVER
        assert "Emessage/PositiveReceipt" in str(problem)

    @pytest.mark.parametrize(
        ("name", "message_type", "receiver", "attachment"),
        [
            (
                "Flow1-XDIS91_Ex_to_FHIR.xml",
                "XDIS91",
                ODENSE_HJEMMEPLEJE_GLN,
                Attachment(
                    "application/pdf",
                    PDF_SIZE,
                    "c39ea6b2605245e4a207415e0205ab6f",
                    AttachmentContent.SEPARATE,
                ),
            ),
            (
                "Flow3-XDIS91_Ex_from_FHIR.xml",
                "XDIS91",
                ODENSE_HJEMMEPLEJE_GLN,
                Attachment(
                    "application/pdf",
                    PDF_SIZE,
                    "64d56beb9d2245d48fa0eaaf186bebae",
                    AttachmentContent.SEPARATE,
                ),
            ),
            (
                "Flow1-XBIN01_Ex_to_FHIR.xml",
                "XBIN01",
                ODENSE_HJEMMEPLEJE_GLN,
                Attachment(
                    "application/pdf",
                    PDF_SIZE,
                    "c39ea6b2605245e4a207415e0205ab6f",
                    AttachmentContent.DATA,
                    "application/pdf",
                ),
            ),
            (
                "Flow3-XBIN01_Ex_from_FHIR.xml",
                "XBIN01",
                ODENSE_HJEMMEPLEJE_GLN,
                Attachment(
                    "application/pdf",
                    PDF_SIZE,
                    "64d56beb9d2245d48fa0eaaf186bebae",
                    AttachmentContent.DATA,
                    "application/pdf",
                ),
            ),
            ("Flow2-XCTL03_Ex_from_FHIR_XBIN01.xml", "XCTL03", MEDCOM_TESTCENTER_GLN, None),
            ("Flow2-XCTL03_Ex_from_FHIR_XDIS91.xml", "XCTL03", MEDCOM_TESTCENTER_GLN, None),
            ("Flow4-XCTL03_Ex_to_FHIR_XBIN01.xml", "XCTL03", MEDCOM_TESTCENTER_GLN, None),
            ("Flow4-XCTL03_Ex_to_FHIR_XDIS91.xml", "XCTL03", MEDCOM_TESTCENTER_GLN, None),
        ],
    )
    def test_every_oioxml_flow_example_is_read(
        self,
        message_types: MessageTypeRegistry,
        name: str,
        message_type: str,
        receiver: str,
        attachment: Attachment | None,
    ) -> None:
        facts = oioxml(example(name), message_types)
        assert facts.message_type == message_type
        assert facts.business_message == message_types.get(message_type).business_message
        assert facts.receiver_identifiers == (gln(receiver, IdentifierSource.OIOXML),)
        assert facts.attachments == ((attachment,) if attachment else ())

    def test_an_xbin01_is_routed_as_the_binary_attachment_business_message(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = oioxml(example(FLOW1_XBIN01), message_types)
        assert (facts.business_message, facts.version_code) == ("binary-attachment", "XB0130X")
        assert (facts.subject, facts.text_length) == (None, None)


class TestOioxmlCharacterSets:
    @pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1", "iso-8859-15", "cp1252"])
    def test_the_same_letter_reads_the_same_in_any_declared_character_set(
        self, message_types: MessageTypeRegistry, encoding: str
    ) -> None:
        original = oioxml(message(XDIS91_PHYSIO), message_types)
        data = redeclared(message(XDIS91_PHYSIO), encoding)
        facts = oioxml(data, message_types)
        assert facts.subject == original.subject
        assert facts.text_length == original.text_length
        assert facts.notes == ()
        assert facts.encoding == encoding.lower()

    def test_a_single_byte_declaration_over_utf8_bytes_is_read_as_utf8_and_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = example(FLOW1_XDIS91)  # MedCom's own example: declares iso-8859-1, is UTF-8
        assert b'encoding="iso-8859-1"' in data and "ø".encode() in data
        facts = oioxml(data, message_types)
        assert facts.subject == "Forundersøgelse"
        assert facts.encoding == "utf-8"
        assert facts.notes == (
            "the XML declares iso-8859-1 but its bytes are UTF-8: read as UTF-8",
        )

    def test_curly_quotes_of_windows_1252_are_read_as_such(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xdis91_with(
            message_types, b"<Subject>Undtagelses", b"<Subject>\x93Ny\x94 \x96 Undtagelses"
        )
        assert facts.subject is not None and facts.subject.startswith("“Ny” – Undtagelses")
        assert facts.notes == ()

    def test_windows_1252_characters_under_an_iso_8859_1_declaration_are_read_and_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(XDIS91_PHYSIO).replace(b"windows-1252", b"ISO-8859-1")
        data = data.replace(b"<Subject>Undtagelses", b"<Subject>\x93Ny\x94 Undtagelses")
        facts = oioxml(data, message_types)
        assert facts.subject is not None and facts.subject.startswith("“Ny” Undtagelses")
        assert facts.encoding == "windows-1252"
        assert facts.notes == (
            "the XML declares ISO-8859-1 but has windows-1252 characters (such as curly quotes): "
            "read as windows-1252",
        )

    def test_latin1_bytes_without_a_declaration_are_refused_as_an_encoding_fault(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = re.sub(rb"<\?xml[^>]*\?>", b"", message(XDIS91_PHYSIO))
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.ENCODING
        assert "not valid UTF-8" in str(problem)

    def test_an_unknown_character_set_is_refused(self, message_types: MessageTypeRegistry) -> None:
        data = message(XDIS91_PHYSIO).replace(b"windows-1252", b"x-medcom-9")
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.ENCODING
        assert "'x-medcom-9'" in str(problem)


def xdis91_with(registry: MessageTypeRegistry, old: bytes, new: bytes) -> LegacyFacts:
    data = message(XDIS91_PHYSIO)
    assert old in data
    return oioxml(data.replace(old, new), registry)


class TestOioxmlMessageType:
    def test_the_version_code_names_the_type_when_the_statistical_code_is_missing(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = (
            message(XDIS91_PHYSIO)
            .replace(b"<StatisticalCode>XDIS91</StatisticalCode>", b"")
            .replace(b"<TypeCode>XDIS91</TypeCode>", b"")
        )
        facts = oioxml(data, message_types)
        assert (facts.message_type, facts.notes) == ("XDIS91", ())

    def test_an_unknown_type_is_refused_naming_what_the_letter_says(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = (
            message(XDIS91_PHYSIO)
            .replace(b"<StatisticalCode>XDIS91", b"<StatisticalCode>XDIS99")
            .replace(b"<VersionCode>XD9134L", b"<VersionCode>XD9999L")
            .replace(b"<TypeCode>XDIS91", b"<TypeCode>XDIS99")
        )
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.UNKNOWN_MESSAGE_TYPE
        assert str(problem).startswith("Emessage/ClinicalEmail: not a known OIOXML message type")
        assert "'XDIS99'" in str(problem) and "'XD9999L'" in str(problem)

    def test_an_edifact_type_code_in_an_oioxml_letter_does_not_count(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = (
            message(XDIS91_PHYSIO)
            .replace(b"<StatisticalCode>XDIS91", b"<StatisticalCode>DIS91")
            .replace(b"<VersionCode>XD9134L", b"<VersionCode>D9134L")
            .replace(b"<TypeCode>XDIS91", b"<TypeCode>DIS91")
        )
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.UNKNOWN_MESSAGE_TYPE
        assert "'DIS91' (the EDIFACT type DIS91)" in str(problem)

    def test_a_statistical_code_that_contradicts_the_version_code_wins_and_is_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xdis91_with(message_types, b"<VersionCode>XD9134L", b"<VersionCode>XC0330Q")
        assert facts.message_type == "XDIS91"
        assert facts.notes == (
            "Letter/StatisticalCode XDIS91 says XDIS91 but Letter/VersionCode XC0330Q says "
            "XCTL03: routed as XDIS91",
        )

    def test_an_unknown_version_of_a_known_type_is_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xdis91_with(message_types, b"<VersionCode>XD9134L", b"<VersionCode>XD9135L")
        assert facts.message_type == "XDIS91"
        assert facts.notes == (
            "Letter/VersionCode XD9135L is not a version code of XDIS91 (known: XD9134L)",
        )

    def test_an_older_namespace_version_reads_the_same(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xdis91_with(message_types, b"2006/07/01/", b"2005/08/07/")
        assert (facts.message_type, facts.receiver_gln, facts.notes) == (
            "XDIS91",
            "5790000120314",
            (),
        )

    def test_a_namespace_that_is_not_medcoms_is_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xdis91_with(
            message_types,
            b"http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/",
            b"urn:example:letters",
        )
        assert facts.message_type == "XDIS91"
        assert facts.notes == ("the Emessage is in urn:example:letters, not a MedCom namespace",)

    def test_a_prefixed_root_reads_the_same(self, message_types: MessageTypeRegistry) -> None:
        data = (
            message(XCTL03_RECEIPT)
            .replace(b"<Emessage xmlns=", b"<m:Emessage xmlns:m=")
            .replace(b"</Emessage>", b"</m:Emessage>")
        )
        facts = oioxml(data, message_types)
        assert (facts.message_type, facts.receiver_gln) == ("XCTL03", "5790000181872")

    def test_a_root_with_an_undeclared_prefix_is_malformed(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = (
            message(XCTL03_RECEIPT)
            .replace(b"<Emessage", b"<m:Emessage")
            .replace(b"</Emessage>", b"</m:Emessage>")
        )
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.MALFORMED
        assert "not declared" in str(problem)

    def test_an_xml_root_other_than_emessage_is_not_an_oioxml_message(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(XDIS91_PHYSIO).replace(b"Emessage", b"Message")
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.NOT_A_MESSAGE_FILE

    def test_an_emessage_without_a_letter_is_refused(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = re.sub(
            rb"<ClinicalEmail>.*</ClinicalEmail>", b"", message(XDIS91_PHYSIO), flags=re.S
        )
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.NOT_A_MESSAGE_FILE
        assert "no letter" in str(problem)


class TestOioxmlLetter:
    def test_formatting_elements_count_by_their_text_and_space_as_one_character(
        self, message_types: MessageTypeRegistry
    ) -> None:
        original = oioxml(message(XDIS91_PHYSIO), message_types)
        facts = xdis91_with(
            message_types,
            b"<Text01>Begrundelse:",
            b"<Text01><Bold>Begrundelse:</Bold><Space/>",
        )
        assert facts.text_length == (original.text_length or 0) + 1

    def test_html_line_breaks_count_as_line_breaks(
        self, message_types: MessageTypeRegistry
    ) -> None:
        original = oioxml(message(XDIS91_PHYSIO), message_types)
        facts = oioxml(message(XDIS91_PHYSIO).replace(b"<Break/>", b"<br/>"), message_types)
        assert facts.text_length == original.text_length

    def test_several_text_blocks_are_one_text_a_line_apart(
        self, message_types: MessageTypeRegistry
    ) -> None:
        original = oioxml(message(XDIS91_PHYSIO), message_types)
        facts = xdis91_with(message_types, b"</Text01>", b"</Text01><Text02>Tilf\xf8jet.</Text02>")
        assert facts.text_length == (original.text_length or 0) + len("\nTilføjet.")

    def test_two_letters_in_one_emessage_route_the_first_and_say_so(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(XDIS91_PHYSIO)
        letter = re.search(rb"<ClinicalEmail>.*</ClinicalEmail>", data, re.S)
        assert letter is not None
        second = letter.group().replace(b"5790000120314", b"5790000181872")
        facts = oioxml(data.replace(b"</Emessage>", second + b"</Emessage>"), message_types)
        assert facts.receiver_gln == "5790000120314"
        assert facts.message_count == 2
        assert facts.notes == ("the Emessage holds 2 letters: routed the first",)

    def test_an_invalid_ean_is_kept_for_the_resolver_to_name(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xdis91_with(message_types, b">5790000120314<", b">579000012031<")
        assert facts.receiver_identifiers == (gln("579000012031", IdentifierSource.OIOXML),)
        assert facts.receiver_gln is None

    def test_the_request_carries_every_fact_and_no_category(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = oioxml(example(FLOW1_XDIS91), message_types)
        request = facts.to_route_request()
        assert request.business_message == "correspondence"
        assert request.sender_syntax == "oioxml"
        assert request.receiver_identifiers == facts.receiver_identifiers
        assert (request.receiver_gln, request.receiver_sor_id) == (ODENSE_HJEMMEPLEJE_GLN, None)
        assert (request.subject, request.legacy_subject()) == ("Forundersøgelse",) * 2
        assert (request.category, request.topic, request.category_coded) == (None, None, None)
        assert request.text_length == facts.text_length
        assert request.attachments == facts.attachments
        assert (request.total_size, request.message_id) == (facts.total_size, "Brevt23400929")
        assert facts.to_route_request("edifact").sender_syntax == "edifact"
        assert facts.to_route_request(category_names={"x": "y"}) == request


def xbin01_with(registry: MessageTypeRegistry, old: bytes, new: bytes) -> LegacyFacts:
    data = example(FLOW1_XBIN01)
    assert old in data
    return oioxml(data.replace(old, new), registry)


def _size_notes(facts: LegacyFacts) -> list[str]:
    # MedCom's XBIN01 example also carries VersionCode XB0130X, which MedCom's list of
    # standard IDs does not name (only XB0131X): that note is about the type, not the size.
    return [note for note in facts.notes if "size" in note.lower()]


class TestOioxmlAttachments:
    def test_a_png_label_on_pdf_bytes_shows_both_types(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xbin01_with(
            message_types,
            b"<ObjectExtensionCode>pdf</ObjectExtensionCode>",
            b"<ObjectExtensionCode>png</ObjectExtensionCode>",
        )
        (attachment,) = facts.attachments
        assert (attachment.mime_type, attachment.sniffed_type) == ("image/png", "application/pdf")

    def test_an_object_without_a_declared_size_has_its_decoded_size(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xbin01_with(message_types, b"<OriginalObjectSize>4297</OriginalObjectSize>", b"")
        assert facts.attachments[0].size == PDF_SIZE
        assert _size_notes(facts) == []

    def test_a_declared_size_that_the_data_contradicts_is_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = xbin01_with(
            message_types,
            b"<OriginalObjectSize>4297<",
            b"<OriginalObjectSize>5000<",
        )
        assert facts.attachments[0].size == 5000
        assert _size_notes(facts) == [
            "the binary object 1 declares OriginalObjectSize 5000 but its data decodes to 4297 "
            "bytes: used the declared size",
        ]

    def test_an_object_without_data_has_no_content(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = re.sub(
            rb"<Object_Base64Encoded>.*</Object_Base64Encoded>",
            b"",
            example(FLOW1_XBIN01),
            flags=re.S,
        )
        (attachment,) = oioxml(data, message_types).attachments
        assert (attachment.content, attachment.size, attachment.sniffed_type) == (
            AttachmentContent.NONE,
            PDF_SIZE,
            None,
        )

    @pytest.mark.parametrize(
        ("extension", "mime_type"),
        [
            (b"jpeg", "image/jpeg"),
            (b"jpg", "image/jpeg"),
            (b"tiff", "image/tiff"),
            (b"TIF", "image/tiff"),
            (b"gif", "image/gif"),
            (b"bmp", "image/bmp"),
            (b"png", "image/png"),
            (b"doc", "application/msword"),
            (b"xyz", "application/octet-stream"),
        ],
    )
    def test_a_referenced_object_declares_the_type_of_its_extension_code(
        self, message_types: MessageTypeRegistry, extension: bytes, mime_type: str
    ) -> None:
        data = example(FLOW1_XDIS91).replace(
            b"<ObjectExtensionCode>pdf<", b"<ObjectExtensionCode>" + extension + b"<"
        )
        (attachment,) = oioxml(data, message_types).attachments
        assert (attachment.mime_type, attachment.content) == (
            mime_type,
            AttachmentContent.SEPARATE,
        )

    def test_a_url_reference_is_a_link_and_a_sup_reference_no_attachment(
        self, message_types: MessageTypeRegistry
    ) -> None:
        references = (
            b"<Reference><RefDescription>Vejledning</RefDescription>"
            b"<URL>https://example.org/vejledning.pdf</URL></Reference>"
            b"<Reference><RefDescription>Billeder</RefDescription><SUP>true</SUP></Reference>"
        )
        data = example(FLOW1_XDIS91).replace(b"</ClinicalEmail>", references + b"</ClinicalEmail>")
        facts = oioxml(data, message_types)
        assert facts.attachments[1:] == (Attachment("", 0, "Vejledning", AttachmentContent.LINK),)
        assert facts.notes[1:] == (
            "reference 2 is a link ('https://example.org/vejledning.pdf'), not a binary object",
            "reference 3 (Billeder) points at supplementary information sent otherwise: "
            "no attachment",
        )

    def test_an_xbin01_over_10_mb_is_read_without_libxml2_limits(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = example(FLOW1_XBIN01)
        pdf = real_pdf()
        big = base64.b64encode(pdf * 3000)  # about 13 MB, 17 MB of base64 in one text node
        found = re.search(rb"<Object_Base64Encoded>(.*?)</Object_Base64Encoded>", data, re.S)
        assert found is not None
        facts = oioxml(
            data.replace(found.group(1), big).replace(
                b">4297<", b">" + str(len(pdf) * 3000).encode() + b"<"
            ),
            message_types,
        )
        (attachment,) = facts.attachments
        assert (attachment.size, attachment.sniffed_type) == (
            len(pdf) * 3000,
            "application/pdf",
        )


class TestOioxmlHardening:
    @pytest.mark.parametrize(
        "doctype",
        [
            b'<!DOCTYPE Emessage [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>',
            b'<!DOCTYPE Emessage [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
            b'<!DOCTYPE Emessage SYSTEM "http://example.org/emessage.dtd">',
            b"<!doctype Emessage>",
        ],
    )
    def test_a_doctype_is_refused_before_the_xml_is_parsed(
        self, message_types: MessageTypeRegistry, doctype: bytes
    ) -> None:
        data = message(XDIS91_PHYSIO).replace(b"?>\n", b"?>\n" + doctype + b"\n", 1)
        problem = refusal(lambda: oioxml(data, message_types))
        assert problem.problem is BundleProblem.DOCTYPE

    def test_an_entity_reference_without_a_dtd_is_not_resolved(
        self, message_types: MessageTypeRegistry
    ) -> None:
        problem = refusal(
            lambda: xdis91_with(message_types, b"<Subject>Undtagelses", b"<Subject>&xxe;")
        )
        assert problem.problem is BundleProblem.MALFORMED
        assert "xxe" in str(problem)

    @pytest.mark.parametrize("keep", [0.25, 0.5, 0.9, 0.99])
    def test_a_cut_short_message_is_refused_as_malformed(
        self, message_types: MessageTypeRegistry, keep: float
    ) -> None:
        data = message(XDIS91_PHYSIO)
        problem = refusal(lambda: oioxml(data[: int(len(data) * keep)], message_types))
        assert problem.problem is BundleProblem.MALFORMED

    def test_a_message_over_the_element_budget_is_refused(
        self, message_types: MessageTypeRegistry
    ) -> None:
        problem = refusal(
            lambda: oioxml(
                message(XDIS91_PHYSIO), message_types, budget=BundleBudget(max_elements=20)
            )
        )
        assert problem.problem is BundleProblem.TOO_MANY_ELEMENTS
        assert "20 elements" in str(problem)

    def test_a_message_over_the_depth_budget_is_refused(
        self, message_types: MessageTypeRegistry
    ) -> None:
        deep = b"<Bold>" * 70 + b"x" + b"</Bold>" * 70
        problem = refusal(
            lambda: xdis91_with(message_types, b"<Text01>Begrundelse:", b"<Text01>" + deep)
        )
        assert problem.problem is BundleProblem.TOO_DEEP


# -- EDIFACT -------------------------------------------------------------------------------------


def edifact(data: bytes, registry: MessageTypeRegistry, **kwargs: object) -> LegacyFacts:
    return parse_edifact(data, message_types=registry, **kwargs)  # type: ignore[arg-type]


def dis91_with(registry: MessageTypeRegistry, old: bytes, new: bytes) -> LegacyFacts:
    data = message(DIS91_EDI)
    assert old in data
    return edifact(data.replace(old, new), registry)


def dis91_body() -> tuple[bytes, bytes, bytes]:
    """The real DIS91 interchange split into UNA+UNB, its message (UNH..UNT), and UNZ."""
    data = message(DIS91_EDI)
    start, end = data.index(b"UNH+"), data.index(b"UNZ+")
    return data[:start], data[start:end], data[end:]


def bin01(
    obj: bytes, *, extension: bytes = b"PDF", size: int | None = None, ftx: bytes = b""
) -> bytes:
    """A BIN01 interchange around ``obj``, its envelope that of MedCom's XBIN01 example."""
    declared = str(len(obj) if size is None else size).encode()
    return (
        b"UNA:+.? '\r\n"
        b"UNB+UNOC:3+5790001382445:14+5790000121441:14+231120:1745+MEDBIN62529++++0'\r\n"
        b"UNH+031120PWE62528+MEDBIN:D:93A:UN:B0131X+BIN01'\r\n"
        b"BGM+OBJ++9+NA'\r\n"
        + ftx
        + b"UNO+1+AID:c39ea6b2605245e4a207415e0205ab6f+OBJ:IMG:"
        + extension
        + b":91+"
        + declared
        + b":14:1:A'"
        + obj
        + b"UNP+"
        + declared
        + b"+1'\r\nUNT+5+031120PWE62528'\r\nUNZ+1+MEDBIN62529'\r\n"
    )


class TestEdifactRealMessages:
    def test_a_dis91_in_latin1_is_read_with_its_danish_letters(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(DIS91_EDI)
        facts = edifact(data, message_types)
        assert (facts.syntax, facts.message_type, facts.business_message) == (
            "edifact",
            "DIS91",
            "correspondence",
        )
        assert facts.receiver_identifiers == (gln("5790000128700", IdentifierSource.EDIFACT),)
        assert (facts.receiver_gln, facts.sender_gln) == ("5790000128700", "5790000120400")
        assert facts.subject == "Forundersøgelse"
        assert (facts.message_id, facts.envelope_id, facts.version_code) == (
            "BrevNr00129",
            "KuvertNr012234",
            "D9134L",
        )
        assert (facts.encoding, facts.wire_format, facts.total_size) == (
            "iso-8859-1",
            "edifact",
            len(data),
        )
        assert (facts.attachments, facts.message_count, facts.notes) == ((), 1, ())

    def test_the_same_letter_has_the_same_text_length_in_edifact_and_oioxml(
        self, message_types: MessageTypeRegistry
    ) -> None:
        # MedCom's Flow1 XDIS91 carries the text of the 1998 DIS91 (runs-on lines joined, the
        # lone "." lines empty, a released ":" a colon), each line ending in a Break.
        dis91 = edifact(message(DIS91_EDI), message_types)
        xdis91 = oioxml(example(FLOW1_XDIS91), message_types)
        assert dis91.text_length == xdis91.text_length == 308

    def test_a_ctl03_goes_to_its_recipient_not_to_the_original_one(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(CTL03_EDI)
        assert b"UCI+MEDREF01095+5790000181872:14+5790000120420:14" in data
        facts = edifact(data, message_types)
        assert (facts.message_type, facts.business_message) == ("CTL03", "acknowledgement")
        assert facts.receiver_identifiers == (gln("5790000181872", IdentifierSource.EDIFACT),)
        assert facts.sender_gln == "5790000120420"
        assert (facts.subject, facts.text_length, facts.notes) == (None, None, ())

    def test_the_request_is_an_edifact_senders(self, message_types: MessageTypeRegistry) -> None:
        facts = edifact(message(DIS91_EDI), message_types)
        request = facts.to_route_request()
        assert (request.business_message, request.sender_syntax) == ("correspondence", "edifact")
        assert request.receiver_identifiers == facts.receiver_identifiers
        assert (request.subject, request.text_length, request.category_coded) == (
            "Forundersøgelse",
            308,
            None,
        )


class TestEdifactSyntax:
    def test_other_una_separators_and_release_character_read_the_same(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(DIS91_EDI)
        assert not any(c in data for c in b"!*#~")
        original = edifact(data, message_types)
        custom = data.translate(bytes.maketrans(b":+?'", b"!*#~"))
        assert custom.startswith(b"UNA!*.# ~")
        assert edifact(custom, message_types) == original

    def test_released_separators_are_data(self, message_types: MessageTypeRegistry) -> None:
        facts = dis91_with(message_types, b"++Forunders", b"++For?+und?:er?'s?? ")
        assert facts.subject == "For+und:er's? øgelse"

    @pytest.mark.parametrize(
        ("between", "note"),
        [
            (b"'\r\n", ()),
            (b"'", ()),
            (b"'\r\n\r\n  ", ()),
        ],
    )
    def test_line_breaks_between_segments_change_nothing(
        self, message_types: MessageTypeRegistry, between: bytes, note: tuple[str, ...]
    ) -> None:
        data = message(DIS91_EDI)
        original = edifact(data, message_types)
        changed = data.replace(b"'\n", between)
        facts = edifact(changed, message_types)
        assert replace(facts, total_size=original.total_size) == replace(original, notes=note)

    def test_a_file_wrapped_at_a_fixed_width_reads_the_same_and_says_so(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(DIS91_EDI)
        original = edifact(data, message_types)
        flat = data.replace(b"'\n", b"'")
        wrapped = b"\r\n".join(flat[i : i + 60] for i in range(0, len(flat), 60))
        facts = edifact(wrapped, message_types)
        assert (facts.subject, facts.text_length) == (original.subject, original.text_length)
        assert facts.notes == ("line breaks inside segments (a wrapped file) were dropped",)

    def test_without_una_the_default_separators_hold(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(DIS91_EDI)
        facts = edifact(data[data.index(b"UNB") :], message_types)
        assert (facts.message_type, facts.text_length) == ("DIS91", 308)

    def test_level_b_control_character_separators_are_read(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(CTL03_EDI)
        data = data[data.index(b"UNB") :].replace(b"'\n", b"\x1c")
        data = data.translate(bytes.maketrans(b"+:", b"\x1d\x1f")).replace(b"UNOC", b"UNOB")
        facts = edifact(data, message_types)
        assert (facts.message_type, facts.receiver_gln) == ("CTL03", "5790000181872")

    def test_two_messages_in_one_interchange_route_the_first_and_say_so(
        self, message_types: MessageTypeRegistry
    ) -> None:
        head, body, tail = dis91_body()
        second = body.replace(b"BrevNr00129", b"BrevNr00130")
        data = head + body + second + tail.replace(b"UNZ+1+", b"UNZ+2+")
        facts = edifact(data, message_types)
        assert (facts.message_id, facts.message_count) == ("BrevNr00129", 2)
        assert facts.notes == ("the interchange holds 2 messages (DIS91, DIS91): routed the first",)

    def test_counts_that_disagree_with_the_content_are_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"UNT+30+", b"UNT+31+")
        assert facts.notes == ("UNT counts 31 segments but message 'BrevNr00129' has 30",)


class TestEdifactCharacterSets:
    def test_unob_text_with_other_characters_is_read_as_latin1_and_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"UNB+UNOC:3", b"UNB+UNOB:3")
        assert facts.subject == "Forundersøgelse"
        assert facts.notes == (
            "UNB says UNOB (ASCII) but the text has other characters: read as ISO-8859-1",
        )

    def test_unoc_text_in_utf8_bytes_is_read_as_utf8_and_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message(DIS91_EDI).decode("latin-1").encode("utf-8")
        facts = edifact(data, message_types)
        assert (facts.subject, facts.encoding, facts.text_length) == (
            "Forundersøgelse",
            "utf-8",
            308,
        )
        assert facts.notes == ("UNB says UNOC (iso-8859-1) but the text is UTF-8: read as UTF-8",)

    def test_unoc_text_with_windows_1252_quotes_is_read_as_windows_1252_and_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"++Forunders", b"++\x93Ny\x94 Forunders")
        assert facts.subject == "“Ny” Forundersøgelse"
        assert facts.encoding == "windows-1252"
        assert facts.notes == (
            "UNB says UNOC (iso-8859-1) but the text has windows-1252 characters (such as curly "
            "quotes): read as windows-1252",
        )

    def test_unow_is_utf8(self, message_types: MessageTypeRegistry) -> None:
        data = message(DIS91_EDI).decode("latin-1").encode("utf-8").replace(b"UNOC", b"UNOW")
        facts = edifact(data, message_types)
        assert (facts.subject, facts.encoding, facts.notes) == ("Forundersøgelse", "utf-8", ())


class TestEdifactMessageType:
    def test_the_common_access_reference_names_the_type_without_a_version_code(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"MEDDIS:D:93A:UN:D9134L", b"MEDDIS:D:93A:UN")
        assert (facts.message_type, facts.version_code, facts.notes) == ("DIS91", None, ())

    def test_an_unknown_type_is_refused_naming_what_the_unh_says(
        self, message_types: MessageTypeRegistry
    ) -> None:
        problem = refusal(
            lambda: dis91_with(
                message_types, b"MEDDIS:D:93A:UN:D9134L+DIS91", b"MEDDIS:D:93A:UN:D9999L+DIS99"
            )
        )
        assert problem.problem is BundleProblem.UNKNOWN_MESSAGE_TYPE
        assert str(problem).startswith("UNH MEDDIS: not a known EDIFACT message type")
        assert "'D9999L'" in str(problem) and "'DIS99'" in str(problem)

    def test_the_version_code_wins_over_a_contradicting_access_reference(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"D9134L+DIS91", b"D9134L+CTL03")
        assert facts.message_type == "DIS91"
        assert facts.notes == (
            "UNH message identifier D9134L says DIS91 but UNH common access reference CTL03 "
            "says CTL03: routed as DIS91",
        )


class TestEdifactReceiver:
    def test_a_recipient_qualified_otherwise_than_14_is_not_taken_as_a_gln(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"+5790000128700:14+", b"+5790000128700:ZZZ+")
        assert facts.receiver_identifiers == (
            ReceiverIdentifier(IdentifierSource.EDIFACT, None, "5790000128700", None),
        )
        assert facts.receiver_gln is None
        assert facts.notes == ("the UNB recipient 5790000128700 has qualifier ZZZ, not 14 (GLN)",)

    def test_a_recipient_without_qualifier_is_read_as_a_gln_and_said(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = dis91_with(message_types, b"+5790000128700:14+", b"+5790000128700+")
        assert facts.receiver_gln == "5790000128700"
        assert facts.notes == ("the UNB recipient 5790000128700 has no qualifier: read as a GLN",)

    def test_a_unb_without_recipient_is_refused(self, message_types: MessageTypeRegistry) -> None:
        problem = refusal(lambda: dis91_with(message_types, b"+5790000128700:14+", b"++"))
        assert problem.problem is BundleProblem.NO_RECEIVER


class TestEdifactMalformed:
    @pytest.mark.parametrize(
        ("edit", "says"),
        [
            (lambda d: d[: d.index(b"UNZ")], "without UNZ"),
            (lambda d: d[: d.index(b"UNT")], "has no UNT"),
            (lambda d: d[: d.index(b"FTX+NC") + 20], "no segment terminator"),
            (lambda d: d[: len(d) // 2], "no segment terminator"),
            (lambda d: re.sub(rb"UNB[^']*'\n", b"", d), "no UNB"),
            (lambda d: re.sub(rb"UNH[^']*'\n", b"", d), "no message"),
            (lambda d: d.replace(b"BGM+", b"bgm+"), "segment tag"),
            (lambda d: d.replace(b"UNA:+.? '", b"UNA:::? '"), "distinct separators"),
            (lambda d: d[:6], "cut short"),
        ],
    )
    def test_a_broken_interchange_is_refused_saying_where(
        self,
        message_types: MessageTypeRegistry,
        edit: Callable[[bytes], bytes],
        says: str,
    ) -> None:
        data = edit(message(DIS91_EDI))
        problem = refusal(lambda: edifact(data, message_types))
        assert says in str(problem)
        assert problem.problem is BundleProblem.MALFORMED

    def test_an_interchange_over_the_element_budget_is_refused(
        self, message_types: MessageTypeRegistry
    ) -> None:
        problem = refusal(
            lambda: edifact(message(DIS91_EDI), message_types, budget=BundleBudget(max_elements=50))
        )
        assert problem.problem is BundleProblem.TOO_MANY_ELEMENTS

    def test_a_hostile_run_of_release_characters_is_refused_quickly(
        self, message_types: MessageTypeRegistry
    ) -> None:
        head, _, _ = dis91_body()
        problem = refusal(lambda: edifact(head + b"UNH+1+" + b"?'" * 2_000_000, message_types))
        assert problem.problem is BundleProblem.MALFORMED


class TestEdifactAttachments:
    def test_a_bin01_carries_its_object_whose_bytes_are_never_read_as_segments(
        self, message_types: MessageTypeRegistry
    ) -> None:
        pdf = real_pdf() + b"'UNZ+1+X'UNH+"  # separators inside the object are its bytes
        facts = edifact(bin01(pdf), message_types)
        assert (facts.message_type, facts.business_message) == ("BIN01", "binary-attachment")
        assert facts.receiver_gln == ODENSE_HJEMMEPLEJE_GLN
        assert facts.attachments == (
            Attachment(
                "application/pdf",
                len(pdf),
                "c39ea6b2605245e4a207415e0205ab6f",
                AttachmentContent.DATA,
                "application/pdf",
            ),
        )
        assert facts.notes == ()

    def test_a_tif_label_on_pdf_bytes_shows_both_types(
        self, message_types: MessageTypeRegistry
    ) -> None:
        (attachment,) = edifact(bin01(real_pdf(), extension=b"TIF"), message_types).attachments
        assert (attachment.mime_type, attachment.sniffed_type) == ("image/tiff", "application/pdf")

    @pytest.mark.parametrize("size", [PDF_SIZE - 10, PDF_SIZE + 1, PDF_SIZE * 2])
    def test_an_object_whose_declared_length_is_wrong_is_refused(
        self, message_types: MessageTypeRegistry, size: int
    ) -> None:
        problem = refusal(lambda: edifact(bin01(real_pdf(), size=size), message_types))
        assert problem.problem is BundleProblem.MALFORMED
        assert "binary object (UNO)" in str(problem)

    def test_a_bin01_without_an_object_is_said(self, message_types: MessageTypeRegistry) -> None:
        data = re.sub(rb"UNO\+.*UNP\+[^']*'\r\n", b"", bin01(real_pdf()), flags=re.S)
        facts = edifact(data, message_types)
        assert facts.attachments == ()
        assert "the BIN01 message carries no binary object (UNO)" in facts.notes

    def test_a_dis91_references_its_objects_sent_apart(
        self, message_types: MessageTypeRegistry
    ) -> None:
        reference = (
            b"FTX+BIN+P00++Epikrise:c39ea6b2605245e4a207415e0205ab6f:IMG:PDF:4297'\n"
            b"FTX+URL+P00++Vejledning:https?://example.org/\\:vejledning.pdf'\n"
        )
        facts = dis91_with(message_types, b"UNT+30+", reference + b"UNT+32+")
        assert facts.attachments == (
            Attachment(
                "application/pdf",
                PDF_SIZE,
                "c39ea6b2605245e4a207415e0205ab6f",
                AttachmentContent.SEPARATE,
            ),
            Attachment("", 0, "Vejledning", AttachmentContent.LINK),
        )
        assert facts.text_length == 308  # references are not text
        assert facts.notes == (
            "reference 2 is a link ('https://example.org/vejledning.pdf'), not a binary object",
        )


# -- routed ---------------------------------------------------------------------------------------

CONVERSION_DAY = date(2026, 3, 2)  # within the FHIR <-> OIOXML conversion window


def resolver(message_types: MessageTypeRegistry, glns: dict[str, list[str]]) -> Resolver:
    """A registry of the real receivers, each its own unit (SOR-IDs made up), with its types."""
    units = [unit(f"{n}1000016000", own_gln=value) for n, value in enumerate(glns, start=10)]
    world = registry(units, [Gln(value, vans="41000035001") for value in glns], glns)
    snapshot = SnapshotRef(1, datetime(2026, 3, 2, 4, 30, tzinfo=UTC))
    policy = load_routing_policy(config_dir() / "routing.toml")
    return Resolver(RoutingIndex.build(snapshot, world), policy, message_types)


class TestRoutedAsHeld:
    def test_an_xdis91_to_a_fhir_receiver_is_converted_to_a_carecommunication(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = oioxml(example(FLOW1_XDIS91), message_types)
        routes = resolver(message_types, {ODENSE_HJEMMEPLEJE_GLN: ["FDIS91", "FCTL"]})
        decision = routes.resolve(facts.to_route_request(), CONVERSION_DAY)
        assert (decision.decision, decision.message_type) == (Decision.DELIVER, "FDIS91")
        assert [c.step for c in decision.conversion] == ["oioxml->fhir"]

    def test_an_xctl03_to_a_fhir_receiver_is_converted_to_an_acknowledgement(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = oioxml(example("Flow4-XCTL03_Ex_to_FHIR_XDIS91.xml"), message_types)
        routes = resolver(message_types, {MEDCOM_TESTCENTER_GLN: ["FDIS91", "FCTL"]})
        decision = routes.resolve(facts.to_route_request(), CONVERSION_DAY)
        assert (decision.decision, decision.message_type) == (Decision.DELIVER, "FCTL")

    def test_a_dis91_to_an_edifact_receiver_is_delivered_natively(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = edifact(message(DIS91_EDI), message_types)
        routes = resolver(message_types, {"5790000128700": ["DIS91", "CTL03"]})
        decision = routes.resolve(facts.to_route_request(), CONVERSION_DAY)
        assert (decision.decision, decision.message_type, decision.conversion) == (
            Decision.DELIVER,
            "DIS91",
            (),
        )


# -- never anything but InvalidMessage ------------------------------------------------------------


SEPARATORS = [b"'", b"+", b":", b"?", b"<", b">", b"&", b"UNH+", b"UNO+1+A:B+C:D:E+9"]


def _mutations() -> st.SearchStrategy[tuple[str, int, bytes]]:
    return st.tuples(
        st.sampled_from(["flip", "cut", "insert", "delete"]),
        st.integers(min_value=0, max_value=10**6),
        st.binary(min_size=1, max_size=8)
        | st.sampled_from(
            [b"'", b"+", b":", b"?", b"<", b">", b"&", b"UNH+", b"UNO+1+A:B+C:D:E+9"]
        ),
    )


def mutate(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    for kind, where, piece in edits:
        at = where % (len(data) + 1)
        if kind == "flip" and data:
            at %= len(data)
            data = data[:at] + bytes([data[at] ^ piece[0]]) + data[at + 1 :]
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + piece + data[at:]
        else:
            data = data[:at] + data[at + len(piece) :]
    return data


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestNeverCrashes:
    @FUZZ
    @given(
        name=st.sampled_from([XDIS91_PHYSIO, XCTL03_RECEIPT]),
        edits=st.lists(_mutations(), min_size=1, max_size=4),
    )
    def test_a_mutated_oioxml_message_is_read_or_refused_never_crashes(
        self, message_types: MessageTypeRegistry, name: str, edits: list[tuple[str, int, bytes]]
    ) -> None:
        data = mutate(message(name), edits)
        try:
            facts = oioxml(data, message_types)
        except InvalidMessage:
            return
        assert facts.message_type in message_types

    @FUZZ
    @given(
        name=st.sampled_from([DIS91_EDI, CTL03_EDI, "BIN01"]),
        edits=st.lists(_mutations(), min_size=1, max_size=4),
    )
    def test_a_mutated_edifact_interchange_is_read_or_refused_never_crashes(
        self, message_types: MessageTypeRegistry, name: str, edits: list[tuple[str, int, bytes]]
    ) -> None:
        original = bin01(b"%PDF-1.4 tiny'UNZ") if name == "BIN01" else message(name)
        data = mutate(original, edits)
        try:
            facts = edifact(data, message_types)
        except InvalidMessage:
            return
        assert facts.message_type in message_types
