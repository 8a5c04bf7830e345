from __future__ import annotations

from datetime import date

from soredi_sync.domain.model import Gln, effective_gln
from tests.support.factories import gln, registry, unit


class TestEffectiveGln:
    def test_a_unit_with_its_own_gln_uses_it(self) -> None:
        units = {"1": unit("1", own_gln=gln(1))}
        result = effective_gln(units, "1")
        assert result.gln == gln(1)
        assert result.inherited_from is None
        assert result.path == ("1",)

    def test_an_inheriting_unit_takes_the_nearest_owner_up_the_tree(self) -> None:
        units = {
            u.sor_id: u
            for u in [
                unit("1", own_gln=gln(1)),
                unit("2", "1", owner="1", own_gln=gln(2)),
                unit("3", "2", owner="1"),
                unit("4", "3", owner="1"),
            ]
        }
        result = effective_gln(units, "4")
        assert result.gln == gln(2)
        assert result.path == ("4", "3", "2")
        assert result.inherited_from == "2"

    def test_a_unit_that_neither_owns_nor_inherits_has_no_gln(self) -> None:
        units = {u.sor_id: u for u in [unit("1", own_gln=gln(1)), unit("2", "1", inherit=False)]}
        assert effective_gln(units, "2").gln is None

    def test_inheriting_from_a_parent_without_a_gln_gives_none(self) -> None:
        units = {u.sor_id: u for u in [unit("1"), unit("2", "1", inherit=False), unit("3", "2")]}
        result = effective_gln(units, "3")
        assert result.gln is None
        assert result.path == ("3", "2")

    def test_a_missing_parent_or_a_cycle_ends_the_walk_without_a_gln(self) -> None:
        orphan = {"2": unit("2", "1")}
        assert effective_gln(orphan, "2").gln is None
        cyclic = {"a": unit("a", "b"), "b": unit("b", "a")}
        assert effective_gln(cyclic, "a").gln is None


class TestRegistry:
    def test_units_using_a_gln_include_its_owner_and_inheritors_only(self) -> None:
        reg = registry(
            [
                unit("1", own_gln=gln(1)),
                unit("2", "1"),
                unit("3", "1", inherit=False),
                unit("4", "1", own_gln=gln(4)),
            ],
            [Gln(gln(1)), Gln(gln(4))],
        )
        assert reg.units_using(gln(1)) == ["1", "2"]

    def test_capabilities_are_counted_across_glns(self) -> None:
        reg = registry(
            [], [Gln(gln(1)), Gln(gln(2))], {gln(1): ["FDIS91", "FCTL"], gln(2): ["DIS91"]}
        )
        assert reg.capability_count == 3
        assert reg.message_types(gln(1)) == ["FCTL", "FDIS91"]


class TestUnitValidity:
    def test_a_unit_is_open_between_its_from_and_to_dates_inclusive(self) -> None:
        u = unit("1", from_date=date(2020, 1, 1), to_date=date(2026, 6, 30))
        assert not u.is_open_on(date(2019, 12, 31))
        assert u.is_open_on(date(2020, 1, 1))
        assert u.is_open_on(date(2026, 6, 30))
        assert not u.is_open_on(date(2026, 7, 1))


class TestCapabilityVersions:
    def test_one_type_listed_in_two_versions_keeps_both(self) -> None:
        from soredi_sync.domain.model import Capability, Registry

        reg = Registry.build(
            [],
            [Gln(gln(1))],
            [
                Capability(gln(1), "BIN01", "B0131X"),
                Capability(gln(1), "BIN01", "B0130X"),
                Capability(gln(1), "BIN01", "B0131X"),
            ],
        )
        assert reg.capabilities[gln(1)]["BIN01"].version_code == "B0130X,B0131X"
        assert reg.capability_count == 1
