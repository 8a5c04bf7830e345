"""parse_message: one entry for FHIR bundles, OIOXML Emessages and EDIFACT interchanges.

The body decides the syntax; a declared content type that names another wire format is
refused. Every real message of the shared reference folder is dispatched to its own reader.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.parsing.facts import LegacyFacts
from soredi_sync.parsing.fhir import BundleFacts
from soredi_sync.parsing.message import parse_message, sniff_wire_format
from soredi_sync.parsing.refusals import BundleProblem, InvalidMessage
from tests.support.reference import reference_path

# Every real message: file -> (syntax, message type, business message, receiver GLN)
MESSAGES = {
    "cc5-S-A-new-longtext.json": ("fhir", "FDIS91", "correspondence", "5790001353308"),
    "cc5-S-B-png.xml": ("fhir", "FDIS91", "correspondence", "5790002408496"),
    "cc5-S-C-simple.json": ("fhir", "FDIS91", "correspondence", "5790002408496"),
    "cc5-S-D-pdf.xml": ("fhir", "FDIS91", "correspondence", "5790002408496"),
    "cc5-S-E-forward.json": ("fhir", "FDIS91", "correspondence", "5790002408496"),
    "cc5-S-TekCPR-to-MedComXDIS91.json": ("fhir", "FDIS91", "correspondence", "5790000121526"),
    "ack-AA-3.3.1.1.xml": ("fhir", "FCTL", "acknowledgement", "5790000209354"),
    "ack-AE-3.4.4.json": ("fhir", "FCTL", "acknowledgement", "5790000209354"),
    "hn-SLHJ_H-discharge.json": ("fhir", "FDIS20", "hospital-notification", "5790001348120"),
    "xdis91-ec-physio-2014.xml": ("oioxml", "XDIS91", "correspondence", "5790000120314"),
    "xctl03-ec-receipt.xml": ("oioxml", "XCTL03", "acknowledgement", "5790000181872"),
    "edi-DIS91-1998.edi": ("edifact", "DIS91", "correspondence", "5790000128700"),
    "edi-CTL03.edi": ("edifact", "CTL03", "acknowledgement", "5790000181872"),
}
XDIS91 = "xdis91-ec-physio-2014.xml"
EXAMPLES = {
    "Flow1-XDIS91_Ex_to_FHIR.xml": ("oioxml", "XDIS91"),
    "Flow1-XBIN01_Ex_to_FHIR.xml": ("oioxml", "XBIN01"),
    "Flow2-XCTL03_Ex_from_FHIR_XBIN01.xml": ("oioxml", "XCTL03"),
    "Flow4-XCTL03_Ex_to_FHIR_XDIS91.xml": ("oioxml", "XCTL03"),
    "Flow1-CareCommunication_Ex_from_OIOXML.xml": ("fhir", "FDIS91"),
    "Flow2-Acknowledgement_Ex_to_OIOXML.xml": ("fhir", "FCTL"),
}


def message(name: str) -> bytes:
    return reference_path("messages", name).read_bytes()


def example(name: str) -> bytes:
    return reference_path("services", "carecommunication", "examples", name).read_bytes()


def refusal(
    data: bytes, content_type: str | None, message_types: MessageTypeRegistry
) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(data, content_type, message_types=message_types)
    return caught.value


class TestEveryRealMessage:
    @pytest.mark.parametrize("name", sorted(MESSAGES))
    def test_each_is_read_by_the_reader_of_its_own_syntax(
        self, message_types: MessageTypeRegistry, name: str
    ) -> None:
        syntax, message_type, business_message, receiver = MESSAGES[name]
        facts = parse_message(message(name), None, message_types=message_types)
        assert isinstance(facts, BundleFacts if syntax == "fhir" else LegacyFacts)
        assert (facts.syntax, facts.message_type, facts.business_message) == (
            syntax,
            message_type,
            business_message,
        )
        assert facts.receiver_gln == receiver
        assert facts.to_route_request().sender_syntax == syntax

    @pytest.mark.parametrize("name", sorted(EXAMPLES))
    def test_medcoms_flow_examples_are_read_in_both_directions(
        self, message_types: MessageTypeRegistry, name: str
    ) -> None:
        facts = parse_message(example(name), "application/xml", message_types=message_types)
        assert (facts.syntax, facts.message_type) == EXAMPLES[name]

    def test_an_oioxml_message_never_goes_through_the_fhir_reader(
        self, message_types: MessageTypeRegistry
    ) -> None:
        facts = parse_message(
            message("xdis91-ec-physio-2014.xml"),
            "application/fhir+xml",
            message_types=message_types,
        )
        assert isinstance(facts, LegacyFacts)


class TestContentTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            None,
            "",
            "application/edifact",
            "APPLICATION/EDIFACT",
            "application/EDIFACT; charset=iso-8859-1",
            "application/x-edifact",
            "text/plain",
            "application/octet-stream",
        ],
    )
    def test_an_interchange_is_read_under_an_edifact_or_neutral_type(
        self, message_types: MessageTypeRegistry, content_type: str | None
    ) -> None:
        facts = parse_message(message("edi-CTL03.edi"), content_type, message_types=message_types)
        assert facts.message_type == "CTL03"

    @pytest.mark.parametrize(
        "content_type", ["application/xml", "text/xml; charset=windows-1252", "text/plain", None]
    )
    def test_an_emessage_is_read_under_an_xml_or_neutral_type(
        self, message_types: MessageTypeRegistry, content_type: str | None
    ) -> None:
        facts = parse_message(
            message("xdis91-ec-physio-2014.xml"), content_type, message_types=message_types
        )
        assert facts.message_type == "XDIS91"

    @pytest.mark.parametrize(
        ("name", "content_type", "says"),
        [
            ("xdis91-ec-physio-2014.xml", "application/json", "says JSON but the body is XML"),
            (
                "xdis91-ec-physio-2014.xml",
                "application/edifact",
                "says EDIFACT but the body is XML",
            ),
            ("edi-DIS91-1998.edi", "application/fhir+xml", "says XML but the body is EDIFACT"),
            ("edi-DIS91-1998.edi", "application/json", "says JSON but the body is EDIFACT"),
            ("cc5-S-C-simple.json", "application/edifact", "says EDIFACT but the body is JSON"),
            ("cc5-S-B-png.xml", "application/fhir+json", "says JSON but the body is XML"),
        ],
    )
    def test_a_declared_type_that_contradicts_the_body_is_refused(
        self, message_types: MessageTypeRegistry, name: str, content_type: str, says: str
    ) -> None:
        problem = refusal(message(name), content_type, message_types)
        assert problem.problem is BundleProblem.CONTENT_TYPE_MISMATCH
        assert says in str(problem)
        assert problem.unreadable


class TestWhatIsNotAMessage:
    @pytest.mark.parametrize(
        ("data", "starts"),
        [
            (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "b'%PDF-1.4"),
            (b"MSH|^~\\&|HIS|", "b'MSH|^~"),
            (b"UNH+1+MEDDIS:D:93A:UN:D9134L+DIS91'", "b'UNH+1+"),
        ],
    )
    def test_a_body_of_no_known_syntax_is_refused_naming_its_start(
        self, message_types: MessageTypeRegistry, data: bytes, starts: str
    ) -> None:
        problem = refusal(data, None, message_types)
        assert problem.problem is BundleProblem.NOT_A_MESSAGE_FILE
        assert starts in str(problem)

    @pytest.mark.parametrize("data", [b"", b" \r\n\t", b"\xef\xbb\xbf\n"])
    def test_an_empty_body_is_refused(
        self, message_types: MessageTypeRegistry, data: bytes
    ) -> None:
        assert refusal(data, None, message_types).problem is BundleProblem.EMPTY

    def test_utf16_is_refused_as_an_encoding_fault(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message("edi-CTL03.edi").decode("latin-1").encode("utf-16")
        assert refusal(data, None, message_types).problem is BundleProblem.ENCODING

    def test_a_bom_and_blank_lines_before_the_interchange_are_allowed(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = b"\xef\xbb\xbf\r\n" + message("edi-CTL03.edi")
        assert parse_message(data, None, message_types=message_types).message_type == "CTL03"

    def test_a_doctype_before_an_emessage_is_refused_before_parsing(
        self, message_types: MessageTypeRegistry
    ) -> None:
        data = message("xctl03-ec-receipt.xml").replace(
            b"?>\n", b'?>\n<!DOCTYPE Emessage [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n', 1
        )
        assert refusal(data, None, message_types).problem is BundleProblem.DOCTYPE

    def test_xml_of_another_kind_goes_to_the_fhir_reader_which_says_what_it_is(
        self, message_types: MessageTypeRegistry
    ) -> None:
        problem = refusal(b"<?xml version='1.0'?><html><body/></html>", None, message_types)
        assert problem.problem is BundleProblem.NOT_A_BUNDLE


class TestSniffing:
    @pytest.mark.parametrize(
        ("start", "wire_format"),
        [
            (b"<?xml version='1.0'?><Emessage/>", "xml"),
            (b"\n\n<Bundle/>", "xml"),
            (b'{"resourceType": "Bundle"}', "json"),
            (b"UNA:+.? 'UNB+UNOC:3'", "edifact"),
            (b"UNB+UNOC:3+1:14+2:14'", "edifact"),
        ],
    )
    def test_the_first_bytes_name_the_wire_format(self, start: bytes, wire_format: str) -> None:
        assert sniff_wire_format(start) == wire_format


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(MESSAGES)),
    cut=st.integers(min_value=0, max_value=10**6),
    noise=st.binary(max_size=16),
    content_type=st.sampled_from([None, "application/xml", "application/edifact", "text/plain"]),
)
def test_any_cut_or_noisy_message_is_read_or_refused_never_crashes(
    message_types: MessageTypeRegistry,
    name: str,
    cut: int,
    noise: bytes,
    content_type: str | None,
) -> None:
    data = message(name)
    at = cut % (len(data) + 1)
    try:
        facts = parse_message(
            data[:at] + noise + data[at:], content_type, message_types=message_types
        )
    except InvalidMessage:
        return
    assert facts.message_type in message_types
