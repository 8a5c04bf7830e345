"""Reading the routing facts of a CareCommunication message Bundle (FHIR XML and JSON).

The real MedCom examples are read from the shared reference folder beside the repository (never
copied into it); the other bundles are built here, as FHIR JSON, and turned into FHIR XML by a
small generic converter, so every behaviour is checked in both syntaxes.
"""

from __future__ import annotations

import base64
import csv
import json
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from soredi_sync.config import config_dir
from soredi_sync.domain.identifiers import IdentifierSource, ReceiverIdentifier
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
from soredi_sync.errors import SorediError
from soredi_sync.parsing.attachment_bytes import base64_decoded_size, base64_head
from soredi_sync.parsing.fhir import (
    EVENT_BUSINESS_MESSAGES,
    EVENT_MESSAGE_TYPES,
    BundleFacts,
    parse_bundle,
)
from soredi_sync.parsing.refusals import BundleBudget, BundleProblem, InvalidBundle
from soredi_sync.reference_data import load_routing_policy
from tests.support.factories import registry, unit
from tests.support.fhir import (
    RECEIVER,
    SENDER,
    attachment_payload,
    care_communication,
    entry,
    json_to_xml,
    organization,
    text_payload,
    xml_to_json,
)
from tests.support.reference import REFERENCE, reference_path

EXAMPLES = REFERENCE / "services" / "carecommunication" / "examples"
FLOW1 = "Flow1-CareCommunication_Ex_from_OIOXML.xml"
FLOW3 = "Flow3-CareCommunication_Ex_to_OIOXML.xml"
ACKNOWLEDGEMENTS = (
    "Flow2-Acknowledgement_Ex_to_OIOXML.xml",
    "Flow4-Acknowledgement_Ex_from_OIOXML.xml",
)
OIOXML = {
    "Flow1-XBIN01_Ex_to_FHIR.xml": "Emessage/BinaryLetter, XBIN01",
    "Flow1-XDIS91_Ex_to_FHIR.xml": "Emessage/ClinicalEmail, XDIS91",
    "Flow2-XCTL03_Ex_from_FHIR_XBIN01.xml": "Emessage/PositiveReceipt, XCTL03",
    "Flow2-XCTL03_Ex_from_FHIR_XDIS91.xml": "Emessage/PositiveReceipt, XCTL03",
    "Flow3-XBIN01_Ex_from_FHIR.xml": "Emessage/BinaryLetter, XBIN01",
    "Flow3-XDIS91_Ex_from_FHIR.xml": "Emessage/ClinicalEmail, XDIS91",
    "Flow4-XCTL03_Ex_to_FHIR_XBIN01.xml": "Emessage/PositiveReceipt, XCTL03",
    "Flow4-XCTL03_Ex_to_FHIR_XDIS91.xml": "Emessage/PositiveReceipt, XCTL03",
}
ODENSE_HJEMMEPLEJE = ("5790000121441", "328051000016008")  # receiver in Flow1 and Flow3
MEDCOM_TESTCENTER_GLN = "5790001382445"


def reference_file(path: Path) -> bytes:
    """A file of the shared reference material, as published."""
    return reference_path(*path.relative_to(REFERENCE).parts).read_bytes()


def example(name: str) -> bytes:
    """One of MedCom's real CareCommunication flow examples."""
    return reference_file(EXAMPLES / name)


def refusal(data: bytes, content_type: str | None = None, **kwargs: Any) -> InvalidBundle:
    with pytest.raises(InvalidBundle) as caught:
        parse_bundle(data, content_type, **kwargs)
    return caught.value


# -- hand-built bundles --------------------------------------------------------------------------

PDF_B64 = base64.b64encode(b"%PDF-1.4 just enough bytes\n").decode()  # 27 bytes
PDF_27 = Attachment("application/pdf", 27, sniffed_type="application/pdf")
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n\0\0\0\r").decode()  # 12 bytes


Encode = Callable[[dict[str, Any]], bytes]


@pytest.fixture(params=["xml", "json"])
def encode(request: pytest.FixtureRequest) -> Encode:
    """The same bundle in either syntax."""
    if request.param == "xml":
        return json_to_xml
    return lambda bundle: json.dumps(bundle, ensure_ascii=False).encode()


def facts_of(bundle: dict[str, Any], encode: Encode, **kwargs: Any) -> BundleFacts:
    return parse_bundle(encode(bundle), **kwargs)


def refusal_of(bundle: dict[str, Any], encode: Encode, **kwargs: Any) -> InvalidBundle:
    return refusal(encode(bundle), **kwargs)


def same_facts(left: BundleFacts, right: BundleFacts) -> bool:
    """Equal except for what depends on the bytes: total size and syntax."""
    return replace(left, total_size=0, wire_format="") == replace(
        right, total_size=0, wire_format=""
    )


# -- the real MedCom examples -------------------------------------------------------------------


