"""Change-plan use cases: create, show, export, submit and verify.

Each use case takes an open :class:`UnitOfWork` and commits what it changes.

:func:`verify_open_plans` is meant to run after every accepted sync (the daemon schedules it);
``services.sync.sync_source`` does not call it itself.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from soredi_sync.domain.audit import AuditContext, AuditView, OwnerKind
from soredi_sync.domain.model import Registry
from soredi_sync.domain.plans import (
    FINDING_CODES,
    SWITCH_TARGETS,
    VERIFIABLE,
    InvalidPlanRequest,
    ItemState,
    count_states,
    from_findings,
    institution_owners,
    owners_of_kind,
    switch_to_carecommunication,
    verify_item,
)
from soredi_sync.errors import NoSnapshot, NotFound, SorediError, SourceError
from soredi_sync.ports.records import Plan, PlanEvent, PlanSummary, SnapshotInfo, StateChange
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.soap.records import ChangeAction, EdiTypeChange

if TYPE_CHECKING:
    from soredi_sync.soap.sorus import SorUpdater

WORKLIST_COLUMNS = ("gln", "owner", "action", "message_type", "version", "reason")


class PlanRequestError(SorediError, ValueError):
    """A plan cannot be created or submitted as asked."""


class PlanSubmissionFailed(SorediError):
    """SORUS failed part-way; the batches before the failure are recorded."""

    def __init__(self, plan_id: int, done: int, total: int, cause: SourceError) -> None:
        super().__init__(
            f"plan {plan_id}: SORUS submission stopped after {done} of {total} items "
            f"({total - done} left planned; submit again to send them): {cause}"
        )
        self.plan_id = plan_id
        self.done = done
        self.total = total


class Channel(enum.StrEnum):
    WORKLIST = "worklist"
    SORUS = "sorus"


@dataclass(frozen=True)
class VerifyResult:
    plan_id: int
    snapshot_id: int
    changed: int
    counts: dict[str, int]


def _current(uow: UnitOfWork) -> SnapshotInfo:
    snapshot = uow.registry.current_snapshot()
    if snapshot is None:
        raise NoSnapshot()
    return snapshot


def create_plan(
    uow: UnitOfWork,
    context: AuditContext,
    *,
    actor: str,
    owners: Sequence[str] = (),
    owner_kind: str | None = None,
    switch_to: str | None = None,
    findings: str | None = None,
) -> Plan:
    """Build a plan on the current snapshot and store it (every item planned).

    Give ``owners`` (SOR-IDs of institution owners) or ``owner_kind`` (e.g. ``municipality``:
    every owner of that kind), and ``switch_to`` or ``findings``.

    :raises PlanRequestError: not exactly one goal, no owner scope, unknown goal or owner kind
    :raises NotFound: an owner that is not an institution owner in the current snapshot
    :raises NoSnapshot: nothing synced yet
    """
    if (switch_to is None) == (findings is None):
        raise PlanRequestError("give exactly one of switch_to and from_findings")
    if bool(owners) == (owner_kind is not None):
        raise PlanRequestError("give owners or an owner kind (not both)")
    if switch_to is not None and switch_to not in SWITCH_TARGETS:
        raise PlanRequestError(f"unknown switch target {switch_to!r}; use {SWITCH_TARGETS}")
    if findings is not None and findings not in FINDING_CODES:
        raise PlanRequestError(
            f"no plan can be built from finding {findings!r}; use one of {', '.join(FINDING_CODES)}"
        )
    snapshot = _current(uow)
    registry = uow.registry.load_registry(snapshot.id)
    view = AuditView(registry, context, snapshot.effective_date)
    if owner_kind is not None:
        try:
            kind = OwnerKind(owner_kind)
        except ValueError:
            raise PlanRequestError(f"unknown owner kind {owner_kind!r}") from None
        scope = owners_of_kind(view, kind)
    else:
        known = institution_owners(view)
        for owner in owners:
            if owner not in known:
                raise NotFound("institution owner", owner)
        scope = sorted(set(owners))
    try:
        if switch_to is not None:
            items = switch_to_carecommunication(view, scope)
            goal = f"switch-to:{switch_to}"
        else:
            assert findings is not None
            items = from_findings(view, scope, findings)
            goal = f"findings:{findings}"
    except InvalidPlanRequest as exc:
        raise PlanRequestError(str(exc)) from None
    plan_id = uow.plans.add(
        created_at=datetime.now(UTC),
        created_by=actor,
        goal=goal,
        owners=scope,
        owner_kind=owner_kind,
        snapshot_id=snapshot.id,
        items=items,
    )
    uow.commit()
    return get_plan(uow, plan_id)


def get_plan(uow: UnitOfWork, plan_id: int) -> Plan:
    """:raises NotFound: no such plan"""
    plan = uow.plans.get(plan_id)
    if plan is None:
        raise NotFound("plan", str(plan_id))
    return plan


def plan_events(uow: UnitOfWork, plan_id: int) -> list[PlanEvent]:
    get_plan(uow, plan_id)
    return uow.plans.events(plan_id)


def plan_counts(plan: Plan) -> dict[str, int]:
    return count_states(item.state for item in plan.items)


def list_plans(
    uow: UnitOfWork, *, within: Collection[str] | None = None, limit: int = 50, offset: int = 0
) -> list[PlanSummary]:
    """Plans newest first, with their items counted by state.

    :param within: only plans whose owners are all among these SOR-IDs, as an owner-restricted
        token may see them (``services.tokens.may_act_for``); None: every plan
    :param limit: at most this many, after skipping ``offset`` of those selected
    """
    return uow.plans.summaries(within=within, limit=limit, offset=offset)


# -- the worklist for the SOR-EDI application -------------------------------------------------


def worklist_rows(plan: Plan) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (i.gln, i.owner_sor_id, i.action.value, i.message_type, i.version_code or "", i.reason)
        for i in plan.items
    ]


def worklist_csv(plan: Plan) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(WORKLIST_COLUMNS)
    writer.writerows(worklist_rows(plan))
    return out.getvalue()


def write_worklist(plan: Plan, fmt: str, path: Path) -> None:
    """Write the plan's worklist as ``csv`` or ``xlsx`` (GLN as text, never a number)."""
    if fmt == "csv":
        path.write_text(worklist_csv(plan), encoding="utf-8")
        return
    if fmt != "xlsx":
        raise PlanRequestError(f"unknown worklist format {fmt!r}; use csv or xlsx")
    path.write_bytes(worklist_xlsx(plan))


