"""The traffic counts in memory (:class:`~soredi_sync.ports.storage.TrafficRepository`), over
the fake decision log, for unit tests of the services."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Protocol

import orjson

from soredi_sync.domain.traffic import (
    CONVERTED,
    NATIVE,
    REJECTED,
    LoggedGroup,
    LoggedQuestion,
    TrafficCount,
    TrafficTotal,
)
from soredi_sync.ports.records import DecisionEntry


class FakeDecisionLog(Protocol):
    entries: list[DecisionEntry]


class FakeTrafficRepository:
    def __init__(self, log: FakeDecisionLog) -> None:
        self._log = log  # the fake decision log (its entries are replaced on rollback)
        self.counts_by_day: dict[date, list[TrafficCount]] = {}
        self.counted_through: date | None = None
        self.purged_before: datetime | None = None

    def _logged(self, start: datetime, end: datetime) -> list[DecisionEntry]:
        return [e for e in self._log.entries if start <= e.decided_at < end]

    def logged_groups(self, start: datetime, end: datetime) -> list[LoggedGroup]:
        groups: Counter[tuple[object, ...]] = Counter()
        for e in self._logged(start, end):
            at = (e.facts or {}).get("at")
            groups[
                (
                    date.fromisoformat(at) if at else None,
                    e.receiver_gln,
                    e.receiver_sor_id,
                    e.address_gln,
                    e.address_sor_id,
                    e.sender_gln,
                    e.sender_sor_id,
                    e.business_message,
                    e.sender_syntax,
                    e.outcome,
                    e.reason,
                    e.conversion,
                )
            ] += 1
        return [LoggedGroup(*key, n) for key, n in groups.items()]  # type: ignore[arg-type, call-arg]

    def logged_questions(self, start: datetime, end: datetime) -> list[LoggedQuestion]:
        questions: Counter[tuple[object, ...]] = Counter()
        for e in self._logged(start, end):
            facts = None if e.facts is None else orjson.dumps(e.facts).decode()
            questions[
                (
                    e.receiver_gln,
                    e.receiver_sor_id,
                    e.sender_gln,
                    e.sender_sor_id,
                    e.business_message,
                    e.sender_syntax,
                    e.outcome,
                    facts,
                )
            ] += 1
        return [LoggedQuestion(*key, n) for key, n in questions.items()]  # type: ignore[arg-type, call-arg]

    def replace_day(self, logged_on: date, counts: Sequence[TrafficCount]) -> None:
        self.counts_by_day[logged_on] = list(counts)

    def oldest_logged(self) -> datetime | None:
        return min((e.decided_at for e in self._log.entries), default=None)

    def state(self) -> tuple[date | None, datetime | None]:
        return self.counted_through, self.purged_before

    def set_state(
        self, *, counted_through: date | None = None, purged_before: datetime | None = None
    ) -> None:
        if counted_through and (not self.counted_through or counted_through > self.counted_through):
            self.counted_through = counted_through
        if purged_before and (not self.purged_before or purged_before > self.purged_before):
            self.purged_before = purged_before

    def counts(
        self, first: date, last: date, owners: frozenset[str] = frozenset()
    ) -> list[TrafficCount]:
        found = [
            c
            for counts in self.counts_by_day.values()
            for c in counts
            if first <= c.day <= last
            and (not owners or c.receiver_owner in owners or c.sender_owner in owners)
        ]
        return sorted(found, key=lambda c: c.day)

    def receiver_totals(
        self, first: date, last: date, glns: Collection[str] | None = None
    ) -> dict[str, TrafficTotal]:
        sums: dict[str, Counter[str]] = {}
        for c in self.counts(first, last):
            if c.receiver_gln and (glns is None or c.receiver_gln in glns):
                sums.setdefault(c.receiver_gln, Counter())[c.delivery] += c.messages
        return {
            gln: TrafficTotal((gln,), s[NATIVE], s[CONVERTED], s[REJECTED])
            for gln, s in sums.items()
        }
