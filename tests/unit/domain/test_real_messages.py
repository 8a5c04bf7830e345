"""Real MedCom messages, each routed from the file as held, on a registry holding their real
receivers: every kind a conversion gateway holds (CareCommunication, Acknowledgement,
HospitalNotification, XDIS91, XCTL03, EDIFACT DIS91 and CTL03), and minimal edits of them for
the classes of real input a conversion expert watches for.

The messages are read from the shared reference folder (never copied into the repository); the
receivers' GLNs and SOR-IDs are the real ones the files name. What each receiver advertises is
chosen so that every route a gateway takes occurs: native FHIR, FHIR to OIOXML, OIOXML to FHIR,
native EDIFACT.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln, Registry
from soredi_sync.domain.routing import (
    AttachmentContent,
    Decision,
    Reason,
    Resolver,
    RouteDecision,
    RoutingIndex,
    RoutingPolicy,
    SnapshotRef,
    WarningCode,
)
from soredi_sync.parsing.message import parse_message
from tests.support.factories import registry, unit
from tests.support.reference import reference_path

ON = date(2026, 6, 1)  # inside the financed FHIR<->OIOXML conversion window
AFTER_CONVERSION = date(2027, 1, 4)
VANS = "41000035001"

# (SOR-ID or None, GLN, name, the message types it advertises)
RECEIVERS: tuple[tuple[str | None, str, str, tuple[str, ...]], ...] = (
    ("330461000016004", "5790001353308", "Receiver of cc5-S-A", ("FDIS91", "FCTL")),
    ("1017421000016003", "5790002408496", "Receiver of cc5-S-B..E", ("FDIS91", "FCTL")),
    # The 'to MedCom XDIS91' test receiver: legacy only.
    ("325251000016005", "5790000121526", "Legacy receiver", ("XDIS91", "XCTL03", "XBIN01")),
    ("265161000016000", "5790000209354", "Receiver of the acknowledgements", ("FDIS91", "FCTL")),
    ("953741000016009", "5790001348120", "Receiver of the notification", ("FDIS20", "FCTL")),
    ("291001000016002", "5790000120314", "MedComs testcenter", ("FDIS91", "FCTL")),
    ("291002000016007", "5790000181872", "Receipt receiver", ("FCTL", "CTL03")),
    ("291003000016001", "5790000128700", "EDIFACT receiver", ("DIS91", "CTL03")),
    # Odense's home care, the receiver of MedCom's conversion flow examples.
    ("328051000016008", "5790000121441", "Hjemmeplejen, Odense", ("FDIS91", "FCTL")),
)


def _registry(overrides: dict[str, tuple[str, ...]] | None = None) -> Registry:
    units = []
    glns = []
    caps: dict[str, list[str]] = {}
    for sor_id, gln, name, types in RECEIVERS:
        assert sor_id is not None
        units.append(unit(sor_id, own_gln=gln, name=name))
        glns.append(Gln(gln=gln, owner_sor_id=sor_id, vans=VANS, active=True))
        caps[gln] = list((overrides or {}).get(gln, types))
    return registry(units, glns, caps)


@pytest.fixture(scope="module")
def message_types(types: MessageTypeRegistry) -> MessageTypeRegistry:
    return types  # the shipped configuration's (tests/unit/domain/conftest.py)


def _resolver(
    message_types: MessageTypeRegistry,
    policy: RoutingPolicy,
    overrides: dict[str, tuple[str, ...]] | None = None,
) -> Resolver:
    index = RoutingIndex.build(SnapshotRef(1, _taken()), _registry(overrides))
    return Resolver(index, policy, message_types)


def _taken() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 5, 31, 6, 0, tzinfo=UTC)


def _message(name: str) -> bytes:
    return reference_path("messages", name).read_bytes()


def _flow_example(name: str) -> bytes:
    return reference_path("services", "carecommunication", "examples", name).read_bytes()


def _route(
    data: bytes,
    message_types: MessageTypeRegistry,
    policy: RoutingPolicy,
    *,
    on: date = ON,
    overrides: dict[str, tuple[str, ...]] | None = None,
) -> RouteDecision:
    facts = parse_message(data, None, message_types=message_types)
    resolver = _resolver(message_types, policy, overrides)
    return resolver.resolve(facts.to_route_request(at=on), on)


def _codes(decision: RouteDecision) -> set[WarningCode]:
    return {w.code for w in decision.warnings}


class TestEveryRealMessageIsRoutedAsAnExpertWould:
    @pytest.mark.parametrize(
        "name",
        [
            "cc5-S-A-new-longtext.json",
            "cc5-S-C-simple.json",
            "cc5-S-D-pdf.xml",
            "cc5-S-E-forward.json",
        ],
    )
    def test_a_carecommunication_to_a_fhir_receiver_is_delivered_natively(
        self, name: str, message_types, policy
    ) -> None:
        decision = _route(_message(name), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, decision.syntax, decision.conversion) == (
            "FDIS91",
            "fhir",
            (),
        )
        assert decision.warnings == ()
        assert decision.address.sor_id is not None and decision.address.gln is not None

    def test_a_pdf_travels_inline_as_a_pdf(self, message_types, policy) -> None:
        decision = _route(_message("cc5-S-D-pdf.xml"), message_types, policy)
        (plan,) = decision.attachments
        assert (plan.mime_type, plan.size, plan.carried_as) == ("application/pdf", 113327, "inline")
        assert (plan.index, plan.title) == (1, "Kalenderoversigt")

    def test_a_png_label_on_jpeg_bytes_is_delivered_with_a_type_mismatch_warning(
        self, message_types, policy
    ) -> None:
        # MedCom's own test message: declared image/png, but the bytes are a JFIF JPEG.
        decision = _route(_message("cc5-S-B-png.xml"), message_types, policy)
        assert decision.decision is Decision.DELIVER
        assert _codes(decision) == {WarningCode.ATTACHMENT_TYPE_MISMATCH}
        (plan,) = decision.attachments
        assert (plan.declared_type, plan.sniffed_type) == ("image/png", "image/jpeg")
        assert plan.mime_type == "image/png"  # delivered unchanged
        assert "madpyramiden" in decision.warnings[0].message
        legacy = {"5790002408496": ("XDIS91", "XCTL03", "XBIN01")}
        converted = _route(_message("cc5-S-B-png.xml"), message_types, policy, overrides=legacy)
        assert converted.decision is Decision.DELIVER, converted.trace
        (plan,) = converted.attachments
        assert (plan.mime_type, plan.carried_as) == ("image/jpeg", "XBIN01")
        assert _codes(converted) == {WarningCode.ATTACHMENT_TYPE_MISMATCH}

    def test_a_carecommunication_to_a_legacy_receiver_is_converted_to_xdis91_by_its_vans(
        self, message_types, policy
    ) -> None:
        decision = _route(_message("cc5-S-TekCPR-to-MedComXDIS91.json"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert decision.message_type == "XDIS91"
        assert [(c.step, c.by) for c in decision.conversion] == [("fhir->oioxml", VANS)]

    @pytest.mark.parametrize("name", ["ack-AA-3.3.1.1.xml", "ack-AE-3.4.4.json"])
    def test_a_fhir_acknowledgement_is_routed_natively_as_fctl(
        self, name: str, message_types, policy
    ) -> None:
        decision = _route(_message(name), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, decision.syntax) == ("FCTL", "fhir")
        assert decision.address.gln == "5790000209354"
        assert decision.warnings == ()

    @pytest.mark.parametrize("name", ["ack-AA-3.3.1.1.xml", "ack-AE-3.4.4.json"])
    def test_a_fhir_acknowledgement_to_a_legacy_receiver_becomes_an_xctl03(
        self, name: str, message_types, policy
    ) -> None:
        legacy = {"5790000209354": ("XDIS91", "XCTL03", "XCTL02")}
        decision = _route(_message(name), message_types, policy, overrides=legacy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert decision.message_type == "XCTL03"  # the receipt the conversion makes
        assert [c.step for c in decision.conversion] == ["fhir->oioxml"]

    def test_a_hospital_notification_is_routed_natively_as_fdis20(
        self, message_types, policy
    ) -> None:
        decision = _route(_message("hn-SLHJ_H-discharge.json"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, decision.syntax) == ("FDIS20", "fhir")

    def test_an_xdis91_to_a_fhir_receiver_is_converted_to_carecommunication(
        self, message_types, policy
    ) -> None:
        decision = _route(_message("xdis91-ec-physio-2014.xml"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert decision.message_type == "FDIS91"
        assert [c.step for c in decision.conversion] == ["oioxml->fhir"]
        assert decision.address.gln == "5790000120314"

    def test_an_xdis91_after_the_conversion_window_is_rejected(self, message_types, policy) -> None:
        decision = _route(
            _message("xdis91-ec-physio-2014.xml"), message_types, policy, on=AFTER_CONVERSION
        )
        assert decision.decision is Decision.REJECT
        assert decision.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE

    def test_an_xctl03_receipt_goes_to_its_receiver_not_the_original_one(
        self, message_types, policy
    ) -> None:
        decision = _route(_message("xctl03-ec-receipt.xml"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert decision.address.gln == "5790000181872"
        assert (decision.message_type, [c.step for c in decision.conversion]) == (
            "FCTL",
            ["oioxml->fhir"],
        )

    def test_an_edifact_dis91_to_an_edifact_receiver_is_delivered_natively(
        self, message_types, policy
    ) -> None:
        decision = _route(_message("edi-DIS91-1998.edi"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, decision.syntax, decision.conversion) == (
            "DIS91",
            "edifact",
            (),
        )
        # The 1998 test file's receiver EAN fails the GS1 check digit: said, not refused.
        assert _codes(decision) == {WarningCode.GLN_CHECK_DIGIT}

    def test_an_xdis91_with_a_bin_reference_converts_with_its_pdf_inline(
        self, message_types, policy
    ) -> None:
        decision = _route(_flow_example("Flow1-XDIS91_Ex_to_FHIR.xml"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, [c.step for c in decision.conversion]) == (
            "FDIS91",
            ["oioxml->fhir"],
        )
        (plan,) = decision.attachments
        assert (plan.mime_type, plan.size, plan.content, plan.carried_as) == (
            "application/pdf",
            4297,
            AttachmentContent.SEPARATE,
            "inline",
        )

    def test_a_lone_xbin01_travels_inside_the_carecommunication_its_letter_becomes(
        self, message_types, policy
    ) -> None:
        decision = _route(_flow_example("Flow1-XBIN01_Ex_to_FHIR.xml"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, decision.syntax) == ("FDIS91", "fhir")
        (plan,) = decision.attachments
        assert (plan.sniffed_type, plan.carried_as) == ("application/pdf", "inline")

    def test_an_edifact_ctl03_is_delivered_natively(self, message_types, policy) -> None:
        decision = _route(_message("edi-CTL03.edi"), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert (decision.message_type, decision.syntax) == ("CTL03", "edifact")

    def test_an_edifact_dis91_to_a_fhir_receiver_needs_an_agreement_for_edifact(
        self, message_types, policy
    ) -> None:
        fhir_only = {"5790000128700": ("FDIS91", "FCTL")}
        decision = _route(
            _message("edi-DIS91-1998.edi"), message_types, policy, overrides=fhir_only
        )
        # EDIFACT -> OIOXML is agreed with no VANS by default, so there is no path to FHIR.
        assert decision.decision is Decision.REJECT
        assert decision.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE
        agreed = replace(policy, agreements={VANS: frozenset({"edifact->oioxml"})})
        decision = _route(
            _message("edi-DIS91-1998.edi"), message_types, agreed, overrides=fhir_only
        )
        assert decision.decision is Decision.DELIVER, decision.trace
        assert [c.step for c in decision.conversion] == ["edifact->oioxml", "oioxml->fhir"]


# -- minimal edits of real messages --------------------------------------------------------


def _edited_json(name: str, edit: Any) -> bytes:
    bundle = json.loads(_message(name))
    edit(bundle)
    return json.dumps(bundle).encode()


def _receiver_org(bundle: dict[str, Any]) -> dict[str, Any]:
    header = bundle["entry"][0]["resource"]
    reference = header["destination"][0]["receiver"]["reference"]
    kind, _, resource_id = reference.rpartition("/")
    return next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == kind.rsplit("/", 1)[-1]
        and e["resource"].get("id") == resource_id
    )


def _communication(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"
    )


class TestMinimalEditsOfRealMessages:
    def test_a_gln_under_the_gs1_oid_is_read_with_a_legacy_system_warning(
        self, message_types, policy
    ) -> None:
        def edit(bundle: dict[str, Any]) -> None:
            organization = _receiver_org(bundle)
            organization["identifier"] = [
                {"system": "urn:oid:1.3.88", "value": i["value"]}
                for i in organization["identifier"]
                if "gs1" in i["system"]
            ]
            del bundle["entry"][0]["resource"]["destination"][0]["endpoint"]

        decision = _route(_edited_json("cc5-S-C-simple.json", edit), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert decision.address.gln == "5790002408496"
        assert _codes(decision) == {WarningCode.LEGACY_GLN_SYSTEM}

    def test_a_misspelt_sor_system_is_used_and_named(self, message_types, policy) -> None:
        def edit(bundle: dict[str, Any]) -> None:
            for identifier in _receiver_org(bundle)["identifier"]:
                if identifier["system"] == "urn:oid:1.2.208.176.1.1":
                    identifier["system"] = "urn:oid1.2.208.176.1.1"

        decision = _route(_edited_json("cc5-S-C-simple.json", edit), message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert _codes(decision) == {WarningCode.IDENTIFIER_SYSTEM_MISSPELT}
        assert "urn:oid1.2.208.176.1.1" in decision.warnings[0].message

    def test_an_endpoint_naming_the_senders_own_unit_is_an_address_mismatch(
        self, message_types, policy
    ) -> None:
        # The sender of the acknowledgement (SOR 953741000016009) named as the endpoint.
        def edit(bundle: dict[str, Any]) -> None:
            destination = bundle["entry"][0]["resource"]["destination"][0]
            destination["endpoint"] = "https://sor2.sum.dsdn.dk/#id=953741000016009"

        data = _edited_json("ack-AE-3.4.4.json", edit)
        decision = _route(data, message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert decision.address.gln == "5790000209354"  # the VANS delivers by GLN
        (warning,) = decision.warnings
        assert warning.code is WarningCode.ADDRESS_MISMATCH
        assert "953741000016009" in warning.message and "265161000016000" in warning.message
        strict = replace(policy, reject_address_mismatch=True)
        rejected = _route(data, message_types, strict)
        assert rejected.reason is Reason.ADDRESS_MISMATCH

    def test_a_link_only_attachment_is_not_converted_but_delivered_natively(
        self, message_types, policy
    ) -> None:
        def edit(bundle: dict[str, Any]) -> None:
            for payload in _communication(bundle)["payload"]:
                attachment = payload.get("contentAttachment")
                if attachment:
                    attachment.pop("data", None)
                    attachment["url"] = "https://example.org/documents/kalender.pdf"

        xml = _message("cc5-S-D-pdf.xml")
        from tests.support.fhir import json_to_xml, xml_to_json

        bundle = xml_to_json(xml, always_lists=False)
        edit(bundle)
        data = json_to_xml(bundle)
        native = _route(data, message_types, policy)
        assert native.decision is Decision.DELIVER
        assert _codes(native) == {WarningCode.ATTACHMENT_LINK}
        assert native.attachments[0].content is AttachmentContent.LINK
        legacy = {"5790002408496": ("XDIS91", "XCTL03", "XBIN01")}
        converted = _route(data, message_types, policy, overrides=legacy)
        assert converted.decision is Decision.REJECT
        assert converted.reason is Reason.ATTACHMENT_LINK_NOT_CONVERTIBLE
        assert "Kalenderoversigt" in converted.trace[-2].detail

    def test_a_category_without_a_code_warns_that_the_legacy_subject_is_incomplete(
        self, message_types, policy
    ) -> None:
        def edit(bundle: dict[str, Any]) -> None:
            for category in _communication(bundle)["category"]:
                for coding in category["coding"]:
                    coding.pop("code", None)

        data = _edited_json("cc5-S-TekCPR-to-MedComXDIS91.json", edit)
        decision = _route(data, message_types, policy)
        assert decision.decision is Decision.DELIVER, decision.trace
        assert WarningCode.CATEGORY_MISSING in _codes(decision)
        strict = replace(policy, limits=replace(policy.limits, reject_missing_category=True))
        assert _route(data, message_types, strict).reason is Reason.CATEGORY_MISSING
