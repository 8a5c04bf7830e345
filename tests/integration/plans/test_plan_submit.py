"""Submitting a plan through SORUS (both engines): batches, receipts, rejections, failures.

The SORUS side here is a scripted stand-in for :class:`~soredi_sync.soap.sorus.SorusClient`
(the zeep client against the loopback SORUS is tested in tests/integration/soap/test_sorus.py
and end to end in test_plan_sorus_e2e.py); it lets a test decide exactly which change is
refused and when the service fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.domain.plans import ItemState, gln_owners
from soredi_sync.errors import SourceError
from soredi_sync.services.plans import (
    PlanRequestError,
    PlanSubmissionFailed,
    create_plan,
    plan_events,
    submit_plan,
)
from soredi_sync.soap.errors import SoapUnavailable
from soredi_sync.soap.records import ChangeResult, EdiTypeChange, SubmissionReceipt
from tests.support.app import current_view, plan_uow
from tests.support.sandbox import SWITCHED


class ScriptedSorus:
    """Accepts every change except those whose GLN is in ``refuse``; fails on call ``fail_on``."""

    def __init__(self, refuse: Sequence[str] = (), fail_on: int | None = None) -> None:
        self.refuse = set(refuse)
        self.fail_on = fail_on
        self.batches: list[list[EdiTypeChange]] = []

    def submit(self, reference: str, changes: Sequence[EdiTypeChange]) -> SubmissionReceipt:
        if self.fail_on is not None and len(self.batches) + 1 == self.fail_on:
            raise SoapUnavailable("SORUS", "SubmitEdiTypeChanges", 3, "HTTP 503")
        self.batches.append(list(changes))
        return SubmissionReceipt(
            submission_id=f"R{len(self.batches)}",
            received_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            results=tuple(
                ChangeResult(c.change_id, False, None, "unknown GLN")
                if c.gln in self.refuse
                else ChangeResult(c.change_id, True, date(2026, 11, 3), None)
                for c in changes
            ),
        )


@pytest.fixture
def plan_id(day0: App) -> int:
    view = current_view(day0)
    owners = sorted({gln_owners(view)[g].sor_id for g in SWITCHED})
    with plan_uow(day0) as uow:
        plan = create_plan(
            uow,
            day0.reference.audit_context,
            actor="region",
            owners=owners,
            switch_to="carecommunication",
        )
    assert len(plan.items) >= 4
    return plan.id


def states(app: App, plan_id: int) -> dict[int, ItemState]:
    with plan_uow(app) as uow:
        from soredi_sync.services.plans import get_plan

        return {item.id: item.state for item in get_plan(uow, plan_id).items}


class TestSorusSubmission:
    def test_accepted_items_become_submitted_with_the_receipt_on_their_events(
        self, day0: App, plan_id: int
    ) -> None:
        sorus = ScriptedSorus()
        with plan_uow(day0) as uow:
            plan = submit_plan(uow, plan_id, "sorus", actor="region", sorus=sorus)
            events = plan_events(uow, plan_id)
        assert {item.state for item in plan.items} == {ItemState.SUBMITTED}
        sent = [c for batch in sorus.batches for c in batch]
        assert sorted(int(c.change_id) for c in sent) == sorted(i.id for i in plan.items)
        by_item = {i.id: (i.gln, i.action.value, i.message_type) for i in plan.items}
        assert {int(c.change_id): (c.gln, c.action.value, c.message_type) for c in sent} == by_item
        item_events = [e for e in events if e.item_id is not None and e.to_state == "submitted"]
        assert {e.details["receipt"] for e in item_events} == {"R1"}
        assert {e.details["effective_date"] for e in item_events} == {"2026-11-03"}
        summary = [e for e in events if e.item_id is None and e.action == "submitted"]
        assert summary[-1].details["channel"] == "sorus"
        assert summary[-1].details["accepted"] == len(plan.items)

    def test_refused_items_become_rejected_with_the_reason_and_stay_out_of_verification(
        self, day0: App, plan_id: int
    ) -> None:
        refused_gln = SWITCHED[0]
        with plan_uow(day0) as uow:
            plan = submit_plan(
                uow, plan_id, "sorus", actor="region", sorus=ScriptedSorus(refuse=[refused_gln])
            )
            events = plan_events(uow, plan_id)
        rejected = {i.id for i in plan.items if i.state is ItemState.REJECTED}
        assert rejected == {i.id for i in plan.items if i.gln == refused_gln}
        assert rejected, "the refused GLN has items in the plan"
        reasons = {e.item_id: e.details["reason"] for e in events if e.to_state == "rejected"}
        assert reasons == dict.fromkeys(rejected, "unknown GLN")
        from soredi_sync.services.plans import verify_plan

        with plan_uow(day0) as uow:
            result = verify_plan(uow, plan_id, actor="region")
        assert result.counts["rejected"] == len(rejected)

    def test_a_worklist_afterwards_hands_the_rejected_items_to_a_person(
        self, day0: App, plan_id: int, tmp_path: Path
    ) -> None:
        with plan_uow(day0) as uow:
            submit_plan(
                uow, plan_id, "sorus", actor="region", sorus=ScriptedSorus(refuse=[SWITCHED[1]])
            )
            plan = submit_plan(uow, plan_id, "worklist", actor="medcom", out=tmp_path / "rest.csv")
        assert {item.state for item in plan.items} == {ItemState.SUBMITTED}

    def test_items_go_in_batches_and_each_batch_is_recorded_before_the_next_is_sent(
        self, day0: App, plan_id: int
    ) -> None:
        sorus = ScriptedSorus(fail_on=3)
        with plan_uow(day0) as uow, pytest.raises(PlanSubmissionFailed) as raised:
            submit_plan(uow, plan_id, "sorus", actor="region", sorus=sorus, batch_size=2)
        assert raised.value.done == 4
        assert "4 of" in str(raised.value) and "HTTP 503" in str(raised.value)
        after = states(day0, plan_id)
        sent = {int(c.change_id) for batch in sorus.batches for c in batch}
        assert len(sent) == 4 and [len(b) for b in sorus.batches] == [2, 2]
        assert {after[i] for i in sent} == {ItemState.SUBMITTED}
        assert {s for i, s in after.items() if i not in sent} == {ItemState.PLANNED}

    def test_submitting_again_after_a_failure_sends_only_what_is_still_planned(
        self, day0: App, plan_id: int
    ) -> None:
        with plan_uow(day0) as uow, pytest.raises(PlanSubmissionFailed):
            submit_plan(
                uow, plan_id, "sorus", actor="r", sorus=ScriptedSorus(fail_on=2), batch_size=2
            )
        again = ScriptedSorus()
        with plan_uow(day0) as uow:
            plan = submit_plan(uow, plan_id, "sorus", actor="r", sorus=again, batch_size=2)
        resent = [c for batch in again.batches for c in batch]
        assert len(resent) == len(plan.items) - 2
        assert {item.state for item in plan.items} == {ItemState.SUBMITTED}

    def test_a_failure_on_the_first_batch_changes_nothing(self, day0: App, plan_id: int) -> None:
        before = states(day0, plan_id)
        with plan_uow(day0) as uow, pytest.raises(PlanSubmissionFailed) as raised:
            submit_plan(uow, plan_id, "sorus", actor="r", sorus=ScriptedSorus(fail_on=1))
        assert isinstance(raised.value.__cause__, SourceError)
        assert states(day0, plan_id) == before

    def test_the_sorus_channel_without_a_client_or_an_unknown_channel_is_refused(
        self, day0: App, plan_id: int
    ) -> None:
        with plan_uow(day0) as uow:
            with pytest.raises(PlanRequestError, match="SORUS client"):
                submit_plan(uow, plan_id, "sorus", actor="r")
            with pytest.raises(PlanRequestError, match="unknown channel"):
                submit_plan(uow, plan_id, "fax", actor="r")