def worklist_xlsx(plan: Plan) -> bytes:
    """The worklist as an XLSX workbook: the rows of :func:`worklist_csv`, GLN and owner as
    text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"plan {plan.id}"
    sheet.append(list(WORKLIST_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in worklist_rows(plan):
        sheet.append(list(row))
    for cells in sheet.iter_rows(min_row=2, max_col=2):
        for cell in cells:
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- submit and verify --------------------------------------------------------------------------


def submit_plan(
    uow: UnitOfWork,
    plan_id: int,
    channel: str,
    *,
    actor: str,
    out: Path | None = None,
    fmt: str = "csv",
    sorus: SorUpdater | None = None,
    batch_size: int = 200,
) -> Plan:
    """Hand the plan's items to SOR and record the outcome of each.

    ``worklist``: the planned items, and any SORUS rejected, are marked submitted; the worklist
    is written to ``out`` (if given) for a person to enter in the SOR-EDI application.

    ``sorus``: the planned items go to SORUS in batches of ``batch_size``. Each batch's receipt
    is committed before the next batch is sent: accepted items become submitted (with the
    receipt id and effective date on their events), refused ones rejected (with SORUS's
    reason). A batch that fails leaves its items planned, and the batches before it recorded.

    :raises PlanRequestError: unknown channel, or ``sorus`` without a client
    :raises PlanSubmissionFailed: SORUS failed (a fault, unreachable, a bad answer)
    :raises NotFound: no such plan
    """
    try:
        chosen = Channel(channel)
    except ValueError:
        raise PlanRequestError(f"unknown channel {channel!r}; use worklist or sorus") from None
    if batch_size < 1:
        raise PlanRequestError(f"batch_size must be >= 1, got {batch_size}")
    plan = get_plan(uow, plan_id)
    if chosen is Channel.SORUS:
        if sorus is None:
            raise PlanRequestError("the sorus channel needs a SORUS client")
        return _submit_sorus(uow, plan, sorus, actor=actor, batch_size=batch_size)
    if out is not None:
        write_worklist(plan, fmt, out)
    handed = (ItemState.PLANNED, ItemState.REJECTED)
    changes = [
        StateChange(item.id, ItemState.SUBMITTED) for item in plan.items if item.state in handed
    ]
    uow.plans.change_states(
        plan_id,
        changes,
        at=datetime.now(UTC),
        actor=actor,
        action="submitted",
        details={"channel": chosen.value, **({"out": str(out)} if out else {})},
    )
    uow.commit()
    return get_plan(uow, plan_id)


def _submit_sorus(
    uow: UnitOfWork,
    plan: Plan,
    sorus: SorUpdater,
    *,
    actor: str,
    batch_size: int,
) -> Plan:
    items = [item for item in plan.items if item.state is ItemState.PLANNED]
    reference = f"soredi-sync plan {plan.id}"
    done = 0
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        changes = [
            EdiTypeChange(
                change_id=str(item.id),
                gln=item.gln,
                action=ChangeAction(item.action.value),
                message_type=item.message_type,
                version_code=item.version_code,
            )
            for item in batch
        ]
        try:
            receipt = sorus.submit(reference, changes)
        except SourceError as exc:
            raise PlanSubmissionFailed(plan.id, done, len(items), exc) from exc
        state_changes = [
            StateChange(
                int(result.change_id),
                ItemState.SUBMITTED if result.accepted else ItemState.REJECTED,
                details={
                    "receipt": receipt.submission_id,
                    **(
                        {"effective_date": result.effective_date.isoformat()}
                        if result.effective_date
                        else {}
                    ),
                    **({"reason": result.reason} if result.reason else {}),
                },
            )
            for result in receipt.results
        ]
        accepted = sum(result.accepted for result in receipt.results)
        uow.plans.change_states(
            plan.id,
            state_changes,
            at=datetime.now(UTC),
            actor=actor,
            action="submitted",
            details={
                "channel": Channel.SORUS.value,
                "receipt": receipt.submission_id,
                "received_at": receipt.received_at.isoformat(),
                "accepted": accepted,
                "rejected": len(receipt.results) - accepted,
            },
        )
        uow.commit()
        done += len(batch)
    return get_plan(uow, plan.id)


def _verify(
    uow: UnitOfWork,
    plan: Plan,
    snapshot: SnapshotInfo,
    registry: Registry,
    actor: str,
) -> VerifyResult:
    changes = [
        StateChange(
            item.id,
            verify_item(item.gln, item.action, item.message_type, item.state, registry),
            snapshot.id,
        )
        for item in plan.items
        if item.state in VERIFIABLE
    ]
    changed = uow.plans.change_states(
        plan.id,
        changes,
        at=datetime.now(UTC),
        actor=actor,
        action="verified",
        details={"snapshot_id": snapshot.id},
    )
    after = get_plan(uow, plan.id)
    return VerifyResult(plan.id, snapshot.id, changed, plan_counts(after))


def verify_plan(uow: UnitOfWork, plan_id: int, *, actor: str) -> VerifyResult:
    """Judge every submitted item of the plan against the current snapshot and commit.

    Items still planned (not handed to SOR) are left as they are.

    :raises NotFound: no such plan
    :raises NoSnapshot: nothing synced yet
    """
    plan = get_plan(uow, plan_id)
    snapshot = _current(uow)
    result = _verify(uow, plan, snapshot, uow.registry.load_registry(snapshot.id), actor)
    uow.commit()
    return result


def verify_open_plans(uow: UnitOfWork, *, actor: str = "sync") -> list[VerifyResult]:
    """Verify every plan with submitted or pending items against the current snapshot.

    Meant to run after each accepted sync (``services.sync.sync_source`` does not call it; the
    daemon schedules it). Does nothing before the first snapshot.
    """
    snapshot = uow.registry.current_snapshot()
    if snapshot is None:
        return []
    plan_ids = uow.plans.open_plan_ids()
    if not plan_ids:
        return []
    registry = uow.registry.load_registry(snapshot.id)
    results = [
        _verify(uow, get_plan(uow, plan_id), snapshot, registry, actor) for plan_id in plan_ids
    ]
    uow.commit()
    return results
