"""The routing resolver, rule by rule (DOMAIN.md §3.1), on hand-built registries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soredi_sync.config import config_dir, load_routing_policy
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln
from soredi_sync.domain.routing import (
    Attachment,
    Decision,
    Limits,
    Reason,
    Resolver,
    RouteRequest,
    RoutingIndex,
    RoutingInputError,
    RoutingPolicy,
    SnapshotRef,
)
from tests.factories import gln, registry, unit

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


@pytest.fixture(scope="module")
def types() -> MessageTypeRegistry:
    with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
        return MessageTypeRegistry.from_tsv_lines(fh)


@pytest.fixture(scope="module")
def policy() -> RoutingPolicy:
    return load_routing_policy(config_dir() / "routing.toml")


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
        assert [t.rule for t in d.trace][:3] == ["receiver", "receiver-types", "native"]

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
        assert any("subject" in w for w in warned.warnings)
        strict = replace(policy.limits, reject_long_subject=True)
        assert (
            _route(_resolver(types, policy, limits=strict), **request).reason
            is Reason.SUBJECT_TOO_LONG
        )

    def test_a_long_text_warns_or_rejects_by_setting(self, types, policy) -> None:
        warned = _route(_resolver(types, policy), receiver_gln=XML_GLN, text_length=31_151)
        assert any("31150" in w for w in warned.warnings)
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
        assert any("addressed through 100" in w for w in d.warnings)

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
        assert any("resolves to GLN" in w for w in d.warnings)

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
        assert converted.message_types == ("XCTL02", "XCTL03")
        assert [c.step for c in converted.conversion] == ["fhir->oioxml"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"business_message": "telegram"}, "unknown business message"),
            ({"business_message": "binary-attachment"}, "unknown business message"),
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
        ["correspondence", "acknowledgement", "hospital-notification"]
    ),
    sender_syntax=st.sampled_from(["fhir", "oioxml", "edifact"]),
    receiver_gln=receivers,
    text_length=st.none() | st.integers(0, 60_000),
    topic=st.none() | st.text(max_size=90),
    attachments=st.lists(
        st.builds(Attachment, mimes, st.integers(0, 30 * 1024**2)), max_size=12
    ).map(tuple),
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
