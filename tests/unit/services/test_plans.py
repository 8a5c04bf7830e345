"""Change-plan use cases on the fakes: create, submit (worklist and SORUS) and verify."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from soredi_sync.domain.audit import AuditContext
from soredi_sync.domain.model import Gln, Registry
from soredi_sync.domain.plans import ItemState, PlanAction
from soredi_sync.errors import NoSnapshot, NotFound, SourceError
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import Plan
from soredi_sync.services.plans import (
    PlanRequestError,
    PlanSubmissionFailed,
    create_plan,
    plan_events,
    submit_plan,
    verify_open_plans,
    verify_plan,
)
from soredi_sync.soap.records import ChangeResult, EdiTypeChange, SubmissionReceipt
from tests.support.factories import gln, registry, unit
from tests.support.fakes import store

MUNICIPALITY_TYPE = "550921000005109"
OWNER, OTHER = "1", "2"


def _registry(types_1: Sequence[str] = ("DIS91",), types_2: Sequence[str] = ("DIS91",)) -> Registry:
    return registry(
        [
            unit(OWNER, own_gln=gln(1), type_code=MUNICIPALITY_TYPE, name="Aalborg Kommune"),
            unit(OTHER, own_gln=gln(2), type_code=MUNICIPALITY_TYPE, name="Aarhus Kommune"),
        ],
        [Gln(gln(1)), Gln(gln(2))],
        {gln(1): list(types_1), gln(2): list(types_2)},
    )


def _switch_plan(uow: FakeUnitOfWork, context: AuditContext) -> Plan:
    with uow:
        return create_plan(uow, context, actor="ops", owners=[OWNER], switch_to="carecommunication")


def _items(plan: Plan) -> set[tuple[str, str, str]]:
    return {(i.gln, i.action.value, i.message_type) for i in plan.items}


def test_a_switch_plan_adds_fhir_and_removes_legacy_for_the_owner_only(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    store(uow, _registry())
    plan = _switch_plan(uow, context)
    assert _items(plan) == {
        (gln(1), "add", "FDIS91"),
        (gln(1), "add", "FCTL"),
        (gln(1), "remove", "DIS91"),
    }
    assert {i.state for i in plan.items} == {ItemState.PLANNED}
    assert uow.commits == 2  # the snapshot, then the plan
    with uow:
        events = plan_events(uow, plan.id)
    assert [e.action for e in events] == ["created"] * 4


def test_a_plan_needs_a_snapshot_a_known_owner_and_one_goal(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    with pytest.raises(NoSnapshot):
        _switch_plan(uow, context)
    store(uow, _registry())
    with uow, pytest.raises(NotFound):
        create_plan(uow, context, actor="ops", owners=["999"], switch_to="carecommunication")
    with uow, pytest.raises(PlanRequestError):
        create_plan(
            uow,
            context,
            actor="ops",
            owners=[OWNER],
            switch_to="carecommunication",
            findings="FHIR_WITHOUT_FCTL",
        )
    with uow:
        assert uow.plans.open_plan_ids() == [] and uow.plans.get(1) is None


def test_a_worklist_submission_marks_every_item_submitted_and_writes_the_glns_as_text(
    uow: FakeUnitOfWork, context: AuditContext, tmp_path: Path
) -> None:
    store(uow, _registry())
    plan = _switch_plan(uow, context)
    out = tmp_path / "worklist.csv"
    with uow:
        submitted = submit_plan(uow, plan.id, "worklist", actor="ops", out=out)
    assert {i.state for i in submitted.items} == {ItemState.SUBMITTED}
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert {(r["gln"], r["action"], r["message_type"]) for r in rows} == _items(plan)


def test_verification_confirms_what_the_next_snapshot_shows_and_leaves_the_rest_pending(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    store(uow, _registry())
    plan = _switch_plan(uow, context)
    with uow:
        submit_plan(uow, plan.id, "worklist", actor="ops")
    # SOR publishes FDIS91 but has not yet removed DIS91 nor added FCTL.
    day1 = store(uow, _registry(types_1=("DIS91", "FDIS91")), run_id=2)
    with uow:
        result = verify_plan(uow, plan.id, actor="ops")
        after = uow.plans.get(plan.id)
    assert result.snapshot_id == day1.id
    assert after is not None
    states = {(i.action, i.message_type): i.state for i in after.items}
    assert states == {
        (PlanAction.ADD, "FDIS91"): ItemState.CONFIRMED,
        (PlanAction.ADD, "FCTL"): ItemState.PENDING,
        (PlanAction.REMOVE, "DIS91"): ItemState.PENDING,
    }
    assert {i.verified_snapshot_id for i in after.items} == {day1.id}
    assert result.changed == 3 and result.counts["confirmed"] == 1


def test_open_plans_are_verified_after_a_sync_and_unsubmitted_ones_are_left_alone(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    store(uow, _registry())
    submitted = _switch_plan(uow, context)
    planned = _switch_plan(uow, context)
    with uow:
        submit_plan(uow, submitted.id, "worklist", actor="ops")
    store(uow, _registry(types_1=("FDIS91", "FCTL")), run_id=2)
    with uow:
        results = verify_open_plans(uow)
        untouched = uow.plans.get(planned.id)
    assert [r.plan_id for r in results] == [submitted.id]
    assert results[0].counts["confirmed"] == 3
    assert untouched is not None and {i.state for i in untouched.items} == {ItemState.PLANNED}


class FakeSorus:
    """Accepts every change but the removals; fails on batch number ``fail_on``."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[EdiTypeChange]] = []
        self.fail_on = fail_on

    def submit(self, reference: str, changes: Sequence[EdiTypeChange]) -> SubmissionReceipt:
        self.batches.append(list(changes))
        if len(self.batches) == self.fail_on:
            raise SourceError("SORUS is down")
        results = tuple(
            ChangeResult(
                c.change_id,
                c.action.value == "add",
                date(2026, 12, 1) if c.action.value == "add" else None,
                None if c.action.value == "add" else "not allowed",
            )
            for c in changes
        )
        return SubmissionReceipt(f"R{len(self.batches)}", datetime.now(UTC), results)


