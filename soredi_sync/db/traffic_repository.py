"""The decision log's counts (``traffic_counts``) and how far they reach (``traffic_state``).

The log is grouped in the database (one row per distinct kind of decision, not per decision);
the routing date a question asked for is read from its facts with the JSON operators of each
engine, through SQLAlchemy's JSON index expression.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import date, datetime
from operator import attrgetter
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import Table, Text, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from soredi_sync.db.bulk import bulk_insert
from soredi_sync.db.models import DecisionRecord, TrafficRecord, TrafficState
from soredi_sync.domain.traffic import (
    CONVERTED,
    NATIVE,
    REJECTED,
    LoggedGroup,
    LoggedQuestion,
    TrafficCount,
    TrafficTotal,
)

_COUNT_COLUMNS = tuple(f.name for f in fields(TrafficCount))
_COUNT_VALUES = attrgetter(*_COUNT_COLUMNS)  # a row's values (dataclasses.astuple copies)
_STATE_ID = 1

_GROUPED = (
    DecisionRecord.receiver_gln,
    DecisionRecord.receiver_sor_id,
    DecisionRecord.address_gln,
    DecisionRecord.address_sor_id,
    DecisionRecord.sender_gln,
    DecisionRecord.sender_sor_id,
    DecisionRecord.business_message,
    DecisionRecord.sender_syntax,
    DecisionRecord.outcome,
    DecisionRecord.reason,
    DecisionRecord.conversion,
)


class SqlAlchemyTrafficRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def logged_groups(self, start: datetime, end: datetime) -> list[LoggedGroup]:
        at = DecisionRecord.facts["at"].as_string()
        rows = self.session.execute(
            select(at, *_GROUPED, func.count())
            .where(DecisionRecord.decided_at >= start, DecisionRecord.decided_at < end)
            .group_by(at, *_GROUPED)
        )
        return [
            LoggedGroup(date.fromisoformat(row[0]) if row[0] else None, *row[1:]) for row in rows
        ]

    def replace_day(self, logged_on: date, counts: Sequence[TrafficCount]) -> None:
        self.session.execute(delete(TrafficRecord).where(TrafficRecord.logged_on == logged_on))
        table = typing_cast(Table, TrafficRecord.__table__)
        bulk_insert(self.session, table, _COUNT_COLUMNS, map(_COUNT_VALUES, counts))

    def oldest_logged(self) -> datetime | None:
        return self.session.scalar(select(func.min(DecisionRecord.decided_at)))

    def state(self) -> tuple[date | None, datetime | None]:
        row = self.session.get(TrafficState, _STATE_ID)
        return (None, None) if row is None else (row.counted_through, row.purged_before)

    def set_state(
        self, *, counted_through: date | None = None, purged_before: datetime | None = None
    ) -> None:
        row = self.session.get(TrafficState, _STATE_ID, with_for_update=True)
        if row is None:
            row = TrafficState(id=_STATE_ID)
            self.session.add(row)
        if counted_through and (not row.counted_through or counted_through > row.counted_through):
            row.counted_through = counted_through
        if purged_before and (not row.purged_before or purged_before > row.purged_before):
            row.purged_before = purged_before
        self.session.flush()

    def counts(
        self, first: date, last: date, owners: frozenset[str] = frozenset()
    ) -> list[TrafficCount]:
        query = select(*(getattr(TrafficRecord, c) for c in _COUNT_COLUMNS)).where(
            TrafficRecord.day >= first, TrafficRecord.day <= last
        )
        if owners:
            mine = or_(
                TrafficRecord.receiver_owner.in_(owners), TrafficRecord.sender_owner.in_(owners)
            )
            query = query.where(mine)
        rows: Any = self.session.execute(query.order_by(TrafficRecord.day, TrafficRecord.id))
        return [TrafficCount(*row) for row in rows]

    def receiver_totals(
        self, first: date, last: date, glns: Collection[str] | None = None
    ) -> dict[str, TrafficTotal]:
        received = select(
            TrafficRecord.receiver_gln, TrafficRecord.delivery, func.sum(TrafficRecord.messages)
        ).where(
            TrafficRecord.day >= first,
            TrafficRecord.day <= last,
            TrafficRecord.receiver_gln.is_not(None),
        )
        if glns is not None:
            received = received.where(TrafficRecord.receiver_gln.in_(sorted(glns)))
        sums: dict[str, dict[str, int]] = {}
        rows: Any = self.session.execute(
            received.group_by(TrafficRecord.receiver_gln, TrafficRecord.delivery)
        )
        for gln, delivery, messages in rows:
            sums.setdefault(gln, {})[delivery] = int(messages)
        return {
            gln: TrafficTotal(
                (gln,), found.get(NATIVE, 0), found.get(CONVERTED, 0), found.get(REJECTED, 0)
            )
            for gln, found in sums.items()
        }

    def logged_questions(self, start: datetime, end: datetime) -> list[LoggedQuestion]:
        facts = cast(DecisionRecord.facts, Text)  # json has no equality on PostgreSQL
        asked = (
            DecisionRecord.receiver_gln,
            DecisionRecord.receiver_sor_id,
            DecisionRecord.sender_gln,
            DecisionRecord.sender_sor_id,
            DecisionRecord.business_message,
            DecisionRecord.sender_syntax,
            DecisionRecord.outcome,
            facts,
        )
        rows = self.session.execute(
            select(*asked, func.count())
            .where(DecisionRecord.decided_at >= start, DecisionRecord.decided_at < end)
            .group_by(*asked)
        )
        return [LoggedQuestion(*row) for row in rows]