class TestRealCareCommunicationBundles:
    def test_flow1_names_odense_hjemmepleje_as_receiver_and_medcom_as_sender(self) -> None:
        data = example(FLOW1)
        facts = parse_bundle(data)
        assert (facts.receiver_gln, facts.receiver_sor_id) == ODENSE_HJEMMEPLEJE
        assert (facts.sender_gln, facts.sender_sor_id) == (
            MEDCOM_TESTCENTER_GLN,
            "359001000016000",
        )
        assert facts.bundle_id == "59124ce5-5c1e-4898-b7d5-db943b9323b1"
        assert facts.message_id == "56d771fd-f8d2-4c46-a56e-af4a46565b5e"
        assert facts.event_code == "care-communication-message"
        assert (facts.category, facts.topic) == ("examination-results", None)
        assert facts.text_length == 340  # the contentString, not the generated narrative
        assert facts.attachments == (
            Attachment("application/pdf", 4297, title="billede", sniffed_type="application/pdf"),
        )
        assert (facts.total_size, facts.wire_format, facts.notes) == (len(data), "xml", ())

    def test_flow3_carries_a_regarding_referral_with_topic_and_one_pdf(self) -> None:
        facts = parse_bundle(example(FLOW3))
        assert (facts.receiver_gln, facts.receiver_sor_id) == ODENSE_HJEMMEPLEJE
        assert (facts.sender_gln, facts.sender_sor_id) == (
            MEDCOM_TESTCENTER_GLN,
            "359011000016000",
        )
        assert facts.message_id == "60098c38-6fe1-41ba-aa92-d4809022de88"
        assert facts.category == "regarding-referral"
        assert facts.topic == "Undersøgelser forude for visitation"
        assert facts.text_length == 246
        assert facts.attachments == (
            Attachment("application/pdf", 4297, title="billede", sniffed_type="application/pdf"),
        )

    def test_the_attachment_size_is_the_one_the_converted_oioxml_message_declares(self) -> None:
        facts = parse_bundle(example(FLOW3))
        xdis91 = etree.fromstring(example("Flow3-XDIS91_Ex_from_FHIR.xml"))
        declared = xdis91.findtext(".//{*}BIN/{*}OriginalObjectSize")
        assert [a.size for a in facts.attachments] == [int(declared or -1)]

    def test_the_legacy_subject_is_the_one_the_converted_xdis91_carries(self) -> None:
        facts = parse_bundle(example(FLOW3))
        # The example declares iso-8859-1 but is written in UTF-8.
        utf8 = etree.XMLParser(encoding="utf-8", resolve_entities=False, no_network=True)
        xdis91 = etree.fromstring(example("Flow3-XDIS91_Ex_from_FHIR.xml"), utf8)
        categories = self._danish_category_names()
        assert facts.legacy_subject(categories) == xdis91.findtext(".//{*}Subject")

    @staticmethod
    def _danish_category_names() -> dict[str, str]:
        path = REFERENCE / "services" / "codelists" / "carecommunication-categories.tsv"
        lines = reference_file(path).decode("utf-8").splitlines()
        return {row["code"]: row["display_da"] for row in csv.DictReader(lines, delimiter="\t")}

    @pytest.mark.parametrize("name", [FLOW1, FLOW3])
    @pytest.mark.parametrize("always_lists", [False, True], ids=["natural", "lists"])
    def test_the_same_bundle_in_fhir_json_gives_the_same_facts(
        self, name: str, always_lists: bool
    ) -> None:
        from_xml = parse_bundle(example(name))
        body = json.dumps(xml_to_json(example(name), always_lists=always_lists)).encode()
        from_json = parse_bundle(body, "application/fhir+json")
        assert from_json.wire_format == "json"
        assert from_json.total_size == len(body)
        assert same_facts(from_json, from_xml)

    def test_a_real_bundle_routes_to_a_legacy_receiver_through_conversion(self) -> None:
        facts = parse_bundle(example(FLOW3))
        request = facts.to_route_request(at=date(2026, 3, 2))
        assert (request.business_message, request.sender_syntax) == ("correspondence", "fhir")
        assert (request.receiver_gln, request.receiver_sor_id) == ODENSE_HJEMMEPLEJE
        assert request.message_id == facts.message_id
        assert request.total_size == facts.total_size
        gln, sor_id = ODENSE_HJEMMEPLEJE
        snapshot = SnapshotRef(1, datetime(2026, 3, 2, 4, 30, tzinfo=UTC))
        with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
            types = MessageTypeRegistry.from_tsv_lines(fh)
        world = registry(
            [unit(sor_id, own_gln=gln)],
            [Gln(gln, vans="41000035001")],
            {gln: ["XDIS91", "XBIN01", "XCTL03"]},
        )
        resolver = Resolver(
            RoutingIndex.build(snapshot, world),
            load_routing_policy(config_dir() / "routing.toml"),
            types,
        )
        decision = resolver.resolve(request, date(2026, 3, 2))
        assert (decision.decision, decision.message_type) == (Decision.DELIVER, "XDIS91")
        assert [c.step for c in decision.conversion] == ["fhir->oioxml"]
        assert [(a.size, a.carried_as) for a in decision.attachments] == [(4297, "XBIN01")]


class TestRealMessagesThatAreNotCareCommunication:
    @pytest.mark.parametrize("name", ACKNOWLEDGEMENTS)
    def test_an_acknowledgement_is_refused_by_name_where_only_carecommunication_is_allowed(
        self, name: str
    ) -> None:
        error = refusal(example(name), allow_events={"care-communication-message"})
        assert error.problem is BundleProblem.WRONG_EVENT
        assert error.event_code == "acknowledgement-message"
        assert "acknowledgement-message is not a CareCommunication message" in str(error)
        assert not error.unreadable
        assert isinstance(error, SorediError)

    @pytest.mark.parametrize("name", ACKNOWLEDGEMENTS)
    def test_an_acknowledgement_is_read_by_default(self, name: str) -> None:
        facts = parse_bundle(example(name))
        assert (facts.receiver_gln, facts.receiver_sor_id) == (
            MEDCOM_TESTCENTER_GLN,
            "359001000016000",
        )
        assert (facts.sender_gln, facts.sender_sor_id) == ODENSE_HJEMMEPLEJE
        assert (facts.business_message, facts.message_type) == ("acknowledgement", "FCTL")
        assert (facts.category, facts.text_length, facts.attachments) == (None, 0, ())
        assert facts.category_coded is None  # no Communication: nothing to code
        request = facts.to_route_request()
        assert (request.business_message, request.sender_syntax) == ("acknowledgement", "fhir")
        assert request.category_coded is None

    @pytest.mark.parametrize("name", sorted(OIOXML))
    def test_an_oioxml_message_is_refused_as_not_a_fhir_bundle(self, name: str) -> None:
        error = refusal(example(name))
        assert error.problem is BundleProblem.OIOXML
        assert str(error).startswith(f"OIOXML message ({OIOXML[name]}) — not a FHIR Bundle")

    def test_an_oioxml_message_sent_as_fhir_xml_is_still_named_oioxml(self) -> None:
        error = refusal(example("Flow1-XDIS91_Ex_to_FHIR.xml"), "application/fhir+xml")
        assert error.problem is BundleProblem.OIOXML


# -- hand-built bundles, in XML and JSON ---------------------------------------------------------


