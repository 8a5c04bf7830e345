"""The routing resolver, rule by rule (DOMAIN.md §3.1), on hand-built registries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soredi_sync.domain.identifiers import IdentifierKind, IdentifierSource, ReceiverIdentifier
from soredi_sync.domain.model import Gln
from soredi_sync.domain.routing import (
    Attachment,
    AttachmentContent,
    ConversionStep,
    Decision,
    Limits,
    Reason,
    Resolver,
    RouteDecision,
    RouteRequest,
    RoutingIndex,
    RoutingInputError,
    SnapshotRef,
    WarningCode,
)
from soredi_sync.reference_data import load_routing_policy
from tests.support.factories import gln, registry, unit

KMD = "41000035001"
TRUECOMMERCE = "51000035003"
TODAY = date(2026, 11, 26)
AFTER_CONVERSION_ENDS = date(2027, 1, 4)
PDF = Attachment("application/pdf", 20_000)

FHIR_GLN = gln(1)  # FDIS91 + FCTL
XML_GLN = gln(2)  # XDIS91 + XBIN01
EDI_GLN = gln(3)  # DIS91 + BIN01
BOTH_GLN = gln(4)  # FDIS91 and XDIS91
XML_NO_BIN = gln(5)  # XDIS91 without XBIN01
INACTIVE = gln(6)
NO_VANS = gln(7)  # XDIS91 + XBIN01, no VANS
CLOSED_UNITS = gln(8)
XCTL03_ONLY = gln(9)  # acknowledgements in OIOXML only
FCTL_ONLY = gln(10)  # acknowledgements in FHIR only
HN_FHIR = gln(11)  # FDIS20
UNKNOWN_GLN = gln(99)  # in no snapshot

GS1 = "https://www.gs1.org/gln"
SOR = "urn:oid:1.2.208.176.1.1"


def _registry():
    units = [
        unit("100", own_gln=FHIR_GLN, name="Region"),
        unit("101", "100"),  # inherits FHIR_GLN
        unit("102", "101"),  # inherits through 101
        unit("103", "100", inherit=False),  # no GLN of its own: addressed via 100
        unit("104", "103"),  # inherits from 103, which has none: via 100
        unit("200", own_gln=XML_GLN),
        unit("300", own_gln=EDI_GLN),
        unit("400", own_gln=BOTH_GLN),
        unit("500", own_gln=XML_NO_BIN),
        unit("600", own_gln=INACTIVE),
        unit("700", own_gln=NO_VANS),
        unit("800", own_gln=CLOSED_UNITS, to_date=date(2026, 1, 1)),
        unit("900"),  # an owner without any GLN at all
        unit("901", "900"),
        unit("110", "100", name="Closed ward", to_date=date(2026, 1, 1)),  # inherits FHIR_GLN
        unit("1000", own_gln=XCTL03_ONLY),
        unit("1100", own_gln=FCTL_ONLY),
        unit("1200", own_gln=HN_FHIR, name="Hospital"),
    ]
    glns = [
        Gln(FHIR_GLN, vans=KMD),
        Gln(XML_GLN, vans=KMD),
        Gln(EDI_GLN, vans=TRUECOMMERCE),
        Gln(BOTH_GLN, vans=KMD),
        Gln(XML_NO_BIN, vans=KMD),
        Gln(INACTIVE, vans=KMD, active=False),
        Gln(NO_VANS, vans=None),
        Gln(CLOSED_UNITS, vans=KMD),
        Gln(XCTL03_ONLY, vans=KMD),
        Gln(FCTL_ONLY, vans=KMD),
        Gln(HN_FHIR, vans=KMD),
    ]
    caps = {
        FHIR_GLN: ["FDIS91", "FCTL"],
        XML_GLN: ["XDIS91", "XBIN01", "XCTL02", "XCTL03"],
        EDI_GLN: ["DIS91", "BIN01", "CTL02", "CTL03"],
        BOTH_GLN: ["FDIS91", "FCTL", "XDIS91", "XBIN01"],
        XML_NO_BIN: ["XDIS91"],
        INACTIVE: ["FDIS91"],
        NO_VANS: ["XDIS91", "XBIN01"],
        CLOSED_UNITS: ["FDIS91"],
        XCTL03_ONLY: ["XCTL03"],
        FCTL_ONLY: ["FCTL"],
        HN_FHIR: ["FDIS20", "FCTL"],
    }
    return registry(units, glns, caps)


def _resolver(types, policy, **policy_changes) -> Resolver:
    snapshot = SnapshotRef(7, datetime(2026, 11, 26, 4, 30, tzinfo=UTC))
    return Resolver(
        RoutingIndex.build(snapshot, _registry()), replace(policy, **policy_changes), types
    )


def _route(resolver: Resolver, sender: str = "fhir", *, day: date = TODAY, **kwargs):
    kwargs.setdefault("business_message", "correspondence")
    return resolver.resolve(RouteRequest(sender_syntax=sender, **kwargs), day)


def _codes(decision: RouteDecision) -> list[WarningCode]:
    return [w.code for w in decision.warnings]


def _warning(decision: RouteDecision, code: WarningCode) -> str:
    found = [w.message for w in decision.warnings if w.code is code]
    assert found, f"no {code} in {decision.warnings}"
    return found[0]


def _trace(decision: RouteDecision, rule: str) -> list[tuple[str, str]]:
    return [(t.outcome, t.detail) for t in decision.trace if t.rule == rule]


def _org(system: str | None, value: str) -> ReceiverIdentifier:
    return ReceiverIdentifier(IdentifierSource.ORGANIZATION, system, value)


def _endpoint(sor_id: str) -> ReceiverIdentifier:
    return ReceiverIdentifier(
        IdentifierSource.ENDPOINT, None, f"https://sor2.sum.dsdn.dk/#id={sor_id}"
    )


class TestNativeDelivery:
    def test_a_fhir_receiver_gets_fdis91_as_sent(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=FHIR_GLN, attachments=(PDF,))
        assert (d.decision, d.message_type, d.syntax, d.conversion) == (
            Decision.DELIVER,
            "FDIS91",
            "fhir",
            (),
        )
        assert [a.carried_as for a in d.attachments] == ["inline"]
        assert [t.rule for t in d.trace][:4] == [
            "identifier",
            "receiver",
            "receiver-types",
            "native",
        ]

    def test_a_legacy_sender_to_a_legacy_receiver_is_native_with_separate_binaries(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), "oioxml", receiver_gln=XML_GLN, attachments=(PDF, PDF))
        assert (d.message_type, d.conversion) == ("XDIS91", ())
        assert [a.carried_as for a in d.attachments] == ["XBIN01", "XBIN01"]

    def test_a_receiver_taking_both_syntaxes_gets_the_senders_own(self, types, policy) -> None:
        resolver = _resolver(types, policy)
        assert _route(resolver, "oioxml", receiver_gln=BOTH_GLN).message_type == "XDIS91"
        assert _route(resolver, "fhir", receiver_gln=BOTH_GLN).message_type == "FDIS91"

    def test_limits_do_not_apply_without_a_conversion(self, types, policy) -> None:
        many = tuple(Attachment("application/zip", 10) for _ in range(12))
        assert (
            _route(_resolver(types, policy), receiver_gln=FHIR_GLN, attachments=many).decision
            is Decision.DELIVER
        )


class TestConversion:
    def test_fhir_to_a_legacy_receiver_is_converted_by_the_receivers_vans(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(PDF,))
        assert (d.decision, d.message_type, d.syntax) == (Decision.DELIVER, "XDIS91", "oioxml")
        assert [(c.step, c.by) for c in d.conversion] == [("fhir->oioxml", KMD)]
        assert [a.carried_as for a in d.attachments] == ["XBIN01"]

    def test_oioxml_to_a_fhir_receiver_is_converted_and_attachments_go_inline(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), "oioxml", receiver_gln=FHIR_GLN, attachments=(PDF,))
        assert [c.step for c in d.conversion] == ["oioxml->fhir"]
        assert [a.carried_as for a in d.attachments] == ["inline"]

    def test_conversion_ends_with_its_window(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, day=AFTER_CONVERSION_ENDS)
        assert (d.decision, d.reason) == (Decision.REJECT, Reason.UNABLE_TO_RECEIVE_MSG_TYPE)
        assert ("conversion", "not-allowed") in [(t.rule, t.outcome) for t in d.trace]

    def test_the_decision_date_of_the_request_wins_over_today(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, at=AFTER_CONVERSION_ENDS)
        assert d.decision is Decision.REJECT and d.decided_on == AFTER_CONVERSION_ENDS

    def test_one_resolver_answers_each_day_and_each_vans_by_its_own_conversion_path(
        self, types, policy
    ) -> None:
        resolver = _resolver(
            types, policy, agreements={TRUECOMMERCE: frozenset({"oioxml->edifact"})}
        )
        for _ in range(2):  # asked again: the remembered paths give the same answers
            open_day = _route(resolver, receiver_gln=XML_GLN)
            closed_day = _route(resolver, receiver_gln=XML_GLN, at=AFTER_CONVERSION_ENDS)
            agreed = _route(resolver, receiver_gln=EDI_GLN)
            assert open_day.decision is Decision.DELIVER
            assert closed_day.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE
            assert [c.step for c in agreed.conversion] == ["fhir->oioxml", "oioxml->edifact"]

    def test_fhir_to_edifact_needs_an_agreement_with_the_receivers_vans(
        self, types, policy
    ) -> None:
        without = _route(_resolver(types, policy), receiver_gln=EDI_GLN)
        assert without.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE
        agreed = {TRUECOMMERCE: frozenset({"oioxml->edifact", "edifact->oioxml"})}
        d = _route(
            _resolver(types, policy, agreements=agreed), receiver_gln=EDI_GLN, attachments=(PDF,)
        )
        assert (d.decision, d.message_type) == (Decision.DELIVER, "DIS91")
        assert [(c.step, c.by) for c in d.conversion] == [
            ("fhir->oioxml", TRUECOMMERCE),
            ("oioxml->edifact", TRUECOMMERCE),
        ]
        assert [a.carried_as for a in d.attachments] == ["BIN01"]

    def test_an_agreement_with_another_vans_does_not_count(self, types, policy) -> None:
        agreed = {KMD: frozenset({"oioxml->edifact"})}
        assert (
            _route(_resolver(types, policy, agreements=agreed), receiver_gln=EDI_GLN).decision
            is Decision.REJECT
        )

    def test_the_syntax_preference_picks_among_several_targets(self, types, policy) -> None:
        agreed = {KMD: frozenset({"edifact->oioxml"})}
        resolver = _resolver(types, policy, agreements=agreed)
        d = _route(resolver, "edifact", receiver_gln=BOTH_GLN)
        assert (d.message_type, [c.step for c in d.conversion]) == (
            "FDIS91",
            ["edifact->oioxml", "oioxml->fhir"],
        )
        xml_first = _resolver(
            types, policy, agreements=agreed, syntax_preference=("oioxml", "fhir")
        )
        assert _route(xml_first, "edifact", receiver_gln=BOTH_GLN).message_type == "XDIS91"

    def test_a_conversion_needs_a_vans_on_the_receiver(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=NO_VANS)
        assert d.reason is Reason.NO_VANS

    def test_a_legacy_receiver_without_a_binary_type_cannot_get_attachments(
        self, types, policy
    ) -> None:
        resolver = _resolver(types, policy)
        assert _route(resolver, receiver_gln=XML_NO_BIN).decision is Decision.DELIVER
        d = _route(resolver, receiver_gln=XML_NO_BIN, attachments=(PDF,))
        assert d.reason is Reason.NO_ATTACHMENT_TYPE


class TestConversionLimits:
    def test_more_than_ten_attachments_is_rejected(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(PDF,) * 11)
        assert d.reason is Reason.TOO_MANY_ATTACHMENTS
        ok = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(PDF,) * 10)
        assert ok.decision is Decision.DELIVER

    def test_a_mime_type_outside_the_six_is_rejected(self, types, policy) -> None:
        word = Attachment("application/msword", 100)
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(PDF, word))
        assert d.reason is Reason.MIME_NOT_ALLOWED
        assert "application/msword" in d.trace[-2].detail

    def test_a_message_over_100_mb_is_rejected(self, types, policy) -> None:
        resolver = _resolver(types, policy)
        big = _route(resolver, receiver_gln=XML_GLN, total_size=100 * 1024 * 1024 + 1)
        assert big.reason is Reason.TOO_LARGE
        by_attachments = _route(
            resolver, receiver_gln=XML_GLN, attachments=(Attachment("image/png", 60 * 1024**2),) * 2
        )
        assert by_attachments.reason is Reason.TOO_LARGE

    def test_a_long_subject_warns_or_rejects_by_setting(self, types, policy) -> None:
        request = {"receiver_gln": XML_GLN, "category": "examination-results", "topic": "x" * 60}
        warned = _route(_resolver(types, policy), **request)
        assert warned.decision is Decision.DELIVER
        assert _codes(warned) == [WarningCode.SUBJECT_TRUNCATED]
        strict = replace(policy.limits, reject_long_subject=True)
        assert (
            _route(_resolver(types, policy, limits=strict), **request).reason
            is Reason.SUBJECT_TOO_LONG
        )

    def test_a_long_text_warns_or_rejects_by_setting(self, types, policy) -> None:
        warned = _route(_resolver(types, policy), receiver_gln=XML_GLN, text_length=31_151)
        assert "31151 characters > 31150" in _warning(warned, WarningCode.TEXT_OVER_LEGACY_LIMIT)
        strict = replace(policy.limits, reject_long_text=True)
        d = _route(
            _resolver(types, policy, limits=strict), receiver_gln=XML_GLN, text_length=31_151
        )
        assert d.reason is Reason.TEXT_TOO_LONG
        fine = _route(
            _resolver(types, policy, limits=strict), receiver_gln=XML_GLN, text_length=31_150
        )
        assert fine.decision is Decision.DELIVER

    def test_legacy_limits_do_not_apply_to_a_fhir_target(self, types, policy) -> None:
        strict = replace(policy.limits, reject_long_text=True, reject_long_subject=True)
        d = _route(
            _resolver(types, policy, limits=strict),
            "oioxml",
            receiver_gln=FHIR_GLN,
            text_length=50_000,
            subject="s" * 100,
        )
        assert d.decision is Decision.DELIVER


class TestReceiver:
    def test_an_inheriting_unit_is_addressed_with_its_own_sor_id_and_the_inherited_gln(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), receiver_sor_id="102")
        assert (d.address.sor_id, d.address.gln, d.address.inherited_from) == (
            "102",
            FHIR_GLN,
            "100",
        )
        assert d.decision is Decision.DELIVER and not d.warnings

    def test_a_unit_without_a_gln_is_addressed_through_the_nearest_parent_that_has_one(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), receiver_sor_id="104")
        assert (d.address.sor_id, d.address.gln) == ("100", FHIR_GLN)
        assert "addressed through 100" in _warning(d, WarningCode.ADDRESSED_THROUGH_ANCESTOR)

    def test_no_gln_anywhere_up_the_tree_is_its_own_reason(self, types, policy) -> None:
        assert (
            _route(_resolver(types, policy), receiver_sor_id="901").reason is Reason.NO_GLN_ON_PATH
        )

    def test_an_unknown_receiver_is_rejected(self, types, policy) -> None:
        resolver = _resolver(types, policy)
        assert _route(resolver, receiver_gln="5790000000000").reason is Reason.UNKNOWN_RECEIVER
        assert _route(resolver, receiver_sor_id="999999").reason is Reason.UNKNOWN_RECEIVER

    def test_an_inactive_gln_is_rejected(self, types, policy) -> None:
        assert (
            _route(_resolver(types, policy), receiver_gln=INACTIVE).reason
            is Reason.RECEIVER_INACTIVE
        )

    def test_a_gln_whose_units_are_all_closed_is_rejected(self, types, policy) -> None:
        assert (
            _route(_resolver(types, policy), receiver_gln=CLOSED_UNITS).reason
            is Reason.RECEIVER_CLOSED
        )

    def test_a_closed_unit_is_rejected(self, types, policy) -> None:
        assert (
            _route(_resolver(types, policy), receiver_sor_id="800").reason is Reason.RECEIVER_CLOSED
        )

    def test_a_gln_that_disagrees_with_the_sor_id_is_used_with_a_warning(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), receiver_sor_id="101", receiver_gln=XML_GLN)
        assert d.address.gln == XML_GLN and d.message_type == "XDIS91"
        assert _codes(d) == [WarningCode.ADDRESS_MISMATCH]

    def test_a_receiver_that_takes_no_type_of_the_message_is_rejected_with_medcoms_code(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_gln=FHIR_GLN,
            business_message="hospital-notification",
        )
        assert d.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE
        assert d.reason.value == "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE"


class TestOtherBusinessMessages:
    def test_acknowledgements_route_by_the_same_rules(self, types, policy) -> None:
        resolver = _resolver(types, policy)
        native = _route(resolver, receiver_gln=FHIR_GLN, business_message="acknowledgement")
        assert native.message_type == "FCTL"
        converted = _route(resolver, receiver_gln=XML_GLN, business_message="acknowledgement")
        assert converted.message_types == ("XCTL03", "XCTL02")  # newest first
        assert [c.step for c in converted.conversion] == ["fhir->oioxml"]

    def test_a_fhir_acknowledgement_to_an_xctl03_receiver_is_converted_to_xctl03(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy), receiver_gln=XCTL03_ONLY, business_message="acknowledgement"
        )
        assert (d.decision, d.message_type) == (Decision.DELIVER, "XCTL03")
        assert [c.step for c in d.conversion] == ["fhir->oioxml"]

    def test_an_xctl03_to_an_fctl_receiver_is_converted_to_fhir(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            "oioxml",
            receiver_gln=FCTL_ONLY,
            business_message="acknowledgement",
        )
        assert (d.decision, d.message_type) == (Decision.DELIVER, "FCTL")
        assert [c.step for c in d.conversion] == ["oioxml->fhir"]

    def test_a_hospital_notification_goes_natively_to_an_fdis20_receiver(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, HN_FHIR), _endpoint("1200")),
            business_message="hospital-notification",
        )
        assert (d.decision, d.message_type, d.conversion, d.warnings) == (
            Decision.DELIVER,
            "FDIS20",
            (),
            (),
        )

    def test_a_legacy_hospital_notification_to_an_fdis20_receiver_is_converted(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            "oioxml",
            receiver_gln=HN_FHIR,
            business_message="hospital-notification",
        )
        assert (d.message_type, [c.step for c in d.conversion]) == ("FDIS20", ["oioxml->fhir"])


class TestReceiverIdentification:
    def test_every_identifier_has_one_trace_entry_with_its_source_system_and_value(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(
                _org(GS1, FHIR_GLN),
                _org(SOR, "101"),
                _org("urn:oid:1.2.208.176.1.2", "2509479989"),
                _endpoint("101"),
            ),
        )
        read = _trace(d, "identifier")
        assert [outcome for outcome, _ in read] == ["gln", "sor-id", "unknown", "sor-id"]
        assert read[0][1] == f"organization: {GS1} '{FHIR_GLN}' = GLN {FHIR_GLN}"
        assert read[2][1].startswith("organization: urn:oid:1.2.208.176.1.2 '2509479989'")
        assert read[3][1] == "endpoint: https://sor2.sum.dsdn.dk/#id=101 = SOR-ID 101"
        assert d.decision is Decision.DELIVER and d.warnings == ()

    def test_the_request_fields_are_read_as_identifiers_when_none_are_given(
        self, types, policy
    ) -> None:
        d = _route(_resolver(types, policy), receiver_gln=FHIR_GLN, receiver_sor_id="101")
        assert [detail.split(":")[0] for _, detail in _trace(d, "identifier")] == [
            "request",
            "request",
        ]

    def test_the_identifiers_of_the_message_win_over_the_request_fields(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_gln=FHIR_GLN,
            receiver_identifiers=(_org(GS1, XML_GLN),),
        )
        assert d.address.gln == XML_GLN and len(_trace(d, "identifier")) == 1

    def test_a_gln_under_the_legacy_gs1_oid_is_used_with_a_warning(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy), receiver_identifiers=(_org("urn:oid:1.3.88", FHIR_GLN),)
        )
        assert (d.decision, d.address.gln) == (Decision.DELIVER, FHIR_GLN)
        assert _codes(d) == [WarningCode.LEGACY_GLN_SYSTEM]
        assert "urn:oid:1.3.88" in _warning(d, WarningCode.LEGACY_GLN_SYSTEM)

    @pytest.mark.parametrize(
        "system", ["urn:oid1.2.208.176.1.1", "oid:1.2.208.176.1.1", "urn:oid:1.2.208.176.1.1 "]
    )
    def test_a_misspelt_sor_system_is_used_and_never_silently(self, types, policy, system) -> None:
        d = _route(_resolver(types, policy), receiver_identifiers=(_org(system, "200"),))
        assert (d.decision, d.address.sor_id, d.address.gln) == (Decision.DELIVER, "200", XML_GLN)
        assert _codes(d) == [WarningCode.IDENTIFIER_SYSTEM_MISSPELT]
        assert repr(system) in _warning(d, WarningCode.IDENTIFIER_SYSTEM_MISSPELT)

    def test_a_misspelt_sor_system_beside_the_gln_is_named_although_the_gln_decides(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org("urn:oid1.2.208.176.1.1", "101")),
        )
        assert d.decision is Decision.DELIVER
        assert _codes(d) == [WarningCode.IDENTIFIER_SYSTEM_MISSPELT]

    def test_a_misspelt_gs1_system_is_used_with_a_warning(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_identifiers=(_org("gs1.org/gln", XML_GLN),))
        assert d.address.gln == XML_GLN
        assert _codes(d) == [WarningCode.IDENTIFIER_SYSTEM_MISSPELT]

    def test_a_value_wrong_for_its_kind_is_not_used_and_the_next_identifier_decides(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN[:12]), _org(SOR, "200")),
        )
        assert (d.decision, d.address.gln) == (Decision.DELIVER, XML_GLN)
        assert _codes(d) == [WarningCode.IDENTIFIER_VALUE_INVALID]
        assert [o for o, _ in _trace(d, "identifier")] == ["invalid", "sor-id"]

    def test_unknown_systems_are_only_listed_while_a_usable_identifier_remains(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org("urn:oid:1.2.208.176.1.2", "x"), _org(GS1, FHIR_GLN)),
        )
        assert d.decision is Decision.DELIVER and d.warnings == ()
        assert [o for o, _ in _trace(d, "identifier")] == ["unknown", "gln"]

    def test_with_no_usable_identifier_the_receiver_is_unknown_and_the_systems_are_named(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org("urn:oid:1.2.208.176.1.2", "123"), _org(None, FHIR_GLN)),
        )
        assert d.reason is Reason.UNKNOWN_RECEIVER
        assert _codes(d) == [WarningCode.IDENTIFIER_SYSTEM_UNKNOWN] * 2
        assert "urn:oid:1.2.208.176.1.2" in d.warnings[0].message

    def test_an_identifier_without_a_system_is_read_by_its_position_in_a_legacy_message(
        self, types, policy
    ) -> None:
        ean = ReceiverIdentifier(IdentifierSource.OIOXML, None, XML_GLN, IdentifierKind.GLN)
        d = _route(_resolver(types, policy), "oioxml", receiver_identifiers=(ean,))
        assert (d.decision, d.message_type, d.warnings) == (Decision.DELIVER, "XDIS91", ())

    def test_a_wrong_check_digit_on_an_unknown_gln_is_said(self, types, policy) -> None:
        wrong = FHIR_GLN[:12] + str((int(FHIR_GLN[12]) + 1) % 10)
        d = _route(_resolver(types, policy), receiver_gln=wrong)
        assert d.reason is Reason.UNKNOWN_RECEIVER
        assert "check digit is wrong" in _trace(d, "receiver")[0][1]


class TestAddressConsistency:
    def test_a_gln_and_a_sor_id_of_the_same_receiver_agree_and_the_unit_is_addressed(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org(SOR, "102"), _endpoint("102")),
        )
        assert (d.address.sor_id, d.address.gln, d.address.inherited_from) == (
            "102",
            FHIR_GLN,
            "100",
        )
        assert d.warnings == ()
        assert [o for o, _ in _trace(d, "identification")] == ["consistent", "consistent"]

    def test_another_unit_with_the_same_gln_is_only_in_the_trace(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org(SOR, "101"), _endpoint("102")),
        )
        assert d.decision is Decision.DELIVER and d.warnings == ()
        assert d.address.sor_id == "101"
        details = [detail for _, detail in _trace(d, "identification")]
        assert any("another unit" in x and "102" in x and "101" in x for x in details)

    def test_an_endpoint_naming_a_unit_with_another_gln_is_a_mismatch_naming_both_units(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org(SOR, "100"), _endpoint("200")),
        )
        assert (d.decision, d.address.gln, d.address.sor_id) == (
            Decision.DELIVER,
            FHIR_GLN,
            "100",
        )
        assert _codes(d) == [WarningCode.ADDRESS_MISMATCH]
        text = _warning(d, WarningCode.ADDRESS_MISMATCH)
        for part in ("endpoint SOR-ID 200", "'Unit 200'", XML_GLN, "organization GLN", FHIR_GLN):
            assert part in text
        assert "SOR-ID 100 'Region'" in text
        assert "which addresses the message" in text

    def test_a_sor_id_that_disagrees_with_the_gln_is_a_mismatch_and_the_gln_addresses(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(SOR, "200"), _org(GS1, FHIR_GLN)),
        )
        assert (d.address.gln, d.message_type) == (FHIR_GLN, "FDIS91")
        text = _warning(d, WarningCode.ADDRESS_MISMATCH)
        assert text.startswith(f"organization SOR-ID 200 ('Unit 200', GLN {XML_GLN})")

    def test_an_unknown_sor_id_with_a_known_gln_is_the_same_rule(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, XML_GLN), _org(SOR, "424242")),
        )
        assert (d.decision, d.address.gln) == (Decision.DELIVER, XML_GLN)
        assert "SOR-ID 424242 (not in the snapshot)" in _warning(d, WarningCode.ADDRESS_MISMATCH)

    def test_a_mismatch_is_refused_when_the_policy_says_reject(self, types, policy) -> None:
        strict = _resolver(types, policy, reject_address_mismatch=True)
        d = _route(strict, receiver_identifiers=(_org(GS1, FHIR_GLN), _endpoint("200")))
        assert (d.decision, d.reason) == (Decision.REJECT, Reason.ADDRESS_MISMATCH)
        assert _codes(d) == [WarningCode.ADDRESS_MISMATCH]
        agreeing = _route(strict, receiver_identifiers=(_org(GS1, FHIR_GLN), _endpoint("101")))
        assert agreeing.decision is Decision.DELIVER

    def test_an_unknown_gln_that_addresses_the_message_is_an_unknown_receiver(
        self, types, policy
    ) -> None:
        for strict in (False, True):
            d = _route(
                _resolver(types, policy, reject_address_mismatch=strict),
                receiver_identifiers=(_org(GS1, UNKNOWN_GLN), _org(SOR, "200")),
            )
            assert d.reason is Reason.UNKNOWN_RECEIVER
            assert d.address.gln == UNKNOWN_GLN
            text = _warning(d, WarningCode.ADDRESS_MISMATCH)
            assert "organization SOR-ID 200 ('Unit 200'" in text
            assert f"GLN {UNKNOWN_GLN} (not in the snapshot)" in text

    def test_identifiers_that_are_all_unknown_are_an_unknown_receiver_without_a_mismatch(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy, reject_address_mismatch=True),
            receiver_identifiers=(_org(GS1, UNKNOWN_GLN), _org(SOR, "424242"), _endpoint("424242")),
        )
        assert (d.decision, d.reason) == (Decision.REJECT, Reason.UNKNOWN_RECEIVER)
        assert _codes(d) == []
        assert any(t.outcome == "unverifiable" for t in d.trace)

    def test_without_a_gln_the_receivers_sor_id_addresses_before_the_endpoint(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy), receiver_identifiers=(_endpoint("300"), _org(SOR, "200"))
        )
        assert (d.address.sor_id, d.address.gln) == ("200", XML_GLN)
        assert _trace(d, "addressed-by")[0][0] == "sor-id"
        assert "endpoint SOR-ID 300" in _warning(d, WarningCode.ADDRESS_MISMATCH)

    def test_without_a_gln_an_agreeing_endpoint_does_not_move_the_address(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy), receiver_identifiers=(_org(SOR, "101"), _endpoint("102"))
        )
        assert (d.address.sor_id, d.address.gln, d.warnings) == ("101", FHIR_GLN, ())
        assert "another unit than the addressed 101" in _trace(d, "identification")[0][1]

    def test_an_endpoint_alone_addresses_the_message(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_identifiers=(_endpoint("102"),))
        assert (d.decision, d.address.sor_id, d.address.gln) == (
            Decision.DELIVER,
            "102",
            FHIR_GLN,
        )

    def test_an_endpoint_without_a_sor_id_is_listed_and_not_used(self, types, policy) -> None:
        page = ReceiverIdentifier(IdentifierSource.ENDPOINT, None, "https://example.org/receiver")
        d = _route(_resolver(types, policy), receiver_identifiers=(page, _org(GS1, FHIR_GLN)))
        assert d.decision is Decision.DELIVER and d.warnings == ()
        assert _trace(d, "identifier")[0][0] == "unknown"

    def test_a_closed_unit_named_beside_its_gln_is_rejected_as_closed(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org(SOR, "110")),
        )
        assert d.reason is Reason.RECEIVER_CLOSED

    def test_a_unit_addressed_through_an_ancestor_agrees_with_the_ancestors_gln(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org(SOR, "104")),
        )
        assert (d.address.sor_id, d.address.gln) == ("100", FHIR_GLN)
        assert _codes(d) == [WarningCode.ADDRESSED_THROUGH_ANCESTOR]

    def test_a_sor_id_with_no_gln_up_its_tree_beside_a_gln_is_a_mismatch(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, FHIR_GLN), _org(SOR, "901")),
        )
        assert d.decision is Decision.DELIVER
        assert "GLN none up its tree" in _warning(d, WarningCode.ADDRESS_MISMATCH)

    def test_two_glns_that_disagree_go_by_the_first(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            receiver_identifiers=(_org(GS1, XML_GLN), _org("urn:oid:1.3.88", FHIR_GLN)),
        )
        assert d.address.gln == XML_GLN
        assert set(_codes(d)) == {WarningCode.LEGACY_GLN_SYSTEM, WarningCode.ADDRESS_MISMATCH}


PNG_ON_PDF = Attachment("image/png", 10_000, "scan", sniffed_type="application/pdf")


class TestAttachments:
    def test_a_declared_type_the_bytes_contradict_is_warned_and_converted_as_the_bytes_type(
        self, types, policy
    ) -> None:
        resolver = _resolver(types, policy)
        # (receiver, the type it travels as): native delivery passes the label on unchanged.
        for receiver, travels_as in ((FHIR_GLN, "image/png"), (XML_GLN, "application/pdf")):
            d = _route(resolver, receiver_gln=receiver, attachments=(PNG_ON_PDF,))
            assert d.decision is Decision.DELIVER
            assert _codes(d) == [WarningCode.ATTACHMENT_TYPE_MISMATCH]
            assert "attachment 1 ('scan', image/png)" in d.warnings[0].message
            (plan,) = d.attachments
            assert (plan.mime_type, plan.declared_type, plan.sniffed_type) == (
                travels_as,
                "image/png",
                "application/pdf",
            )
        native = _route(resolver, receiver_gln=FHIR_GLN, attachments=(PNG_ON_PDF,))
        assert "delivered unchanged, labelled image/png" in native.warnings[0].message

    def test_an_attachment_without_a_declared_type_converts_under_the_type_its_bytes_show(
        self, types, policy
    ) -> None:
        untyped = Attachment("", 5_000, "letter", sniffed_type="application/pdf")
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(untyped,))
        assert d.decision is Decision.DELIVER
        assert "no type declared" in _warning(d, WarningCode.ATTACHMENT_TYPE_MISMATCH)
        assert d.attachments[0].mime_type == "application/pdf"

    def test_bytes_of_a_type_outside_the_six_are_judged_by_their_type(self, types, policy) -> None:
        only_pdf = replace(policy.limits, allowed_mime_types=frozenset({"image/png"}))
        d = _route(
            _resolver(types, policy, limits=only_pdf),
            receiver_gln=XML_GLN,
            attachments=(PNG_ON_PDF,),
        )
        assert d.reason is Reason.MIME_NOT_ALLOWED
        assert "whose bytes are application/pdf" in _trace(d, "limits")[0][1]

    def test_a_link_is_delivered_natively_with_a_warning(self, types, policy) -> None:
        link = Attachment("", 0, "report", content=AttachmentContent.LINK)
        d = _route(_resolver(types, policy), receiver_gln=FHIR_GLN, attachments=(link,))
        assert d.decision is Decision.DELIVER
        assert _codes(d) == [WarningCode.ATTACHMENT_LINK]
        assert "attachment 1 ('report', no declared type)" in d.warnings[0].message
        assert d.attachments[0].content is AttachmentContent.LINK

    def test_a_link_refuses_a_conversion_naming_it_and_never_as_a_mime_type(
        self, types, policy
    ) -> None:
        link = Attachment("", 0, "report", content=AttachmentContent.LINK)
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(PDF, link))
        assert d.reason is Reason.ATTACHMENT_LINK_NOT_CONVERTIBLE
        assert _trace(d, "limits") == [
            (
                "link-not-convertible",
                "attachment 2 ('report', no declared type): a link only, "
                "which a conversion cannot fetch",
            )
        ]

    def test_with_links_set_to_warn_a_conversion_goes_without_them(self, types, policy) -> None:
        lenient = replace(policy.limits, reject_link_attachments=False)
        link = Attachment("text/html", 0, "portal", content=AttachmentContent.LINK)
        d = _route(
            _resolver(types, policy, limits=lenient), receiver_gln=XML_GLN, attachments=(link, PDF)
        )
        assert d.decision is Decision.DELIVER
        assert _codes(d) == [WarningCode.ATTACHMENT_LINK]
        assert "converted without it" in d.warnings[0].message
        assert [(a.index, a.carried_as) for a in d.attachments] == [(2, "XBIN01")]
        assert ("left-out", "attachment 1 ('portal', text/html): a link only") in _trace(
            d, "attachment"
        )

    def test_an_attachment_without_content_warns_natively_and_refuses_a_conversion(
        self, types, policy
    ) -> None:
        empty = Attachment("application/pdf", 0, "empty", content=AttachmentContent.NONE)
        resolver = _resolver(types, policy)
        native = _route(resolver, receiver_gln=FHIR_GLN, attachments=(empty,))
        assert native.decision is Decision.DELIVER
        assert _codes(native) == [WarningCode.ATTACHMENT_WITHOUT_CONTENT]
        converted = _route(resolver, receiver_gln=XML_GLN, attachments=(PDF, empty))
        assert converted.reason is Reason.ATTACHMENT_WITHOUT_CONTENT
        assert "attachment 2 ('empty', application/pdf)" in _trace(converted, "limits")[0][1]

    def test_a_type_not_allowed_names_the_offending_attachment(self, types, policy) -> None:
        odd = Attachment("image/x-foo", 100, "scan")
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=(PDF, odd))
        assert d.reason is Reason.MIME_NOT_ALLOWED
        assert _trace(d, "limits") == [("mime-not-allowed", "attachment 2 ('scan', image/x-foo)")]

    @pytest.mark.parametrize(
        ("attachments", "reason"),
        [
            (
                (Attachment("", 0, content=AttachmentContent.NONE),) * 11,
                Reason.TOO_MANY_ATTACHMENTS,
            ),
            (
                (
                    Attachment("", 0, content=AttachmentContent.LINK),
                    Attachment("", 0, content=AttachmentContent.NONE),
                ),
                Reason.ATTACHMENT_WITHOUT_CONTENT,
            ),
            (
                (Attachment("x/y", 1), Attachment("", 0, content=AttachmentContent.LINK)),
                Reason.ATTACHMENT_LINK_NOT_CONVERTIBLE,
            ),
            (
                (Attachment("x/y", 200 * 1024**2),),
                Reason.MIME_NOT_ALLOWED,
            ),
        ],
    )
    def test_conversion_checks_attachments_in_a_fixed_order(
        self, types, policy, attachments, reason
    ) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, attachments=attachments)
        assert d.reason is reason

    def test_links_and_empty_attachments_do_not_count_towards_the_size(self, types, policy) -> None:
        lenient = replace(policy.limits, reject_link_attachments=False)
        link = Attachment("application/pdf", 200 * 1024**2, content=AttachmentContent.LINK)
        d = _route(
            _resolver(types, policy, limits=lenient), receiver_gln=XML_GLN, attachments=(link,)
        )
        assert d.decision is Decision.DELIVER and d.attachments == ()

    def test_each_attachment_is_planned_and_traced_with_its_facts(self, types, policy) -> None:
        separate = Attachment(
            "application/pdf",
            1234,
            "epicrisis",
            content=AttachmentContent.SEPARATE,
            sniffed_type="application/pdf",
        )
        d = _route(
            _resolver(types, policy),
            "oioxml",
            receiver_gln=FHIR_GLN,
            attachments=(separate, PNG_ON_PDF),
        )
        assert [(a.index, a.title, a.carried_as, a.content) for a in d.attachments] == [
            (1, "epicrisis", "inline", AttachmentContent.SEPARATE),
            (2, "scan", "inline", AttachmentContent.DATA),
        ]
        traced = _trace(d, "attachment")
        assert traced[0] == (
            "separate",
            "attachment 1 ('epicrisis', application/pdf): 1234 bytes, bytes show "
            "application/pdf, travels as application/pdf inline",
        )
        assert len(traced) == 2


class TestCategory:
    def test_a_category_without_a_code_is_warned_on_native_delivery(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=FHIR_GLN, category_coded=False)
        assert d.decision is Decision.DELIVER
        assert _codes(d) == [WarningCode.CATEGORY_MISSING]

    def test_a_conversion_says_the_legacy_subject_will_be_incomplete(self, types, policy) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, category_coded=False)
        assert d.decision is Decision.DELIVER
        assert "legacy subject" in _warning(d, WarningCode.CATEGORY_MISSING)

    def test_a_conversion_is_refused_when_the_policy_says_reject(self, types, policy) -> None:
        strict = replace(policy.limits, reject_missing_category=True)
        resolver = _resolver(types, policy, limits=strict)
        assert (
            _route(resolver, receiver_gln=XML_GLN, category_coded=False).reason
            is Reason.CATEGORY_MISSING
        )
        assert _route(resolver, receiver_gln=FHIR_GLN, category_coded=False).decision is (
            Decision.DELIVER
        )
        to_fhir = _route(resolver, "oioxml", receiver_gln=FHIR_GLN, category_coded=False)
        assert to_fhir.decision is Decision.DELIVER
        assert "legacy subject" not in _warning(to_fhir, WarningCode.CATEGORY_MISSING)

    @pytest.mark.parametrize("coded", [True, None])
    def test_a_coded_or_unknown_category_says_nothing(self, types, policy, coded) -> None:
        d = _route(_resolver(types, policy), receiver_gln=XML_GLN, category_coded=coded)
        assert d.warnings == ()


class TestBinaryAttachments:
    def test_a_lone_xbin01_goes_natively_to_a_receiver_that_takes_xbin01(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            "oioxml",
            business_message="binary-attachment",
            receiver_gln=XML_GLN,
            attachments=(PDF,),
        )
        assert (d.decision, d.message_type, d.conversion) == (Decision.DELIVER, "XBIN01", ())
        assert [a.carried_as for a in d.attachments] == ["XBIN01"]

    def test_a_lone_bin01_goes_natively_to_an_edifact_receiver(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            "edifact",
            business_message="binary-attachment",
            receiver_gln=EDI_GLN,
            attachments=(PDF,),
        )
        assert (d.message_type, d.syntax) == ("BIN01", "edifact")

    def test_to_a_fhir_receiver_it_travels_inside_a_letter_it_advertises(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            "oioxml",
            business_message="binary-attachment",
            receiver_gln=FHIR_GLN,
            attachments=(PDF,),
        )
        assert (d.decision, d.message_type, d.syntax) == (Decision.DELIVER, "FDIS91", "fhir")
        assert [c.step for c in d.conversion] == ["oioxml->fhir"]
        assert [a.carried_as for a in d.attachments] == ["inline"]
        assert "inside the letter FDIS91 (correspondence)" in _trace(d, "binary-letter")[0][1]
        assert "fhir=FDIS91 (inside a correspondence letter)" in _trace(d, "receiver-types")[0][1]

    def test_a_receiver_without_a_binary_type_or_the_letter_cannot_get_it(
        self, types, policy
    ) -> None:
        d = _route(
            _resolver(types, policy),
            "oioxml",
            business_message="binary-attachment",
            receiver_gln=XML_NO_BIN,
            attachments=(PDF,),
        )
        assert d.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE

    def test_the_conversion_limits_apply_to_its_attachment(self, types, policy) -> None:
        d = _route(
            _resolver(types, policy),
            "oioxml",
            business_message="binary-attachment",
            receiver_gln=FHIR_GLN,
            attachments=(Attachment("application/msword", 10, "notes"),),
        )
        assert d.reason is Reason.MIME_NOT_ALLOWED

    def test_it_is_converted_by_the_steps_of_its_letter(self, types, policy) -> None:
        acks_only = tuple(
            replace(s, messages=frozenset({"acknowledgement"})) for s in policy.conversions
        )
        letters = tuple(
            replace(s, messages=frozenset({"correspondence"})) for s in policy.conversions
        )
        request = {
            "business_message": "binary-attachment",
            "receiver_gln": FHIR_GLN,
            "attachments": (PDF,),
        }
        refused = _route(_resolver(types, policy, conversions=acks_only), "oioxml", **request)
        assert refused.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE
        converted = _route(_resolver(types, policy, conversions=letters), "oioxml", **request)
        assert converted.message_type == "FDIS91"


class TestConversionStepsPerMessage:
    def test_a_step_limited_to_some_business_messages_converts_only_those(
        self, types, policy
    ) -> None:
        steps = (ConversionStep("fhir", "oioxml", messages=frozenset({"acknowledgement"})),)
        resolver = _resolver(types, policy, conversions=steps)
        letter = _route(resolver, receiver_gln=XML_GLN)
        assert letter.reason is Reason.UNABLE_TO_RECEIVE_MSG_TYPE
        assert "for correspondence" in _trace(letter, "conversion")[0][1]
        ack = _route(resolver, receiver_gln=XML_GLN, business_message="acknowledgement")
        assert [c.step for c in ack.conversion] == ["fhir->oioxml"]

    def test_the_messages_key_is_read_from_the_policy_file(self, tmp_path) -> None:
        path = tmp_path / "routing.toml"
        path.write_text(
            '[[conversions]]\nfrom="fhir"\nto="oioxml"\n'
            'messages=["acknowledgement", "hospital-notification"]\n'
            '[[conversions]]\nfrom="oioxml"\nto="fhir"\n'
        )
        first, second = load_routing_policy(path).conversions
        assert first.messages == frozenset({"acknowledgement", "hospital-notification"})
        assert second.messages == frozenset() and second.covers("correspondence")

    def test_a_messages_key_that_is_not_a_list_is_refused(self, tmp_path) -> None:
        path = tmp_path / "routing.toml"
        path.write_text('[[conversions]]\nfrom="fhir"\nto="oioxml"\nmessages="correspondence"\n')
        with pytest.raises(ValueError, match="messages of step fhir->oioxml"):
            load_routing_policy(path)

    def test_the_shipped_steps_convert_every_business_message(self, policy) -> None:
        assert all(step.messages == frozenset() for step in policy.conversions)


class TestBadInput:
    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"business_message": "telegram"}, "unknown business message"),
            ({"sender_syntax": "hl7v2"}, "unknown sender syntax"),
            ({"receiver_gln": None}, "receiver"),
        ],
    )
    def test_an_unusable_request_is_an_input_error(self, types, policy, changes, match) -> None:
        base = {
            "business_message": "correspondence",
            "sender_syntax": "fhir",
            "receiver_gln": FHIR_GLN,
        }
        with pytest.raises(RoutingInputError, match=match):
            _resolver(types, policy).resolve(RouteRequest(**(base | changes)), TODAY)


class TestPolicyFile:
    def test_the_shipped_policy_has_the_fhir_oioxml_window(self, policy) -> None:
        steps = {s.name: s for s in policy.conversions}
        assert steps["fhir->oioxml"].valid_from == date(2025, 5, 1)
        assert steps["fhir->oioxml"].valid_to == date(2026, 12, 31)
        assert steps["oioxml->edifact"].requires_agreement
        assert policy.agreements == {}
        assert policy.limits == Limits()

    def test_an_agreement_naming_an_unknown_step_is_refused(self, tmp_path) -> None:
        path = tmp_path / "routing.toml"
        path.write_text('[[conversions]]\nfrom="fhir"\nto="oioxml"\n[agreements]\n"1" = ["x->y"]\n')
        with pytest.raises(ValueError, match="unknown steps"):
            load_routing_policy(path)

    def test_a_limit_mode_other_than_warn_or_reject_is_refused(self, tmp_path) -> None:
        path = tmp_path / "routing.toml"
        path.write_text('[limits]\non_long_text = "ignore"\n')
        with pytest.raises(ValueError, match="on_long_text"):
            load_routing_policy(path)


# -- properties --------------------------------------------------------------------------------

receivers = st.sampled_from(
    [FHIR_GLN, XML_GLN, EDI_GLN, BOTH_GLN, XML_NO_BIN, INACTIVE, NO_VANS, CLOSED_UNITS]
)
mimes = st.sampled_from(["application/pdf", "image/png", "application/zip", "text/plain"])
requests = st.builds(
    RouteRequest,
    business_message=st.sampled_from(
        ["correspondence", "acknowledgement", "hospital-notification", "binary-attachment"]
    ),
    sender_syntax=st.sampled_from(["fhir", "oioxml", "edifact"]),
    receiver_gln=receivers,
    text_length=st.none() | st.integers(0, 60_000),
    topic=st.none() | st.text(max_size=90),
    attachments=st.lists(
        st.builds(
            Attachment,
            mimes | st.just(""),
            st.integers(0, 30 * 1024**2),
            st.none() | st.sampled_from(["scan", "epikrise"]),
            st.sampled_from(AttachmentContent),
            st.none() | st.sampled_from(["application/pdf", "image/png"]),
        ),
        max_size=12,
    ).map(tuple),
    category_coded=st.none() | st.booleans(),
    at=st.none() | st.dates(date(2025, 1, 1), date(2027, 12, 31)),
)
agreements = st.sampled_from(
    [
        {},
        {TRUECOMMERCE: frozenset({"oioxml->edifact", "edifact->oioxml"})},
        {KMD: frozenset({"edifact->oioxml"})},
    ]
)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(requests, agreements)
    def test_decisions_are_deterministic(self, types, policy, route_request, agreed) -> None:
        resolver = _resolver(types, policy, agreements=agreed)
        assert resolver.resolve(route_request, TODAY) == resolver.resolve(route_request, TODAY)

    @settings(max_examples=300, deadline=None)
    @given(requests, agreements)
    def test_deliver_names_only_advertised_types_reached_by_an_allowed_path(
        self, types, policy, route_request, agreed
    ) -> None:
        resolver = _resolver(types, policy, agreements=agreed)
        d = resolver.resolve(route_request, TODAY)
        if d.decision is not Decision.DELIVER:
            assert d.reason is not None and d.message_type is None
            return
        advertised = resolver.index.types_by_gln[d.address.gln]
        assert d.message_type in advertised
        assert types.get(d.message_type).syntax == d.syntax
        if d.syntax == route_request.sender_syntax:
            assert d.conversion == ()
        else:
            steps = [c.step for c in d.conversion]
            assert steps[0].startswith(route_request.sender_syntax + "->")
            assert steps[-1].endswith("->" + d.syntax)
            day = route_request.at or TODAY
            allowed = {
                s.name
                for s in resolver.policy.conversions
                if s.open_on(day)
                and (
                    not s.requires_agreement
                    or s.name
                    in agreed.get(
                        resolver.index.registry.glns[d.address.gln].vans or "", frozenset()
                    )
                )
            }
            assert set(steps) <= allowed
        for plan in d.attachments:
            assert plan.carried_as == "inline" or plan.carried_as in advertised
        indexes = [plan.index for plan in d.attachments]
        assert indexes == sorted(set(indexes))
        assert set(indexes) <= set(range(1, len(route_request.attachments) + 1))
        if d.conversion:
            assert AttachmentContent.NONE not in {plan.content for plan in d.attachments}
            assert AttachmentContent.LINK not in {plan.content for plan in d.attachments}


known_glns = [FHIR_GLN, XML_GLN, EDI_GLN, INACTIVE, CLOSED_UNITS, UNKNOWN_GLN]
gln_identifiers = st.builds(
    _org,
    st.sampled_from([GS1, "http://www.gs1.org/gln", "urn:oid:1.3.88", "gs1.org/gln"]),
    st.sampled_from(known_glns),
)
sor_identifiers = st.builds(
    _org,
    st.sampled_from([SOR, "urn:oid1.2.208.176.1.1"]),
    st.sampled_from(["100", "102", "104", "110", "200", "800", "901", "424242"]),
)
other_identifiers = st.sampled_from(
    [
        _org("urn:oid:1.2.208.176.1.2", "2509479989"),
        _org(GS1, "12345"),
        ReceiverIdentifier(IdentifierSource.ENDPOINT, None, "https://example.org/"),
    ]
)
endpoints = st.sampled_from(["101", "200", "300", "901", "424242"]).map(_endpoint)
identifier_sets = st.lists(
    st.one_of(gln_identifiers, sor_identifiers, other_identifiers, endpoints),
    min_size=1,
    max_size=5,
).map(tuple)


class TestIdentificationProperties:
    @settings(max_examples=300, deadline=None)
    @given(identifier_sets, st.booleans())
    def test_the_first_usable_gln_always_addresses_the_message(
        self, types, policy, identifiers, strict
    ) -> None:
        resolver = _resolver(types, policy, reject_address_mismatch=strict)
        d = _route(resolver, receiver_identifiers=identifiers)
        assert d == _route(resolver, receiver_identifiers=identifiers)
        assert len(_trace(d, "identifier")) == len(identifiers)
        glns = [
            i.value
            for i in identifiers
            if i.system in (GS1, "http://www.gs1.org/gln", "urn:oid:1.3.88", "gs1.org/gln")
            and len(i.value) == 13
        ]
        if glns:
            assert d.address.gln == glns[0]
        if strict and WarningCode.ADDRESS_MISMATCH in _codes(d):
            assert d.decision is Decision.REJECT
            assert d.reason in (Reason.ADDRESS_MISMATCH, Reason.UNKNOWN_RECEIVER)

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(known_glns), st.sampled_from(["100", "102", "200", "424242"]))
    def test_the_request_fields_read_as_the_general_reader_reads_them(
        self, types, policy, gln_value, sor_id
    ) -> None:
        resolver = _resolver(types, policy)
        given_as_fields = _route(resolver, receiver_gln=gln_value, receiver_sor_id=sor_id)
        given_as_identifiers = _route(
            resolver,
            receiver_identifiers=(
                ReceiverIdentifier(IdentifierSource.REQUEST, GS1, gln_value),
                ReceiverIdentifier(IdentifierSource.REQUEST, SOR, sor_id),
            ),
        )
        assert given_as_fields == given_as_identifiers
