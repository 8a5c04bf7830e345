"""Counting the decision log: what a count is of, and the totals per receiver, sender and pair."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from soredi_sync.domain.plans import ItemDraft, PlanAction, planned_types
from soredi_sync.domain.traffic import (
    CONVERTED,
    NATIVE,
    REJECTED,
    LoggedGroup,
    Owners,
    count_traffic,
    totals,
)

LOGGED = date(2026, 12, 1)
OWNERS = Owners(
    of_unit={"U1": "OWNER-A", "U2": "OWNER-B"}.get,
    of_gln={"5790000000001": "OWNER-A", "5790000000002": "OWNER-B"}.get,
)


def _group(**fields: object) -> LoggedGroup:
    values: dict[str, object] = {
        "at": None,
        "receiver_gln": "5790000000001",
        "receiver_sor_id": None,
        "address_gln": "5790000000001",
        "address_sor_id": "U1",
        "sender_gln": "5790000000002",
        "sender_sor_id": None,
        "business_message": "correspondence",
        "sender_syntax": "fhir",
        "outcome": "deliver",
        "reason": None,
        "conversion": None,
        "decisions": 1,
    }
    values.update(fields)
    return LoggedGroup(**values)  # type: ignore[arg-type]


class TestCountTraffic:
    def test_a_message_counts_on_the_day_it_was_routed_for_else_the_day_it_was_logged(
        self,
    ) -> None:
        counts = count_traffic(
            LOGGED, [_group(decisions=3), _group(at=date(2026, 11, 20), decisions=2)], OWNERS
        )
        assert {(c.day, c.logged_on, c.messages) for c in counts} == {
            (LOGGED, LOGGED, 3),
            (date(2026, 11, 20), LOGGED, 2),
        }

    def test_delivery_is_native_converted_by_its_steps_or_rejected_by_its_reason(self) -> None:
        counts = count_traffic(
            LOGGED,
            [
                _group(),
                _group(conversion="fhir->oioxml"),
                _group(outcome="reject", reason="RECEIVER_CLOSED"),
            ],
            OWNERS,
        )
        assert sorted((c.delivery, c.conversion, c.reason) for c in counts) == [
            (CONVERTED, "fhir->oioxml", None),
            (NATIVE, None, None),
            (REJECTED, None, "RECEIVER_CLOSED"),
        ]

    def test_the_receiver_is_the_address_found_else_what_the_question_named(self) -> None:
        (found,) = count_traffic(LOGGED, [_group()], OWNERS)
        (named,) = count_traffic(
            LOGGED,
            [_group(address_gln=None, address_sor_id=None, receiver_gln="5790000000002")],
            OWNERS,
        )
        assert (found.receiver_gln, found.receiver_sor_id, found.receiver_owner) == (
            "5790000000001",
            "U1",
            "OWNER-A",
        )
        assert (named.receiver_gln, named.receiver_sor_id, named.receiver_owner) == (
            "5790000000002",
            None,
            "OWNER-B",
        )

    def test_owners_come_from_the_unit_first_then_the_gln_and_an_unknown_party_has_none(
        self,
    ) -> None:
        (by_unit,) = count_traffic(LOGGED, [_group(sender_sor_id="U1")], OWNERS)
        (unknown,) = count_traffic(
            LOGGED, [_group(sender_gln="5790000000099", sender_sor_id=None)], OWNERS
        )
        (unnamed,) = count_traffic(LOGGED, [_group(sender_gln=None)], OWNERS)
        assert by_unit.sender_owner == "OWNER-A"  # the unit's owner, not the GLN's (OWNER-B)
        assert unknown.sender_owner is None and unnamed.sender_owner is None

    @given(
        st.lists(
            st.tuples(
                st.sampled_from([None, date(2026, 11, 30)]),
                st.sampled_from(["5790000000001", "5790000000002"]),
                st.sampled_from([None, "fhir->oioxml"]),
                st.integers(1, 50),
            ),
            max_size=30,
        )
    )
    def test_every_logged_decision_is_counted_once_whatever_the_grouping(
        self, rows: list[tuple[date | None, str, str | None, int]]
    ) -> None:
        groups = [
            _group(at=at, address_gln=gln, address_sor_id=None, conversion=steps, decisions=n)
            for at, gln, steps, n in rows
        ]
        counts = count_traffic(LOGGED, groups, OWNERS)
        assert sum(c.messages for c in counts) == sum(n for *_, n in rows)
        kinds = [(c.day, c.receiver_gln, c.conversion) for c in counts]
        assert len(kinds) == len(set(kinds))


class TestTotals:
    def test_receivers_are_ranked_by_messages_with_each_delivery_apart(self) -> None:
        counts = count_traffic(
            LOGGED,
            [
                _group(decisions=5, conversion="fhir->oioxml"),
                _group(decisions=1, outcome="reject", reason="RECEIVER_CLOSED"),
                _group(address_gln="5790000000002", address_sor_id="U2", decisions=4),
            ],
            OWNERS,
        )
        first, second = totals(counts, "receiver")
        assert (first.key, first.converted, first.rejected, first.messages) == (
            ("5790000000001", "U1", "OWNER-A"),
            5,
            1,
            6,
        )
        assert (second.key, second.native, second.messages) == (
            ("5790000000002", "U2", "OWNER-B"),
            4,
            4,
        )

    def test_pairs_keep_sender_and_receiver_apart(self) -> None:
        counts = count_traffic(
            LOGGED, [_group(decisions=2), _group(sender_gln=None, decisions=3)], OWNERS
        )
        pairs = {t.key: t.messages for t in totals(counts, "pair")}
        receiver = ("5790000000001", "U1", "OWNER-A")
        assert pairs == {
            (None, None, None, *receiver): 3,
            ("5790000000002", None, "OWNER-B", *receiver): 2,
        }
        assert [t.messages for t in totals(counts, "sender")] == [3, 2]


class TestPlannedTypes:
    def test_a_plan_adds_and_removes_types_of_the_glns_it_changes_only(self) -> None:
        advertised = {
            "5790000000001": frozenset({"XDIS91", "DIS91"}),
            "5790000000002": frozenset({"FDIS91"}),
        }
        items = [
            ItemDraft("5790000000001", "O", PlanAction.ADD, "FDIS91", None, "SWITCH"),
            ItemDraft("5790000000001", "O", PlanAction.REMOVE, "DIS91", None, "SWITCH"),
            ItemDraft("5790000000003", "O", PlanAction.ADD, "FDIS91", None, "SWITCH"),
        ]
        assert planned_types(advertised, items) == {
            "5790000000001": frozenset({"XDIS91", "FDIS91"}),
            "5790000000003": frozenset({"FDIS91"}),  # a GLN advertising nothing yet
        }