class TestFacts:
    def test_a_minimal_bundle_gives_receiver_sender_category_topic_and_sizes(
        self, encode: Encode
    ) -> None:
        payloads = [
            text_payload("Hej"),
            text_payload("med dig"),
            attachment_payload(data=PDF_B64, size=27),
        ]
        facts = facts_of(care_communication(payloads=payloads), encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == RECEIVER
        assert (facts.sender_gln, facts.sender_sor_id) == SENDER
        assert (facts.bundle_id, facts.message_id) == ("bundle-1", "hdr-1")
        assert (facts.category, facts.topic) == ("examination-results", "Blodprøver")
        assert facts.text_length == len("Hej") + len("med dig")
        assert facts.attachments == (PDF_27,)
        assert (facts.syntax, facts.message_type, facts.business_message) == (
            "fhir",
            "FDIS91",
            "correspondence",
        )
        assert (facts.category_coded, facts.definition, facts.notes) == (True, None, ())

    def test_the_message_id_falls_back_to_the_bundle_identifier(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"][0]["resource"]["id"]
        bundle["identifier"] = {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:abc"}
        assert facts_of(bundle, encode).message_id == "urn:uuid:abc"

    def test_text_length_counts_characters_not_bytes(self, encode: Encode) -> None:
        bundle = care_communication(payloads=[text_payload("Sænkning\nøæå")])
        assert facts_of(bundle, encode).text_length == 12

    def test_the_medcom_category_coding_wins_over_another_one(self, encode: Encode) -> None:
        bundle = care_communication()
        communication = bundle["entry"][1]["resource"]
        communication["category"][0]["coding"].insert(
            0, {"system": "urn:other", "code": "local-code"}
        )
        assert facts_of(bundle, encode).category == "examination-results"

    def test_the_communication_is_found_without_a_focus(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"][0]["resource"]["focus"]
        assert facts_of(bundle, encode).topic == "Blodprøver"

    def test_a_care_communication_without_communication_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"][1]
        assert refusal_of(bundle, encode).problem is BundleProblem.NO_COMMUNICATION

    def test_an_unresolved_sender_is_noted_not_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        bundle["entry"][0]["resource"]["sender"] = {"reference": "Organization/nobody"}
        facts = facts_of(bundle, encode)
        assert (facts.sender_gln, facts.sender_sor_id) == (None, None)
        assert any("Organization/nobody" in note for note in facts.notes)

    def test_the_route_request_asks_about_correspondence(self, encode: Encode) -> None:
        facts = facts_of(care_communication(), encode)
        request = facts.to_route_request("fhir", date(2026, 1, 5))
        assert request.business_message == "correspondence"
        assert request.at == date(2026, 1, 5)
        assert (request.category, request.topic, request.subject) == (
            "examination-results",
            "Blodprøver",
            None,
        )
        named = facts.to_route_request(category_names={"examination-results": "Undersøgelsessvar"})
        assert named.subject == "Undersøgelsessvar, Blodprøver"
        assert named.legacy_subject() == "Undersøgelsessvar, Blodprøver"


class TestReceiver:
    def test_the_http_spelling_of_the_gln_system_is_accepted(self, encode: Encode) -> None:
        receiver = organization("rcv", None, None)
        receiver["identifier"] = [{"system": "http://www.gs1.org/gln", "value": RECEIVER[0]}]
        facts = facts_of(care_communication(receiver=receiver), encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == (RECEIVER[0], None)

    def test_a_receiver_with_only_a_sor_id_is_accepted(self, encode: Encode) -> None:
        facts = facts_of(
            care_communication(receiver=organization("rcv", None, RECEIVER[1])), encode
        )
        assert (facts.receiver_gln, facts.receiver_sor_id) == (None, RECEIVER[1])

    def test_other_identifier_systems_are_ignored(self, encode: Encode) -> None:
        receiver = organization("rcv", *RECEIVER)
        receiver["identifier"].insert(
            0,
            {
                "system": "http://hl7.dk/fhir/core/CodeSystem/dk-core-municipality-codes",
                "value": "0461",
            },
        )
        facts = facts_of(care_communication(receiver=receiver), encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == RECEIVER

    def test_a_urn_uuid_reference_resolves_by_full_url(self, encode: Encode) -> None:
        bundle = care_communication(
            receiver_reference={"reference": "urn:uuid:8e2c4a51-0b6f-4d0e-9f59-0c1a5d2f0b11"}
        )
        bundle["entry"][2]["fullUrl"] = "urn:uuid:8e2c4a51-0b6f-4d0e-9f59-0c1a5d2f0b11"
        assert facts_of(bundle, encode).receiver_gln == RECEIVER[0]

    def test_a_relative_reference_resolves_against_the_header_base(self, encode: Encode) -> None:
        # Two Organizations share the id "rcv" on different servers: the header's base decides.
        elsewhere = organization("rcv", "5790000000005", None)
        bundle = care_communication(
            extra_entries=[entry(elsewhere, "https://other.test/fhir/Organization/rcv")]
        )
        assert facts_of(bundle, encode).receiver_gln == RECEIVER[0]

    def test_a_logical_reference_by_identifier_is_accepted(self, encode: Encode) -> None:
        reference = {"identifier": {"system": "urn:oid:1.2.208.176.1.1", "value": RECEIVER[1]}}
        facts = facts_of(care_communication(receiver_reference=reference), encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == (None, RECEIVER[1])

    def test_the_primary_destination_is_the_receiver(self, encode: Encode) -> None:
        copy_to = organization("cc", "5790000000005", "999991000016000")
        bundle = care_communication(extra_entries=[entry(copy_to)])
        use = "http://medcomfhir.dk/ig/messaging/StructureDefinition/"
        use += "medcom-messaging-destinationUseExtension"
        header = bundle["entry"][0]["resource"]
        header["destination"] = [
            {
                "extension": [{"url": use, "valueCoding": {"code": "cc"}}],
                "receiver": {"reference": "Organization/cc"},
            },
            {
                "extension": [{"url": use, "valueCoding": {"code": "primary"}}],
                "receiver": {"reference": "Organization/rcv"},
            },
        ]
        facts = facts_of(bundle, encode)
        assert facts.receiver_gln == RECEIVER[0]
        assert any("primary" in note for note in facts.notes)

    def test_no_destination_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"][0]["resource"]["destination"]
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.NO_RECEIVER
        assert "no destination" in str(error)

    def test_a_destination_without_receiver_or_sor_endpoint_is_refused(
        self, encode: Encode
    ) -> None:
        bundle = care_communication()
        header = bundle["entry"][0]["resource"]
        header["destination"] = [{"endpoint": "https://gateway.test/fhir"}]
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.NO_RECEIVER
        assert "destination has no receiver, and its endpoint 'https://gateway.test/fhir' " in (
            str(error)
        )
        header["destination"] = [{"extension": []}]
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.NO_RECEIVER
        assert str(error) == "the MessageHeader destination has no receiver"

    def test_a_destination_without_receiver_is_addressed_by_its_sor_endpoint(
        self, encode: Encode
    ) -> None:
        bundle = care_communication()
        endpoint = f"https://sor2.sum.dsdn.dk/#id={RECEIVER[1]}"
        bundle["entry"][0]["resource"]["destination"] = [{"endpoint": endpoint}]
        facts = facts_of(bundle, encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == (None, RECEIVER[1])
        assert facts.receiver_identifiers == (
            ReceiverIdentifier(IdentifierSource.ENDPOINT, None, endpoint),
        )
        assert any("no receiver: addressed by its endpoint" in note for note in facts.notes)

    def test_a_reference_to_nothing_in_the_bundle_is_refused(self, encode: Encode) -> None:
        bundle = care_communication(receiver_reference={"reference": "Organization/missing"})
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.RECEIVER_NOT_FOUND
        assert "'Organization/missing' matches no entry" in str(error)

    def test_a_receiver_that_is_not_an_organization_is_refused(self, encode: Encode) -> None:
        bundle = care_communication(receiver_reference={"reference": "Communication/com-1"})
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.RECEIVER_NOT_ORGANIZATION
        assert "is a Communication, not an Organization" in str(error)

    def test_a_receiver_without_gln_or_sor_id_is_refused(self, encode: Encode) -> None:
        receiver = organization("rcv", None, None, name="Hjemmeplejen")
        error = refusal_of(care_communication(receiver=receiver), encode)
        assert error.problem is BundleProblem.RECEIVER_UNIDENTIFIED
        assert "Organization rcv (Hjemmeplejen) has neither a GLN" in str(error)
        assert str(error).endswith("it has no identifier and no endpoint")

    def test_every_identifier_is_kept_as_written_and_the_endpoint_comes_last(
        self, encode: Encode
    ) -> None:
        receiver = organization("rcv", None, None)
        receiver["identifier"] = [
            {"system": "urn:dk:municipality", "value": "0461"},
            {"value": "no-system"},
            {"system": "urn:oid:1.3.88", "value": RECEIVER[0]},
            {"system": " urn:oid:1.2.208.176.1.1", "value": RECEIVER[1]},
            {"system": "https://www.gs1.org/gln"},  # no value: nothing to keep
        ]
        bundle = care_communication(receiver=receiver)
        endpoint = "https://sor2.sum.dsdn.dk/#id=999991000016000"
        bundle["entry"][0]["resource"]["destination"][0]["endpoint"] = endpoint
        facts = facts_of(bundle, encode)
        organization_ = IdentifierSource.ORGANIZATION
        assert facts.receiver_identifiers == (
            ReceiverIdentifier(organization_, "urn:dk:municipality", "0461"),
            ReceiverIdentifier(organization_, None, "no-system"),
            ReceiverIdentifier(organization_, "urn:oid:1.3.88", RECEIVER[0]),
            ReceiverIdentifier(organization_, " urn:oid:1.2.208.176.1.1", RECEIVER[1]),
            ReceiverIdentifier(IdentifierSource.ENDPOINT, None, endpoint),
        )
        # The first usable GLN and SOR-ID, in any spelling: the Organization's before the endpoint.
        assert (facts.receiver_gln, facts.receiver_sor_id) == RECEIVER
        assert facts.notes == ()

    @pytest.mark.parametrize(
        "system",
        ["urn:oid:1.3.88", "https://www.gs1.org/gln", "http://www.gs1.org/gln", "www.gs1.org/gln"],
    )
    def test_a_gln_in_any_readable_spelling_identifies_the_receiver(
        self, system: str, encode: Encode
    ) -> None:
        receiver = organization("rcv", None, None)
        receiver["identifier"] = [{"system": system, "value": RECEIVER[0]}]
        facts = facts_of(care_communication(receiver=receiver), encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == (RECEIVER[0], None)

    @pytest.mark.parametrize(
        "system", ["urn:oid:1.2.208.176.1.1", "urn:oid1.2.208.176.1.1", "oid:1.2.208.176.1.1"]
    )
    def test_a_sor_id_in_any_readable_spelling_identifies_the_receiver(
        self, system: str, encode: Encode
    ) -> None:
        receiver = organization("rcv", None, None)
        receiver["identifier"] = [{"system": system, "value": RECEIVER[1]}]
        facts = facts_of(care_communication(receiver=receiver), encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == (None, RECEIVER[1])

    def test_the_endpoint_identifies_a_receiver_whose_organization_cannot(
        self, encode: Encode
    ) -> None:
        receiver = organization("rcv", None, None)
        receiver["identifier"] = [{"system": "urn:dk:municipality", "value": "0461"}]
        bundle = care_communication(receiver=receiver)
        endpoint = f"https://sor2.sum.dsdn.dk/#id={RECEIVER[1]}"
        bundle["entry"][0]["resource"]["destination"][0]["endpoint"] = endpoint
        facts = facts_of(bundle, encode)
        assert (facts.receiver_gln, facts.receiver_sor_id) == (None, RECEIVER[1])

    def test_two_gln_on_the_organization_are_noted_and_the_first_used(self, encode: Encode) -> None:
        receiver = organization("rcv", *RECEIVER)
        receiver["identifier"].append({"system": "urn:oid:1.3.88", "value": "5790000000005"})
        facts = facts_of(care_communication(receiver=receiver), encode)
        assert facts.receiver_gln == RECEIVER[0]
        assert facts.notes == (f"the receiver has 2 GLNs: used {RECEIVER[0]}",)

    def test_a_sender_gln_in_a_misspelt_system_is_read(self, encode: Encode) -> None:
        sender = organization("snd", None, SENDER[1])
        sender["identifier"].insert(0, {"system": "gs1.org/gln", "value": SENDER[0]})
        facts = facts_of(care_communication(sender=sender), encode)
        assert (facts.sender_gln, facts.sender_sor_id) == SENDER


class TestStructure:
    def test_a_document_bundle_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        bundle["type"] = "document"
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.NOT_A_MESSAGE
        assert "Bundle.type is 'document', expected 'message'" in str(error)

    def test_a_bundle_without_type_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["type"]
        assert refusal_of(bundle, encode).problem is BundleProblem.NOT_A_MESSAGE

    def test_a_first_entry_other_than_the_message_header_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        bundle["entry"].reverse()
        error = refusal_of(bundle, encode)
        assert error.problem is BundleProblem.NO_MESSAGE_HEADER
        assert "first entry is a Organization, not a MessageHeader" in str(error)

    def test_a_bundle_without_entries_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"]
        assert refusal_of(bundle, encode).problem is BundleProblem.NO_MESSAGE_HEADER

    def test_a_header_without_event_is_refused(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"][0]["resource"]["eventCoding"]
        assert refusal_of(bundle, encode).problem is BundleProblem.NO_EVENT

    def test_a_hospital_notification_is_read_by_default_and_refused_when_not_allowed(
        self, encode: Encode
    ) -> None:
        bundle = care_communication(event="hospital-notification-message")
        facts = facts_of(bundle, encode)
        assert (facts.message_type, facts.business_message) == ("FDIS20", "hospital-notification")
        assert facts.to_route_request().business_message == "hospital-notification"
        only_care = ["care-communication-message"]
        error = refusal_of(bundle, encode, allow_events=only_care)
        assert error.problem is BundleProblem.WRONG_EVENT
        assert "hospital-notification-message is not a CareCommunication message" in str(error)
        error = refusal_of(bundle, encode, allow_events=[*only_care, "acknowledgement-message"])
        assert "is not one of the accepted events (acknowledgement-message, care-" in str(error)

    def test_an_unknown_event_in_allow_events_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="no-such-event"):
            parse_bundle(b"{}", allow_events=["no-such-event"])

    def test_a_root_other_than_bundle_is_refused(self) -> None:
        error = refusal(b'<Patient xmlns="http://hl7.org/fhir"><id value="p"/></Patient>')
        assert error.problem is BundleProblem.NOT_A_BUNDLE
        assert "root is Patient in namespace http://hl7.org/fhir, not a FHIR Bundle" in str(error)

    def test_a_bundle_outside_the_fhir_namespace_is_refused(self) -> None:
        error = refusal(b'<Bundle><type value="message"/></Bundle>')
        assert error.problem is BundleProblem.NOT_A_BUNDLE
        assert "Bundle in no namespace" in str(error)

    @pytest.mark.parametrize(
        ("body", "what"),
        [
            (b'{"resourceType": "Patient"}', "has a Patient, not a FHIR Bundle"),
            (b'{"type": "message"}', "has no resourceType"),
            (b"[1, 2]", "is a list, not a FHIR Bundle"),
        ],
    )
    def test_json_that_is_not_a_bundle_is_refused(self, body: bytes, what: str) -> None:
        error = refusal(body)
        assert error.problem is BundleProblem.NOT_A_BUNDLE
        assert what in str(error)


MAGIC = {
    "application/pdf": b"%PDF-1.7\r\n",
    "image/png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    "image/jpeg": b"\xff\xd8\xff\xe0\0\x10JFIF\0",
    "image/gif": b"GIF89a\x01\0\x01\0",
    "image/tiff": b"II*\0\x08\0\0\0",
    "image/bmp": b"BM\x36\0\0\0\0\0",
}


class TestAttachmentTypeAndContent:
    @pytest.mark.parametrize(
        ("head", "sniffed"),
        [
            *((head, mime_type) for mime_type, head in MAGIC.items()),
            (b"GIF87a\x01\0", "image/gif"),
            (b"MM\0*\0\0\0\x08", "image/tiff"),
            (b"PK\x03\x04 a zip", None),
            (b"<html>", None),
            (b"%PD", None),  # too short for the magic number
        ],
    )
    def test_the_first_bytes_say_the_type_whatever_is_declared(
        self, head: bytes, sniffed: str | None, encode: Encode
    ) -> None:
        data = base64.b64encode(head + bytes(300)).decode()
        payloads = [attachment_payload(contentType="application/octet-stream", data=data)]
        (found,) = facts_of(care_communication(payloads=payloads), encode).attachments
        assert (found.mime_type, found.sniffed_type) == ("application/octet-stream", sniffed)
        assert (found.size, found.content) == (len(head) + 300, AttachmentContent.DATA)

    def test_blanks_before_and_inside_the_first_characters_do_not_hide_the_type(
        self, encode: Encode
    ) -> None:
        data = base64.b64encode(MAGIC["image/png"] + bytes(100)).decode()
        spaced = "\n" * 5_000 + " ".join(data[i : i + 3] for i in range(0, len(data), 3))
        payloads = [attachment_payload(contentType="image/png", data=spaced)]
        (found,) = facts_of(care_communication(payloads=payloads), encode).attachments
        assert (found.sniffed_type, found.size) == ("image/png", len(MAGIC["image/png"]) + 100)

    def test_first_characters_that_are_not_base64_show_no_type(self, encode: Encode) -> None:
        payloads = [attachment_payload(data="JVBER!" + PDF_B64)]
        (found,) = facts_of(care_communication(payloads=payloads), encode).attachments
        assert found.sniffed_type is None

    @pytest.mark.parametrize("length", [0, 1, 2, 5, 8, 9, 30])
    def test_the_head_is_the_start_of_the_decoded_bytes(self, length: int) -> None:
        raw = bytes(range(200, 200 + length % 56)) + b"x" * max(length - 56, 0)
        encoded = base64.b64encode(raw).decode()
        assert base64_head(encoded) == raw[:8]
        assert base64_head(encoded, 5) == raw[:5]

    def test_data_wins_over_a_url_beside_it(self, encode: Encode) -> None:
        payloads = [attachment_payload(data=PDF_B64, url="https://files.test/x.pdf")]
        (found,) = facts_of(care_communication(payloads=payloads), encode).attachments
        assert found == PDF_27

    def test_a_link_keeps_its_declared_size_and_shows_no_type(self, encode: Encode) -> None:
        payloads = [attachment_payload(url="https://files.test/x.pdf", size=4711)]
        facts = facts_of(care_communication(payloads=payloads), encode)
        link = Attachment("application/pdf", 4711, None, AttachmentContent.LINK, None)
        assert (facts.attachments, facts.notes) == ((link,), ())

    def test_an_attachment_with_only_a_size_has_no_content(self, encode: Encode) -> None:
        payloads = [attachment_payload(size=1234, title="svar")]
        facts = facts_of(care_communication(payloads=payloads), encode)
        nothing = Attachment("application/pdf", 1234, "svar", AttachmentContent.NONE, None)
        assert facts.attachments == (nothing,)
        assert facts.notes == (
            "the attachment in payload 1 ('svar') has neither data nor url: it has no content",
        )

    def test_the_route_request_carries_each_attachment_as_read(self, encode: Encode) -> None:
        payloads = [
            attachment_payload(data=PDF_B64),
            attachment_payload(url="https://files.test/y"),
            attachment_payload(contentType="image/png", size=3),
        ]
        facts = facts_of(care_communication(payloads=payloads), encode)
        request = facts.to_route_request()
        assert request.attachments == facts.attachments
        assert [a.content for a in request.attachments] == [
            AttachmentContent.DATA,
            AttachmentContent.LINK,
            AttachmentContent.NONE,
        ]


class TestCategory:
    def test_a_coded_category_is_coded(self, encode: Encode) -> None:
        facts = facts_of(care_communication(), encode)
        assert (facts.category, facts.category_coded) == ("examination-results", True)
        assert facts.to_route_request().category_coded is True

    def test_a_category_with_text_only_is_not_coded(self, encode: Encode) -> None:
        bundle = care_communication()
        bundle["entry"][1]["resource"]["category"] = [{"text": "Undersøgelsessvar"}]
        facts = facts_of(bundle, encode)
        assert (facts.category, facts.category_coded) == (None, False)
        assert facts.to_route_request().category_coded is False

    def test_a_code_in_a_second_category_still_codes_it(self, encode: Encode) -> None:
        bundle = care_communication()
        categories = bundle["entry"][1]["resource"]["category"]
        categories.insert(0, {"coding": [{"system": "urn:other", "display": "x"}]})
        facts = facts_of(bundle, encode)
        assert (facts.category, facts.category_coded) == ("examination-results", True)

    def test_a_carecommunication_without_category_is_not_coded(self, encode: Encode) -> None:
        bundle = care_communication()
        del bundle["entry"][1]["resource"]["category"]
        facts = facts_of(bundle, encode)
        assert (facts.category, facts.category_coded) == (None, False)

    def test_an_acknowledgement_without_communication_has_no_category_to_code(
        self, encode: Encode
    ) -> None:
        bundle = care_communication(event="acknowledgement-message")
        del bundle["entry"][1]
        facts = facts_of(bundle, encode)
        assert (facts.category, facts.category_coded, facts.text_length) == (None, None, 0)


class TestAttachments:
    def test_size_is_computed_from_the_base64_length_when_absent(self, encode: Encode) -> None:
        payloads = [attachment_payload(data=PDF_B64, title="svar")]
        facts = facts_of(care_communication(payloads=payloads), encode)
        assert facts.attachments == (replace(PDF_27, title="svar"),)
        assert facts.notes == ()

    @pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 300, 301, 302])
    def test_the_decoded_size_matches_real_decoding_for_every_padding(self, length: int) -> None:
        encoded = base64.b64encode(bytes(length)).decode()
        assert base64_decoded_size(encoded) == length
        assert base64_decoded_size(encoded.rstrip("=")) == length  # unpadded
        wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
        assert base64_decoded_size(f" {wrapped}\n ") == length  # MIME line breaks

    @settings(max_examples=60, deadline=None)
    @given(st.binary(max_size=200))
    def test_the_decoded_size_never_differs_from_decoding(self, raw: bytes) -> None:
        assert base64_decoded_size(base64.b64encode(raw).decode()) == len(raw)

    def test_a_declared_size_wins_and_a_mismatch_is_noted(self, encode: Encode) -> None:
        payloads = [attachment_payload(data=PDF_B64, size=30)]
        facts = facts_of(care_communication(payloads=payloads), encode)
        assert facts.attachments == (replace(PDF_27, size=30),)
        assert any("declares size 30 but its data decodes to 27" in n for n in facts.notes)

    def test_a_link_without_size_counts_zero_and_is_noted(self, encode: Encode) -> None:
        payloads = [attachment_payload(url="https://files.test/x.pdf", title="x")]
        facts = facts_of(care_communication(payloads=payloads), encode)
        link = AttachmentContent.LINK
        assert facts.attachments == (Attachment("application/pdf", 0, "x", link),)
        assert facts.notes == (
            "the attachment in payload 1 ('x') is a link (https://files.test/x.pdf) without "
            "size: size taken as 0",
        )

    def test_the_mime_type_is_lower_cased_without_parameters(self, encode: Encode) -> None:
        payloads = [attachment_payload(contentType="Image/PNG; name=x.png", data=PNG_B64)]
        facts = facts_of(care_communication(payloads=payloads), encode)
        assert facts.attachments == (Attachment("image/png", 12, sniffed_type="image/png"),)

    def test_a_size_as_a_string_is_read_and_a_bad_size_refused(self) -> None:
        bundle = care_communication(payloads=[attachment_payload(size="77")])
        assert parse_bundle(json.dumps(bundle).encode()).attachments[0].size == 77
        bundle = care_communication(payloads=[attachment_payload(size="-1")])
        error = refusal(json.dumps(bundle).encode())
        assert error.problem is BundleProblem.INVALID_ATTACHMENT
        assert "invalid size '-1'" in str(error)

    def test_a_base64_length_that_cannot_be_base64_is_noted(self, encode: Encode) -> None:
        payloads = [attachment_payload(data="QUJDRA" + "A")]  # 7 chars: last group of 3 is ok
        assert facts_of(care_communication(payloads=payloads), encode).notes == ()
        payloads = [attachment_payload(data="QUJDR")]  # 5 chars: a group of 1 is not base64
        notes = facts_of(care_communication(payloads=payloads), encode).notes
        assert any("not valid base64" in note for note in notes)

    def test_an_attachment_over_libxml2s_default_limit_is_read_quickly(self) -> None:
        data = "QUJD" * 3_000_000  # 12 MB of base64: over libxml2's 10 MB text limit
        body = json_to_xml(care_communication(payloads=[attachment_payload(data=data)]))
        started = time.perf_counter()
        facts = parse_bundle(body)
        assert facts.attachments == (Attachment("application/pdf", 9_000_000),)  # "ABC": no type
        assert facts.total_size == len(body)
        assert time.perf_counter() - started < 2.0


class TestEncodingAndContentType:
    def test_a_utf8_bom_is_accepted_in_xml_and_json(self) -> None:
        bundle = care_communication()
        for body in (json_to_xml(bundle), json.dumps(bundle).encode()):
            facts = parse_bundle(b"\xef\xbb\xbf" + body)
            assert facts.receiver_gln == RECEIVER[0]
            assert facts.total_size == len(body) + 3

    @pytest.mark.parametrize(
        ("content_type", "wire_format"),
        [
            ("application/fhir+xml", "xml"),
            ("application/xml", "xml"),
            ("text/xml; charset=utf-8", "xml"),
            ("application/fhir+json; fhirVersion=4.0", "json"),
            ("application/json", "json"),
            (None, None),
            ("application/octet-stream", None),
        ],
    )
    def test_the_content_type_or_the_first_byte_decides_the_syntax(
        self, content_type: str | None, wire_format: str | None, encode: Encode
    ) -> None:
        body = encode(care_communication())
        sniffed = "xml" if body.startswith(b"<") else "json"
        if wire_format is not None and wire_format != sniffed:
            error = refusal(body, content_type)
            assert error.problem is BundleProblem.CONTENT_TYPE_MISMATCH
            assert error.unreadable
            assert f"says {wire_format.upper()} but the body is {sniffed.upper()}" in str(error)
        else:
            assert parse_bundle(body, content_type).wire_format == sniffed

    @pytest.mark.parametrize(
        "body",
        [
            b'\n  <Bundle xmlns="http://hl7.org/fhir"><type value="document"/></Bundle>',
            b'\r\n\t{"resourceType": "Bundle", "type": "document"}',
        ],
        ids=["xml", "json"],
    )
    def test_blanks_before_the_first_byte_do_not_hide_the_syntax(self, body: bytes) -> None:
        assert refusal(body).problem is BundleProblem.NOT_A_MESSAGE

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b"", BundleProblem.EMPTY),
            (b" \r\n\t", BundleProblem.EMPTY),
            (b"hello", BundleProblem.NOT_XML_OR_JSON),
            (b"\xef\xbb\xbfUNH+1+MEDRPT", BundleProblem.NOT_XML_OR_JSON),
            ('<Bundle xmlns="http://hl7.org/fhir"/>'.encode("utf-16"), BundleProblem.ENCODING),
            (b'{"resourceType": "Bundle", \xff}', BundleProblem.ENCODING),
        ],
    )
    def test_a_body_that_is_not_utf8_xml_or_json_is_refused(
        self, body: bytes, problem: BundleProblem
    ) -> None:
        error = refusal(body)
        assert error.problem is problem
        assert error.unreadable

    def test_truncated_xml_is_refused_with_its_line(self, encode: Encode) -> None:
        body = json_to_xml(care_communication())
        error = refusal(body[: len(body) // 2])
        assert error.problem is BundleProblem.MALFORMED
        assert str(error).startswith("malformed XML (line ")

    def test_truncated_json_is_refused_with_its_position(self) -> None:
        body = json.dumps(care_communication()).encode()
        error = refusal(body[: len(body) // 2])
        assert error.problem is BundleProblem.MALFORMED
        assert str(error).startswith("malformed JSON (line 1, column ")

    def test_json_nested_too_deeply_is_refused_by_the_depth_budget(self) -> None:
        error = refusal(b"[" * 100_000 + b"]" * 100_000)
        assert error.problem is BundleProblem.TOO_DEEP
        assert not error.unreadable


def empty_entries(count: int) -> list[dict[str, Any]]:
    return [{"resource": {"resourceType": "Basic"}} for _ in range(count)]


def nested_extension(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "urn:x", "valueString": "deep"}
    for _ in range(depth):
        node = {"url": "urn:x", "extension": [node]}
    return node


def broken_tail(body: bytes) -> bytes:
    """The body cut short of its last 40 bytes: read to the end, it is malformed."""
    return body[:-40]


class TestBudget:
    """Elements and depth are budgeted while reading; the message start is judged on the first
    entry; a bundle over budget or with the wrong start is refused before the rest is read (a
    broken tail would otherwise make it malformed)."""

    def test_a_bundle_with_more_elements_than_its_budget_is_refused_before_the_rest_is_read(
        self, encode: Encode
    ) -> None:
        bundle = care_communication(extra_entries=empty_entries(2_000))
        body = broken_tail(encode(bundle))
        error = refusal(body, budget=BundleBudget(max_elements=1_000))
        assert error.problem is BundleProblem.TOO_MANY_ELEMENTS
        assert not error.unreadable
        assert "more than 1,000 elements" in str(error)
        assert "max_bundle_elements" in str(error)

    def test_a_bundle_within_its_element_budget_is_read(self, encode: Encode) -> None:
        bundle = care_communication(extra_entries=empty_entries(2_000))
        facts = facts_of(bundle, encode, budget=BundleBudget(max_elements=10_000))
        assert facts.receiver_gln == RECEIVER[0]

    def test_a_bundle_nested_deeper_than_its_budget_is_refused(self, encode: Encode) -> None:
        deep = organization("snd", *SENDER, extension=[nested_extension(40)])
        body = broken_tail(encode(care_communication(sender=deep)))
        error = refusal(body, budget=BundleBudget(max_depth=32))
        assert error.problem is BundleProblem.TOO_DEEP
        assert "deeper than 32 levels" in str(error)
        assert "max_bundle_depth" in str(error)

    def test_a_first_entry_other_than_the_header_is_refused_before_the_rest_is_read(
        self, encode: Encode
    ) -> None:
        bundle = care_communication()
        bundle["entry"].reverse()
        error = refusal(broken_tail(encode(bundle)))
        assert error.problem is BundleProblem.NO_MESSAGE_HEADER
        assert "first entry is a Organization, not a MessageHeader" in str(error)

    def test_an_event_not_accepted_is_refused_before_the_rest_is_read(self, encode: Encode) -> None:
        bundle = care_communication(event="acknowledgement-message")
        error = refusal(broken_tail(encode(bundle)), allow_events=["care-communication-message"])
        assert error.problem is BundleProblem.WRONG_EVENT
        assert error.event_code == "acknowledgement-message"

    def test_a_document_bundle_is_still_named_so_before_its_first_entry_is_judged(
        self, encode: Encode
    ) -> None:
        bundle = care_communication()
        bundle["type"] = "document"
        bundle["entry"].reverse()
        assert refusal(broken_tail(encode(bundle))).problem is BundleProblem.NOT_A_MESSAGE

    def test_json_members_in_any_order_give_the_same_facts(self) -> None:
        bundle = care_communication()
        reordered = {key: bundle[key] for key in reversed(list(bundle))}
        assert list(reordered)[0] == "entry"
        left = parse_bundle(json.dumps(bundle).encode())
        right = parse_bundle(json.dumps(reordered).encode())
        assert same_facts(left, right)

    def test_brackets_and_escaped_quotes_inside_json_strings_are_not_counted(self) -> None:
        text = '{"[\\"]},:' * 5_000  # braces, brackets, commas and \" inside one string
        bundle = care_communication(payloads=[text_payload(text)])
        body = json.dumps(bundle).encode()
        facts = parse_bundle(body, budget=BundleBudget(max_elements=100, max_depth=16))
        assert facts.text_length == len(text)

    def test_the_real_examples_fit_a_budget_a_hundredth_of_the_default(self) -> None:
        budget = BundleBudget(max_elements=1_000, max_depth=16)
        for name in (FLOW1, FLOW3):
            assert parse_bundle(example(name), budget=budget).receiver_gln == ODENSE_HJEMMEPLEJE[0]
            as_json = json.dumps(xml_to_json(example(name), always_lists=False)).encode()
            assert parse_bundle(as_json, budget=budget).receiver_gln == ODENSE_HJEMMEPLEJE[0]

    def test_memory_follows_the_bytes_of_an_over_budget_bundle_not_its_elements(
        self, encode: Encode
    ) -> None:
        # 200,000 empty entries: read whole, each is a dict (or a frame) of its own.
        bundle = care_communication(extra_entries=empty_entries(200_000))
        body = encode(bundle)
        tracemalloc.start()
        try:
            error = refusal(body)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert error.problem is BundleProblem.TOO_MANY_ELEMENTS
        assert peak < 3 * len(body), f"peak {peak:,} bytes for a body of {len(body):,}"


class TestXmlHardening:
    BUNDLE = '<Bundle xmlns="http://hl7.org/fhir"><id value="&x;"/></Bundle>'

    @pytest.mark.parametrize(
        "prolog",
        [
            '<!DOCTYPE Bundle [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
            '<!DOCTYPE Bundle SYSTEM "http://attacker.test/evil.dtd">',
            '<!DOCTYPE Bundle [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
            '<!-- a comment --><?pi here?>\n<!DOCTYPE Bundle [<!ENTITY x "y">]>',
            '<!doctype Bundle [<!ENTITY x "y">]>',
        ],
        ids=["xxe-file", "external-dtd", "entity-expansion", "after-comment-and-pi", "lowercase"],
    )
    def test_any_doctype_is_refused_before_parsing(self, prolog: str) -> None:
        body = f'\ufeff<?xml version="1.0" encoding="UTF-8"?>\n{prolog}{self.BUNDLE}'.encode()
        error = refusal(body, "application/fhir+xml")
        assert error.problem is BundleProblem.DOCTYPE
        assert "DOCTYPE declaration, which is refused" in str(error)
        assert error.unreadable

    def test_doctype_text_inside_a_comment_is_not_a_doctype(self) -> None:
        body = json_to_xml(care_communication()).replace(
            b"?>", b"?><!-- <!DOCTYPE Bundle> is not allowed -->", 1
        )
        assert parse_bundle(body).receiver_gln == RECEIVER[0]

    def test_an_undeclared_entity_is_malformed(self) -> None:
        error = refusal(self.BUNDLE.encode())
        assert error.problem is BundleProblem.MALFORMED
        assert str(error) == "malformed XML (line 1): Entity 'x' not defined"

    def test_a_markup_declaration_outside_a_doctype_is_refused(self) -> None:
        error = refusal(b'<!ENTITY x "y">' + self.BUNDLE.encode())
        assert error.problem is BundleProblem.MALFORMED
        assert "before the root element" in str(error)

    def test_a_root_with_an_undeclared_prefix_is_refused_as_malformed(self) -> None:
        error = refusal(b'<a:Bundle xmlns="http://hl7.org/fhir"><type value="message"/></a:Bundle>')
        assert error.problem is BundleProblem.MALFORMED
        assert "undeclared namespace prefix" in str(error)


def registry_with(*rows: str) -> MessageTypeRegistry:
    """The project's message-type registry with extra rows (tab-separated, as in the TSV)."""
    with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
        lines = list(fh)
    return MessageTypeRegistry.from_tsv_lines([*lines, *(row + "\n" for row in rows)])


class TestMessageTypes:
    def test_every_known_event_is_accepted_by_default(self, encode: Encode) -> None:
        for event, business in EVENT_BUSINESS_MESSAGES.items():
            facts = facts_of(care_communication(event=event), encode)
            assert (facts.event_code, facts.business_message) == (event, business)
            assert facts.message_type == EVENT_MESSAGE_TYPES[event]

    def test_an_unknown_event_is_refused_by_default(self, encode: Encode) -> None:
        error = refusal_of(care_communication(event="referral-message"), encode)
        assert error.problem is BundleProblem.WRONG_EVENT
        assert error.event_code == "referral-message"
        assert "referral-message is not one of the accepted events" in str(error)

    def test_the_registry_types_a_message_by_its_versioned_definition(self, encode: Encode) -> None:
        definition = "http://medcomfhir.dk/ig/acknowledgement/medcom-acknowledgement-message-definition|2.0.0"
        bundle = care_communication(
            event="acknowledgement-message", header={"definition": definition}
        )
        facts = facts_of(bundle, encode, message_types=registry_with())
        assert (facts.message_type, facts.business_message) == ("FCTL", "acknowledgement")
        assert (facts.definition, facts.notes) == (definition, ())

    def test_a_message_type_only_the_registry_knows_is_routed_from_its_data(
        self, encode: Encode
    ) -> None:
        types = registry_with("FREF01\tfhir\treferral\t\t\treferral-message")
        bundle = care_communication(event="referral-message")
        facts = facts_of(bundle, encode, allow_events=["referral-message"], message_types=types)
        assert (facts.message_type, facts.business_message) == ("FREF01", "referral")
        assert facts.to_route_request().business_message == "referral"
        with pytest.raises(ValueError, match="referral-message"):
            parse_bundle(encode(bundle), allow_events=["referral-message"])

    def test_a_definition_of_another_registry_type_loses_to_the_event(self, encode: Encode) -> None:
        types = registry_with("FREF01\tfhir\treferral\t\t\turn:example:referral-definition")
        bundle = care_communication(
            event="care-communication-message",
            header={"definition": "urn:example:referral-definition|1.0"},
        )
        facts = facts_of(bundle, encode, message_types=types)
        assert facts.message_type == "FDIS91"
        assert (
            "names FREF01 but the event care-communication-message names FDIS91" in facts.notes[0]
        )


class TestEventMapping:
    def test_the_event_tables_say_what_the_registry_says(self) -> None:
        types = registry_with()
        for event, code in EVENT_MESSAGE_TYPES.items():
            assert types.code_for_definition(event) == code

    def test_each_event_maps_to_the_fhir_type_of_its_business_message(self) -> None:
        with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
            types = MessageTypeRegistry.from_tsv_lines(fh)
        assert EVENT_MESSAGE_TYPES.keys() == EVENT_BUSINESS_MESSAGES.keys()
        for event, code in EVENT_MESSAGE_TYPES.items():
            message_type = types.get(code)
            assert message_type.syntax == "fhir"
            assert message_type.business_message == EVENT_BUSINESS_MESSAGES[event]

    def test_each_event_is_the_message_definition_of_its_sor_edi_code(self) -> None:
        path = REFERENCE / "sor" / "codelists" / "medcom-fhir-soredi-codes.tsv"
        lines = reference_file(path).decode("utf-8").splitlines()
        rows = csv.DictReader(lines, delimiter="\t")
        assert {row["fhir_message_definition"]: row["code"] for row in rows} == dict(
            EVENT_MESSAGE_TYPES
        )
