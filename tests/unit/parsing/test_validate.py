from __future__ import annotations

import pytest

from soredi_sync.domain.model import Capability, Gln, GlnMode, Unit, UnitKind
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.problems import Problems
from soredi_sync.parsing.validate import (
    check_capabilities,
    check_gln_owners,
    check_glns,
    check_units,
    merge_glns,
)

IE, HI, OU = UnitKind.INSTITUTION_OWNER, UnitKind.HEALTH_INSTITUTION, UnitKind.ORGANISATIONAL_UNIT


def unit(
    sor_id: str,
    parent: str | None = None,
    kind: UnitKind = OU,
    owner: str = "1",
    mode: GlnMode = GlnMode.INHERITED,
    gln: str | None = None,
) -> Unit:
    return Unit(sor_id, f"unit {sor_id}", kind, parent, owner, None, mode, gln)


def found(check: object, *args: object) -> list[str]:
    problems = Problems()
    check(*args, problems)  # type: ignore[operator]
    return list(problems)


class TestCheckUnits:
    def test_a_sound_tree_has_no_problems(self) -> None:
        units = [unit("1", kind=IE), unit("2", "1", HI), unit("3", "2"), unit("4", "3")]
        assert found(check_units, units) == []

    def test_no_units_is_a_problem(self) -> None:
        assert found(check_units, []) == ["Sor.xml has no units"]

    def test_parent_that_does_not_exist_is_named(self) -> None:
        problems = found(check_units, [unit("1", kind=IE), unit("3", "2")])
        assert problems == ["unit 3 names parent 2, which is unknown"]

    def test_owner_must_be_an_institution_owner(self) -> None:
        problems = found(check_units, [unit("1", kind=IE), unit("2", "1", HI, owner="2")])
        assert problems == ["unit 2 names owner 2, which is not a known institution owner"]

    def test_a_cycle_is_found_once(self) -> None:
        units = [unit("1", kind=IE), unit("2", "3"), unit("3", "4"), unit("4", "2")]
        problems = found(check_units, units)
        assert problems == ["units 2 -> 3 -> 4 -> 2 form a cycle"]

    def test_non_owner_without_parent_is_a_problem(self) -> None:
        assert found(check_units, [unit("1", kind=IE), unit("2", None, HI)]) == [
            "unit 2 (health_institution) has no parent"
        ]


class TestGlnChecks:
    def test_one_gln_two_owners(self) -> None:
        units = [
            unit("1", kind=IE, mode=GlnMode.OWN, gln="5790000121441"),
            unit("2", "1", HI, mode=GlnMode.OWN, gln="5790000121441"),
        ]
        assert found(check_gln_owners, units, []) == ["GLN 5790000121441 is owned by 2 units: 1, 2"]

    def test_gln_records_count_as_ownership_too(self) -> None:
        units = [unit("1", kind=IE, mode=GlnMode.OWN, gln="5790000121441")]
        glns = [Gln("5790000121441", owner_sor_id="7")]
        assert found(check_gln_owners, units, glns) == [
            "GLN 5790000121441 is owned by 2 units: 1, 7"
        ]

    @pytest.mark.parametrize("code", ["579000012144", "57900001214411", "579000012144X", ""])
    def test_gln_that_is_not_13_digits(self, code: str) -> None:
        assert found(check_glns, [Gln(code)]) == [f"GLN {code!r} is not 13 digits"]

    def test_a_wrong_check_digit_is_fine_here(self) -> None:
        assert found(check_glns, [Gln("5790000121442")]) == []

    def test_capabilities_of_unknown_glns_are_counted_per_gln(self) -> None:
        caps = [Capability("5790000121441", t) for t in ("FDIS91", "FCTL", "XDIS91")]
        caps.append(Capability("57900", "FDIS91"))
        problems = found(check_capabilities, caps, {"5790000000000"})
        assert problems == [
            "GLN '57900' has 1 message type(s) in LocationsCodeEDITypeMap.csv but is in "
            "neither Sor.xml nor LocationsCodes.csv, and is not 13 digits",
            "GLN '5790000121441' has 3 message type(s) in LocationsCodeEDITypeMap.csv but is "
            "in neither Sor.xml nor LocationsCodes.csv",
        ]

    def test_merge_keeps_the_xml_record_and_adds_csv_only_ones(self) -> None:
        xml = [Gln("5790000121441", vans="41000035001", owner_sor_id="1")]
        csv = [Gln("5790000121441", vans="81000035007"), Gln("5790000120314", active=False)]
        assert sorted(merge_glns(xml, csv), key=lambda g: g.gln) == [csv[1], xml[0]]


class TestProblems:
    def test_keeps_at_most_the_limit_and_counts_the_rest(self) -> None:
        problems = Problems(limit=3)
        for n in range(10):
            problems.add(f"problem {n}")
        assert len(problems) == 10
        assert problems.as_list() == [
            "problem 0",
            "problem 1",
            "problem 2",
            "... and 7 more problems not listed",
        ]

    def test_raises_one_error_with_all_kept_problems(self) -> None:
        problems = Problems()
        problems.raise_if_any("nothing yet")
        problems.add("GLN '1' is not 13 digits")
        with pytest.raises(InvalidSourceData, match=r"pull \(1 problem\): GLN '1'"):
            problems.raise_if_any("pull")