def test_sorus_accepts_and_refuses_item_by_item(uow: FakeUnitOfWork, context: AuditContext) -> None:
    store(uow, _registry())
    plan = _switch_plan(uow, context)
    with uow:
        after = submit_plan(uow, plan.id, "sorus", actor="ops", sorus=FakeSorus())
        events = plan_events(uow, plan.id)
    states = {i.message_type: i.state for i in after.items}
    assert states == {
        "FDIS91": ItemState.SUBMITTED,
        "FCTL": ItemState.SUBMITTED,
        "DIS91": ItemState.REJECTED,
    }
    rejected = [e for e in events if e.to_state == "rejected"]
    assert [e.details["reason"] for e in rejected] == ["not allowed"]


def test_a_sorus_failure_keeps_the_batches_already_answered(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    store(uow, _registry())
    plan = _switch_plan(uow, context)
    sorus = FakeSorus(fail_on=2)
    with uow, pytest.raises(PlanSubmissionFailed) as failed:
        submit_plan(uow, plan.id, "sorus", actor="ops", sorus=sorus, batch_size=2)
    assert (failed.value.done, failed.value.total) == (2, 3)
    with uow:
        stored = uow.plans.get(plan.id)
    assert stored is not None
    by_id = {i.id: i.state for i in stored.items}
    first_batch = {int(c.change_id) for c in sorus.batches[0]}
    assert {by_id[i] for i in first_batch} <= {ItemState.SUBMITTED, ItemState.REJECTED}
    assert [s for i, s in by_id.items() if i not in first_batch] == [ItemState.PLANNED]
