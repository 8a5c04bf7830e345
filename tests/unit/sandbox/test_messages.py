"""CareCommunication bundles for sandbox receivers, read back as a gateway's message would be."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from soredi_sync.config import config_dir
from soredi_sync.domain.identifiers import IdentifierSource
from soredi_sync.domain.model import Gln
from soredi_sync.parsing.fhir import BundleFacts
from soredi_sync.parsing.message import parse_message
from soredi_sync.reference_data import ReferenceData
from soredi_sync.sandbox.messages import (
    FHIR,
    Document,
    Party,
    care_communication,
    party,
    small_pdf,
)
from tests.support.factories import gln, registry, unit

SENT = datetime(2026, 11, 3, 10, 30, tzinfo=timezone(timedelta(hours=1)))
RECEIVER = Party("5790000100309", "300101000016002", "Region Nordjylland")
SENDER = Party("5790000101931", "300401000016008", "Regionshospital Nordjylland")


def read(data: bytes) -> BundleFacts:
    facts = parse_message(data, None, message_types=ReferenceData.load(config_dir()).message_types)
    assert isinstance(facts, BundleFacts)
    return facts


class TestCareCommunication:
    def test_the_bundle_reads_as_a_carecommunication_to_the_receiver(self) -> None:
        facts = read(care_communication(RECEIVER, SENDER, sent_at=SENT))
        assert (facts.message_type, facts.business_message) == ("FDIS91", "correspondence")
        assert (facts.receiver_gln, facts.receiver_sor_id) == (RECEIVER.gln, RECEIVER.sor_id)
        assert (facts.sender_gln, facts.sender_sor_id) == (SENDER.gln, SENDER.sor_id)
        assert [(i.source, i.value) for i in facts.receiver_identifiers] == [
            (IdentifierSource.ORGANIZATION, RECEIVER.gln),
            (IdentifierSource.ORGANIZATION, RECEIVER.sor_id),
            (IdentifierSource.ENDPOINT, f"https://sor2.sum.dsdn.dk/#id={RECEIVER.sor_id}"),
        ]
        assert facts.category == "regarding-referral" and facts.category_coded is True
        assert facts.topic == "Undersøgelser forud for visitation"
        assert facts.notes == ()

    def test_an_attached_pdf_travels_as_data_and_its_bytes_show_pdf(self) -> None:
        pdf = small_pdf("Blodproevesvar")
        data = care_communication(
            RECEIVER,
            SENDER,
            sent_at=SENT,
            attachments=[Document("Blodprøvesvar", "application/pdf", pdf)],
        )
        (attachment,) = read(data).attachments
        assert attachment.mime_type == "application/pdf"
        assert attachment.sniffed_type == "application/pdf"
        assert attachment.size == len(pdf)
        encoded = etree.fromstring(data).find(f".//{{{FHIR}}}contentAttachment/{{{FHIR}}}data")
        assert encoded is not None and base64.b64decode(encoded.get("value") or "") == pdf

    def test_the_same_message_is_written_byte_for_byte_the_same(self) -> None:
        first = care_communication(RECEIVER, SENDER, sent_at=SENT)
        assert care_communication(RECEIVER, SENDER, sent_at=SENT) == first
        other = care_communication(SENDER, RECEIVER, sent_at=SENT)
        assert read(other).bundle_id != read(first).bundle_id

    def test_the_resources_come_in_medcoms_order_with_their_profiles(self) -> None:
        root = etree.fromstring(care_communication(RECEIVER, SENDER, sent_at=SENT))
        resources = [etree.QName(r).localname for r in root.iterfind(f"{{{FHIR}}}entry/*/*")]
        assert resources == [
            "MessageHeader",
            "Patient",
            "Communication",
            "Organization",
            "Organization",
            "Provenance",
        ]
        profiles = root.findall(f".//{{{FHIR}}}meta/{{{FHIR}}}profile")
        assert len(profiles) == 1 + len(resources)

    def test_a_send_time_without_a_timezone_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone"):
            care_communication(RECEIVER, SENDER, sent_at=datetime(2026, 11, 3, 10, 30))


class TestParty:
    def test_a_message_goes_to_the_unit_that_owns_the_gln(self) -> None:
        owner, own = gln(1), gln(2)
        reg = registry(
            [
                unit("100", own_gln=owner, name="Kommune"),
                unit("110", "100", name="Hjemmeplejen"),
                unit("120", "100", own_gln=own, name="Sygeplejen"),
            ],
            [Gln(owner), Gln(own)],
        )
        assert party(reg, own) == Party(own, "120", "Sygeplejen")
        assert party(reg, owner) == Party(owner, "100", "Kommune")

    def test_a_gln_no_unit_uses_cannot_be_addressed(self) -> None:
        unused = gln(3)
        reg = registry([unit("200"), unit("210", "200")], [Gln(unused)])
        with pytest.raises(LookupError, match=unused):
            party(reg, unused)
