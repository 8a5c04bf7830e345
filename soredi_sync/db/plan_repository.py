"""Repository of change plans, their items and the record of every state change.

Like the other repositories it never commits: :class:`UnitOfWork` owns the
transaction. The unit of work also carries the registry repository, because building and
verifying a plan reads a snapshot.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soredi_sync.db.models import ChangePlan, ChangePlanEvent, ChangePlanItem
from soredi_sync.domain.plans import ItemDraft, ItemState, PlanAction, count_states
from soredi_sync.ports.records import Plan, PlanEvent, PlanItem, PlanSummary, StateChange


def _item(row: ChangePlanItem) -> PlanItem:
    return PlanItem(
        id=row.id,
        gln=row.gln,
        owner_sor_id=row.owner_sor_id,
        action=PlanAction(row.action),
        message_type=row.message_type,
        version_code=row.version_code,
        reason=row.reason,
        state=ItemState(row.state),
        updated_at=row.updated_at,
        verified_snapshot_id=row.verified_snapshot_id,
    )


class SqlAlchemyPlanRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        created_at: datetime,
        created_by: str,
        goal: str,
        owners: Sequence[str],
        owner_kind: str | None,
        snapshot_id: int,
        items: Sequence[ItemDraft],
    ) -> int:
        """Store a new plan with every item planned; records one ``created`` event per item."""
        plan = ChangePlan(
            created_at=created_at,
            created_by=created_by,
            goal=goal,
            owners=sorted(owners),
            owner_kind=owner_kind,
            snapshot_id=snapshot_id,
        )
        self.session.add(plan)
        self.session.flush()
        rows = [
            ChangePlanItem(
                plan_id=plan.id,
                gln=d.gln,
                owner_sor_id=d.owner_sor_id,
                action=d.action.value,
                message_type=d.message_type,
                version_code=d.version_code,
                reason=d.reason,
                state=ItemState.PLANNED.value,
                updated_at=created_at,
            )
            for d in items
        ]
        self.session.add_all(rows)
        self.session.flush()
        self.session.add(
            ChangePlanEvent(
                plan_id=plan.id,
                at=created_at,
                actor=created_by,
                action="created",
                details={"goal": goal, "items": len(rows), "snapshot_id": snapshot_id},
            )
        )
        self.session.add_all(
            ChangePlanEvent(
                plan_id=plan.id,
                item_id=row.id,
                at=created_at,
                actor=created_by,
                action="created",
                to_state=ItemState.PLANNED.value,
            )
            for row in rows
        )
        self.session.flush()
        return plan.id

    def get(self, plan_id: int) -> Plan | None:
        row = self.session.get(ChangePlan, plan_id)
        if row is None:
            return None
        items = self.session.scalars(
            select(ChangePlanItem)
            .where(ChangePlanItem.plan_id == plan_id)
            .order_by(ChangePlanItem.id)
        )
        return Plan(
            id=row.id,
            created_at=row.created_at,
            created_by=row.created_by,
            goal=row.goal,
            owners=tuple(row.owners or ()),
            owner_kind=row.owner_kind,
            snapshot_id=row.snapshot_id,
            items=tuple(_item(i) for i in items),
        )

    def events(self, plan_id: int) -> list[PlanEvent]:
        rows = self.session.scalars(
            select(ChangePlanEvent)
            .where(ChangePlanEvent.plan_id == plan_id)
            .order_by(ChangePlanEvent.id)
        )
        return [
            PlanEvent(
                at=r.at,
                actor=r.actor,
                action=r.action,
                item_id=r.item_id,
                from_state=r.from_state,
                to_state=r.to_state,
                details=dict(r.details or {}),
            )
            for r in rows
        ]

    def summaries(
        self, *, within: Collection[str] | None = None, limit: int = 50, offset: int = 0
    ) -> list[PlanSummary]:
        # Plans are made by people, a few per day at most: their headers are read whole and
        # the owner rule applied here (owners is a JSON list, queried alike on both engines),
        # then the items of the page's plans counted in one grouped query.
        headers = self.session.scalars(select(ChangePlan).order_by(ChangePlan.id.desc())).all()
        allowed = None if within is None else set(within)
        chosen = [row for row in headers if allowed is None or set(row.owners or ()) <= allowed][
            offset : offset + limit
        ]
        counted: dict[int, dict[str, int]] = {row.id: count_states(()) for row in chosen}
        if counted:
            by_state = self.session.execute(
                select(ChangePlanItem.plan_id, ChangePlanItem.state, func.count())
                .where(ChangePlanItem.plan_id.in_(counted))
                .group_by(ChangePlanItem.plan_id, ChangePlanItem.state)
            )
            for plan_id, state, number in by_state:
                counted[plan_id][state] = number
        return [
            PlanSummary(
                id=row.id,
                created_at=row.created_at,
                created_by=row.created_by,
                goal=row.goal,
                owners=tuple(row.owners or ()),
                owner_kind=row.owner_kind,
                snapshot_id=row.snapshot_id,
                counts=counted[row.id],
            )
            for row in chosen
        ]

    def open_plan_ids(self) -> list[int]:
        """Plans with an item handed to SOR and not yet confirmed (submitted or pending)."""
        open_states = [ItemState.SUBMITTED.value, ItemState.PENDING.value]
        return list(
            self.session.scalars(
                select(ChangePlanItem.plan_id)
                .where(ChangePlanItem.state.in_(open_states))
                .distinct()
                .order_by(ChangePlanItem.plan_id)
            )
        )

    def change_states(
        self,
        plan_id: int,
        changes: Iterable[StateChange],
        *,
        at: datetime,
        actor: str,
        action: str,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Apply ``changes``; records an event for each item whose state changes, and one for
        the plan. Returns how many items changed state."""
        by_id = {c.item_id: c for c in changes}
        rows = self.session.scalars(
            select(ChangePlanItem).where(ChangePlanItem.plan_id == plan_id)
        ).all()
        changed = 0
        for row in rows:
            change = by_id.get(row.id)
            if change is None:
                continue
            if change.snapshot_id is not None:
                row.verified_snapshot_id = change.snapshot_id
            if row.state == change.to_state.value:
                continue
            self.session.add(
                ChangePlanEvent(
                    plan_id=plan_id,
                    item_id=row.id,
                    at=at,
                    actor=actor,
                    action=action,
                    from_state=row.state,
                    to_state=change.to_state.value,
                    details=change.details or {},
                )
            )
            row.state = change.to_state.value
            row.updated_at = at
            changed += 1
        self.session.add(
            ChangePlanEvent(
                plan_id=plan_id,
                at=at,
                actor=actor,
                action=action,
                details={**(details or {}), "changed": changed},
            )
        )
        self.session.flush()
        return changed
