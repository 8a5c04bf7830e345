"""Audit rules, each on hand-built data, plus scope, new/resolved and adoption."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.audit import (
    RULES,
    AdoptionCounts,
    AdoptionDimension,
    AuditContext,
    OwnerKind,
    adoption,
    adoption_by_owner,
    audit,
    compare,
    in_scope,
)
from soredi_sync.domain.model import Gln
from soredi_sync.reference_data import ReferenceData
from tests.support.factories import gln, registry, unit

ON = date(2026, 11, 26)
KMD = "41000035001"
REGION_TYPE = "550901000005101"
MUNICIPALITY_TYPE = "550921000005109"
CERTIFIED = "1571000045009"


@pytest.fixture(scope="module")
def context() -> AuditContext:
    shipped = ReferenceData.load(config_dir()).audit_context
    return AuditContext(
        message_types=shipped.message_types,
        owner_kinds=shipped.owner_kinds,
        certified_system_types=frozenset({CERTIFIED}),
        region_names=shipped.region_names,
    )


def _gln(n: int, **kwargs) -> Gln:
    kwargs.setdefault("vans", KMD)
    kwargs.setdefault("system_type", CERTIFIED)
    kwargs.setdefault("region_code", "1081")
    return Gln(gln(n), **kwargs)


def _codes(findings, code: str) -> list[str | None]:
    return sorted((f.gln or f.sor_id) for f in findings if f.code == code)  # type: ignore[type-var]


def _one_gln(context, types: list[str], **gln_kwargs):
    reg = registry(
        [unit("1", own_gln=gln(1), type_code=MUNICIPALITY_TYPE, name="Aalborg Kommune")],
        [_gln(1, **gln_kwargs)],
        {gln(1): types},
    )
    return {f.code for f in audit(reg, context, ON)}


class TestRules:
    def test_every_rule_has_a_stable_unique_code(self) -> None:
        codes = [rule.code for rule in RULES]
        assert len(codes) == len(set(codes)) == 10

    def test_a_clean_fhir_receiver_has_no_findings(self, context) -> None:
        assert _one_gln(context, ["FDIS91", "FCTL", "XDIS01"]) == set()

    def test_fdis91_next_to_a_leftover_dis91_or_xdis91_is_found(self, context) -> None:
        assert "FDIS91_WITH_LEGACY" in _one_gln(context, ["FDIS91", "FCTL", "XDIS91", "XBIN01"])
        assert "FDIS91_WITH_LEGACY" in _one_gln(context, ["FDIS91", "FCTL", "DIS91", "BIN01"])

    def test_a_fhir_type_without_fctl_is_found(self, context) -> None:
        assert "FHIR_WITHOUT_FCTL" in _one_gln(context, ["FDIS91"])
        assert "FHIR_WITHOUT_FCTL" in _one_gln(context, ["FDIS20"])
        assert "FHIR_WITHOUT_FCTL" not in _one_gln(context, ["FDIS91", "FCTL"])

    def test_a_legacy_only_receiver_is_reported(self, context) -> None:
        assert _one_gln(context, ["XDIS91", "XBIN01"]) == {"LEGACY_ONLY"}

    def test_a_legacy_receiver_without_a_binary_type_is_found(self, context) -> None:
        assert _one_gln(context, ["XDIS91"]) == {"LEGACY_ONLY", "LEGACY_WITHOUT_BIN"}
        assert "LEGACY_WITHOUT_BIN" not in _one_gln(context, ["DIS91", "BIN01"])

    def test_types_on_an_inactive_gln_are_found(self, context) -> None:
        found = _one_gln(context, ["FDIS91", "FCTL"], active=False)
        assert found == {"TYPES_ON_INACTIVE_GLN"}
        assert _one_gln(context, [], active=False) == set()

    def test_a_bad_check_digit_is_found(self, context) -> None:
        bad = gln(1)[:-1] + str((int(gln(1)[-1]) + 1) % 10)
        reg = registry([unit("1", own_gln=bad)], [Gln(bad, vans=KMD)], {})
        assert _codes(audit(reg, context, ON), "BAD_CHECK_DIGIT") == [bad]

    def test_a_gln_without_vans_is_found(self, context) -> None:
        assert "GLN_WITHOUT_VANS" in _one_gln(context, ["FDIS91", "FCTL"], vans=None)

    def test_fdis91_on_a_system_not_certified_is_found(self, context) -> None:
        assert _one_gln(context, ["FDIS91", "FCTL"], system_type="999") == {
            "FDIS91_UNCERTIFIED_SYSTEM"
        }
        assert _one_gln(context, ["FDIS91", "FCTL"], system_type=None) == {
            "FDIS91_UNCERTIFIED_SYSTEM"
        }

    def test_a_gln_whose_units_are_all_closed_is_found(self, context) -> None:
        reg = registry(
            [
                unit("1", own_gln=gln(1), to_date=date(2026, 1, 1)),
                unit("2", "1", to_date=date(2026, 2, 1)),
                unit("3", own_gln=gln(3), to_date=date(2026, 1, 1)),
                unit("4", "3"),  # still open: GLN 3 is in use
            ],
            [_gln(1), _gln(3)],
            {gln(1): ["FDIS91", "FCTL"], gln(3): ["FDIS91", "FCTL"]},
        )
        assert _codes(audit(reg, context, ON), "ALL_UNITS_CLOSED") == [gln(1)]

    def test_an_open_unit_with_no_gln_on_its_path_is_found(self, context) -> None:
        reg = registry(
            [
                unit("1", own_gln=gln(1)),
                unit("2", "1", inherit=False),  # a GLN up the path: addressable through 1
                unit("9"),
                unit("10", "9"),
                unit("11", "9", to_date=date(2025, 1, 1)),  # closed: not reported
            ],
            [_gln(1)],
            {gln(1): ["FDIS91", "FCTL"]},
        )
        assert _codes(audit(reg, context, ON), "UNIT_WITHOUT_GLN") == ["10", "9"]


class TestOwners:
    def _two_owners(self):
        return registry(
            [
                unit("100", own_gln=gln(1), type_code=REGION_TYPE, name="Region Nordjylland"),
                unit("101", "100", own_gln=gln(2), owner="100"),
                unit("200", own_gln=gln(3), type_code=MUNICIPALITY_TYPE, name="Aalborg Kommune"),
            ],
            [_gln(1), _gln(2, vans=None), _gln(3, region_code="1082")],
            {gln(1): ["FDIS91"], gln(2): ["XDIS91", "XBIN01"], gln(3): ["FDIS91"]},
        )

    def test_each_finding_names_the_institution_owner_and_its_kind(self, context) -> None:
        findings = audit(self._two_owners(), context, ON)
        by_gln = {f.gln: f.owner for f in findings if f.code == "FHIR_WITHOUT_FCTL"}
        assert by_gln[gln(1)].sor_id == "100" and by_gln[gln(1)].kind is OwnerKind.REGION
        assert by_gln[gln(3)].name == "Aalborg Kommune"
        assert by_gln[gln(3)].kind is OwnerKind.MUNICIPALITY
        sub_unit = next(f for f in findings if f.gln == gln(2))
        assert sub_unit.owner.sor_id == "100" and sub_unit.sor_id == "101"

    def test_scope_by_owner_id_name_region_and_vans(self, context) -> None:
        findings = audit(self._two_owners(), context, ON)
        assert {f.owner.sor_id for f in in_scope(findings, owners=["200"])} == {"200"}
        assert {f.owner.sor_id for f in in_scope(findings, owner_name="nordjyl")} == {"100"}
        assert {f.gln for f in in_scope(findings, region_code="1082")} == {gln(3)}
        assert {f.gln for f in in_scope(findings, codes=["GLN_WITHOUT_VANS"])} == {gln(2)}
        assert in_scope(findings, owners=["999"]) == []


class TestNewAndResolved:
    def test_findings_are_compared_by_code_gln_and_unit(self, context) -> None:
        before = audit(
            registry(
                [unit("1", own_gln=gln(1))], [_gln(1)], {gln(1): ["FDIS91", "FCTL", "XDIS91"]}
            ),
            context,
            ON,
        )
        after = audit(
            registry(
                [unit("1", own_gln=gln(1))], [_gln(1, vans=None)], {gln(1): ["FDIS91", "FCTL"]}
            ),
            context,
            ON,
        )
        changes = compare(before, after)
        assert [f.code for f in changes.new] == ["GLN_WITHOUT_VANS"]
        assert [f.code for f in changes.resolved] == ["FDIS91_WITH_LEGACY"]


class TestAdoption:
    def test_active_receivers_are_counted_fhir_only_legacy_only_or_both(self, context) -> None:
        reg = registry(
            [unit(str(i), own_gln=gln(i)) for i in range(1, 6)],
            [_gln(1), _gln(2), _gln(3), _gln(4, active=False), _gln(5, vans=None)],
            {
                gln(1): ["FDIS91", "FCTL"],
                gln(2): ["XDIS91"],
                gln(3): ["FDIS91", "DIS91"],
                gln(4): ["FDIS91"],  # inactive: not counted
                gln(5): ["XDIS01"],  # no correspondence type: not counted
            },
        )
        assert adoption(reg, context, ON) == {"all": AdoptionCounts(1, 1, 1)}
        by_vans = adoption(reg, context, ON, AdoptionDimension.VANS)
        assert by_vans == {KMD: AdoptionCounts(1, 1, 1)}
        by_region = adoption(reg, context, ON, AdoptionDimension.REGION)
        assert by_region == {"Region Nordjylland": AdoptionCounts(1, 1, 1)}
        assert by_region["Region Nordjylland"].accepts_fdis91 == 2


class TestAdoptionByOwner:
    def test_each_owner_gets_its_glns_and_the_sums_equal_counting_a_set_of_owners(
        self, context
    ) -> None:
        reg = registry(
            [
                unit("1", type_code=REGION_TYPE),
                unit("11", "1", own_gln=gln(1)),
                unit("2", type_code=MUNICIPALITY_TYPE),
                unit("21", "2", own_gln=gln(2)),
                unit("22", "2"),
            ],
            [
                _gln(1),
                _gln(2, vans=None),
                Gln(gln(3), vans=KMD, region_code="1081", owner_sor_id="22"),  # no carrier
                _gln(4),  # nobody's: left out
            ],
            {
                gln(1): ["FDIS91", "DIS91"],
                gln(2): ["XDIS91"],
                gln(3): ["FDIS91"],
                gln(4): ["FDIS91"],
            },
        )
        by_owner = adoption_by_owner(reg, context, ON)
        assert set(by_owner) == {"1", "2"}
        assert by_owner["1"]["all"] == {"all": AdoptionCounts(0, 0, 1)}
        assert by_owner["2"]["all"] == {"all": AdoptionCounts(1, 1, 0)}
        assert by_owner["2"]["vans"] == {
            "(none)": AdoptionCounts(0, 1, 0),
            KMD: AdoptionCounts(1, 0, 0),
        }
        for by in (None, *AdoptionDimension):
            key = by.value if by else "all"
            for owners in ({"1"}, {"2"}, {"1", "2"}):
                kept = {
                    g: r
                    for g, r in reg.glns.items()
                    if g != gln(4) and (owners == {"1", "2"} or (g == gln(1)) == (owners == {"1"}))
                }
                expected = adoption(dataclasses.replace(reg, glns=kept), context, ON, by)
                summed: dict[str, AdoptionCounts] = {}
                for owner in owners:
                    for group, c in by_owner[owner][key].items():
                        was = summed.get(group, AdoptionCounts())
                        summed[group] = AdoptionCounts(
                            was.fhir_only + c.fhir_only,
                            was.legacy_only + c.legacy_only,
                            was.both + c.both,
                        )
                assert dict(sorted(summed.items())) == expected, (by, owners)
