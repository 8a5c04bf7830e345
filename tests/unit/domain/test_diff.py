from __future__ import annotations

from dataclasses import replace

from soredi_sync.domain.diff import diff, implausible_removals
from soredi_sync.domain.model import Capability, Gln
from tests.support.factories import gln, registry, unit

KMD = "41000035001"
MULTIMED = "81000035007"


def _base():
    return registry(
        [unit("1", own_gln=gln(1)), unit("2", "1"), unit("3", "1", own_gln=gln(3))],
        [Gln(gln(1), vans=KMD), Gln(gln(3), vans=KMD)],
        {gln(1): ["DIS91", "XBIN01"], gln(3): ["XDIS91"]},
    )


class TestDiff:
    def test_identical_registries_give_an_empty_change_set(self) -> None:
        assert diff(_base(), _base()).is_empty

    def test_without_a_current_registry_everything_is_added(self) -> None:
        changes = diff(None, _base())
        assert len(changes.units.added) == 3
        assert len(changes.glns.added) == 2
        assert len(changes.capabilities.added) == 3
        assert not changes.units.removed and not changes.glns.changed

    def test_units_added_removed_and_renamed_are_told_apart(self) -> None:
        before = _base()
        after = registry(
            [
                unit("1", own_gln=gln(1), name="Renamed"),
                unit("3", "1", own_gln=gln(3)),
                unit("4", "3"),
            ],
            list(before.glns.values()),
            {gln(1): ["DIS91", "XBIN01"], gln(3): ["XDIS91"]},
        )
        changes = diff(before, after)
        assert [u.sor_id for u in changes.units.added] == ["4"]
        assert [u.sor_id for u in changes.units.removed] == ["2"]
        assert [(c.after.sor_id, c.fields) for c in changes.units.changed] == [("1", ("name",))]
        assert changes.units.changed[0].field_changes() == {"name": ("Unit 1", "Renamed")}

    def test_a_vans_move_and_deactivation_show_as_gln_field_changes(self) -> None:
        before = _base()
        after = registry(
            list(before.units.values()),
            [Gln(gln(1), vans=MULTIMED), Gln(gln(3), vans=KMD, active=False)],
            {gln(1): ["DIS91", "XBIN01"], gln(3): ["XDIS91"]},
        )
        changed = {c.after.gln: c.fields for c in diff(before, after).glns.changed}
        assert changed == {gln(1): ("vans",), gln(3): ("active",)}

    def test_capabilities_added_and_removed_are_reported_per_gln(self) -> None:
        before = _base()
        after = registry(
            list(before.units.values()),
            list(before.glns.values()),
            {gln(1): ["FDIS91", "FCTL", "XBIN01"], gln(3): ["XDIS91"]},
        )
        per_gln = diff(before, after).capabilities_by_gln()
        assert per_gln == {
            gln(1): {"added": ["FCTL", "FDIS91"], "removed": ["DIS91"], "changed": []}
        }

    def test_a_new_version_code_for_the_same_type_is_a_change_not_add_and_remove(self) -> None:
        before = registry([], [Gln(gln(1))], {})
        before = replace(
            before, capabilities={gln(1): {"XDIS91": Capability(gln(1), "XDIS91", "XD9133L")}}
        )
        after = replace(
            before, capabilities={gln(1): {"XDIS91": Capability(gln(1), "XDIS91", "XD9134L")}}
        )
        changes = diff(before, after)
        assert not changes.capabilities.added and not changes.capabilities.removed
        assert changes.capabilities.changed[0].fields == ("version_code",)

    def test_the_change_set_is_sorted_by_natural_key(self) -> None:
        changes = diff(None, _base())
        assert [u.sor_id for u in changes.units.added] == ["1", "2", "3"]


class TestMassRemovalGuard:
    def _big(self, n_glns: int):
        glns = [Gln(gln(i)) for i in range(n_glns)]
        return registry([], glns, {g.gln: ["XDIS91", "XBIN01"] for g in glns})

    def test_normal_churn_passes(self) -> None:
        before = self._big(100)
        after = registry(
            [],
            list(before.glns.values())[:97],
            {g: ["XDIS91", "XBIN01"] for g in list(before.glns)[:97]},
        )
        assert implausible_removals(before, diff(before, after), 0.05, 0.10) == []

    def test_removing_more_glns_than_the_limit_is_implausible(self) -> None:
        before = self._big(100)
        kept = list(before.glns)[:50]
        after = registry(
            [], [before.glns[g] for g in kept], {g: ["XDIS91", "XBIN01"] for g in kept}
        )
        reasons = implausible_removals(before, diff(before, after), 0.05, 0.10)
        assert len(reasons) == 2
        assert "50 of 100 GLNs" in reasons[0]

    def test_removing_message_types_beyond_the_limit_is_implausible_even_if_glns_stay(self) -> None:
        before = self._big(100)
        after = registry([], list(before.glns.values()), {g: ["XDIS91"] for g in before.glns})
        reasons = implausible_removals(before, diff(before, after), 0.05, 0.10)
        assert len(reasons) == 1 and "message types" in reasons[0]

    def test_the_first_pull_is_never_a_mass_removal(self) -> None:
        assert implausible_removals(None, diff(None, self._big(10)), 0.0, 0.0) == []
