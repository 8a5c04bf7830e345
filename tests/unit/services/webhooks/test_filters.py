"""Filters and owners with plain objects: no database, no network."""

from __future__ import annotations

from typing import Any

import pytest

from soredi_sync.ports.records import ChangeRecord, OwnerMap
from soredi_sync.services.webhooks import InvalidWebhook, OwnerResolver, WebhookFilter

GLN = "5790000000005"
OTHER_GLN = "5790000000012"


def change(entity: str, key: str, kind: str = "added", **details: Any) -> ChangeRecord:
    gln = key.partition(":")[0] if entity != "unit" else details.pop("gln", None)
    return ChangeRecord(1, 2, entity, key, gln, kind, details)


def no_owners(_change: ChangeRecord) -> set[str]:
    return set()


class TestWebhookFilter:
    def test_an_empty_filter_matches_every_change(self) -> None:
        assert WebhookFilter().matches(change("unit", "1"), no_owners)

    def test_fields_are_anded_and_values_ored(self) -> None:
        wanted = WebhookFilter.build(message_types=["FDIS91", "FCTL"], kinds=["added"])
        assert wanted.matches(change("capability", f"{GLN}:FCTL"), no_owners)
        assert wanted.matches(change("capability", f"{GLN}:FDIS91"), no_owners)
        assert not wanted.matches(change("capability", f"{GLN}:FDIS91", "removed"), no_owners)
        assert not wanted.matches(change("capability", f"{GLN}:XDIS91"), no_owners)

    def test_a_message_type_filter_matches_capability_changes_only(self) -> None:
        wanted = WebhookFilter.build(message_types=["FDIS91"])
        assert not wanted.matches(change("gln", GLN), no_owners)

    def test_owners_are_asked_only_when_the_filter_names_owners(self) -> None:
        def fail(_change: ChangeRecord) -> set[str]:
            raise AssertionError("owners asked")

        assert WebhookFilter.build(glns=[GLN]).matches(change("gln", GLN), fail)

    def test_values_are_normalised_and_round_trip_through_storage(self) -> None:
        built = WebhookFilter.build(message_types=[" fdis91 "], kinds=["ADDED"], owners=["1", ""])
        assert built.as_dict()["message_types"] == ["FDIS91"]
        assert WebhookFilter.of(built.as_dict()) == built

    @pytest.mark.parametrize(
        "values",
        [
            {"glns": ["123"]},
            {"owners": ["abc"]},
            {"message_types": ["FDIS 91"]},
            {"kinds": ["moved"]},
            {"entities": ["plan"]},
        ],
    )
    def test_malformed_values_are_refused(self, values: dict[str, list[str]]) -> None:
        with pytest.raises(InvalidWebhook):
            WebhookFilter.build(**values)


class TestOwnerResolver:
    owner_map = OwnerMap(
        unit_owner={"10": "1", "11": "1", "20": "2"},
        gln_carriers={GLN: ("11",)},
        gln_registered={GLN: "11", OTHER_GLN: "20"},
    )

    def test_a_unit_belongs_to_its_institution_owner(self) -> None:
        assert OwnerResolver(self.owner_map)(change("unit", "11", "changed")) == {"1"}

    def test_a_capability_belongs_to_the_owners_of_the_units_carrying_its_gln(self) -> None:
        assert OwnerResolver(self.owner_map)(change("capability", f"{GLN}:FDIS91")) == {"1"}

    def test_a_gln_no_unit_carries_belongs_to_the_owner_of_the_unit_that_registered_it(
        self,
    ) -> None:
        assert OwnerResolver(self.owner_map)(change("gln", OTHER_GLN)) == {"2"}

    def test_a_unit_that_moved_belongs_to_both_owners(self) -> None:
        moved = change("unit", "20", "changed", fields={"owner_sor_id": ["3", "2"]})
        assert OwnerResolver(self.owner_map)(moved) == {"2", "3"}

    def test_a_removed_gln_of_a_removed_unit_is_placed_by_the_units_own_removal(self) -> None:
        resolver = OwnerResolver(self.owner_map)
        gone_unit = change("unit", "30", "removed", before={"owner_sor_id": "3"})
        gone_gln = change("gln", "5790000000029", "removed", before={"owner_sor_id": "30"})
        resolver.learn(gone_unit)
        resolver.learn(gone_gln)
        assert resolver(gone_unit) == {"3"} and resolver(gone_gln) == {"3"}

    def test_a_change_whose_owner_cannot_be_told_has_none(self) -> None:
        unknown = change("capability", "5790000000036:FDIS91")
        assert OwnerResolver(self.owner_map)(unknown) == set()
        assert not WebhookFilter.build(owners=["1"]).matches(unknown, OwnerResolver(self.owner_map))
