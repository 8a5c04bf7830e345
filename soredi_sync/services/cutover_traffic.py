"""Use case: the cut-over priced in messages — the logged traffic of a window decided again as
if the conversion paths ended on a date.

Every decision logged in the window (the Danish days ``first``..``last`` it was logged on) whose
question's facts were kept (``domain/routing/facts.py``; decisions logged before they were kept
cannot be replayed and are counted apart) is decided again by the same resolver, on the
resolver's snapshot, for the cut-over date. A message is *lost* when it was delivered as logged
and is rejected on the date. Identical questions (same receiver, sender, message, syntax and
facts) are decided once and counted as often as they were logged.

An owner-restricted caller gets the messages whose receiver or sender belongs to its owners.

:func:`price_plan` is the same replay for a change plan: the window's messages to the plan's
GLNs decided today as the registry stands and as it would with the plan carried out.
"""

from __future__ import annotations

from collections import ChainMap, Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import orjson

from soredi_sync.domain.plans import planned_types
from soredi_sync.domain.routing import (
    Decision,
    Resolver,
    RouteDecision,
    RouteRequest,
    RoutingIndex,
    SnapshotRef,
)
from soredi_sync.domain.routing.facts import question_of
from soredi_sync.domain.traffic import CONVERTED, NATIVE, REJECTED, LoggedQuestion, Owners
from soredi_sync.ports.records import Plan
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.traffic import day_bounds


@dataclass(frozen=True)
class PricedCutover:
    """The window's logged messages decided again for ``on``."""

    on: date
    first: date
    last: date
    snapshot_id: int
    logged: int  # decisions logged in the window (in scope)
    not_replayable: int  # of those, logged without their facts
    delivered: int  # replayed ones delivered as logged
    lost: int  # delivered as logged, rejected on ``on``
    by_receiver_owner: dict[str, int]
    by_sender_owner: dict[str, int]
    by_business_message: dict[str, int]
    by_vans: dict[str, int]
    by_reason: dict[str, int]  # the reason each lost message is rejected on ``on``

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def lost_per_day(self) -> float:
        return self.lost / self.days


def priced_json(priced: PricedCutover) -> dict[str, Any]:
    """A cut-over priced in messages, as the CLI's and the API's JSON give it."""
    return {
        "date": priced.on.isoformat(),
        "first": priced.first.isoformat(),
        "last": priced.last.isoformat(),
        "days": priced.days,
        "snapshot_id": priced.snapshot_id,
        "logged": priced.logged,
        "not_replayable": priced.not_replayable,
        "delivered": priced.delivered,
        "lost": priced.lost,
        "lost_per_day": round(priced.lost_per_day, 1),
        "by_receiver_owner": priced.by_receiver_owner,
        "by_sender_owner": priced.by_sender_owner,
        "by_business_message": priced.by_business_message,
        "by_vans": priced.by_vans,
        "by_reason": priced.by_reason,
    }


UNKNOWN = "(unknown)"  # an owner or VANS the snapshot does not know, or a party not named


def price_cutover(
    uow: UnitOfWork,
    resolver: Resolver,
    owners: Owners,
    on: date,
    *,
    window_days: int,
    today: date,
    restrict: frozenset[str] = frozenset(),
) -> PricedCutover:
    """The messages logged in the ``window_days`` days ending ``today`` that conversion
    ending on ``on`` would lose, by receiver owner, sender owner, business message, VANS and
    reason (``restrict``: only those whose receiver or sender belongs to these owners).
    Decided on ``resolver``'s snapshot, or on the one current on ``on`` when an older one
    describes that day (:func:`resolver_on`)."""
    first = today - timedelta(days=window_days - 1)
    start, end = day_bounds(first)[0], day_bounds(today)[1]
    questions = uow.traffic.logged_questions(start, end)
    replaying = _replaying(resolver_on(uow, resolver, on))
    return _price(questions, replaying, owners, on, first, today, restrict)


def resolver_on(uow: UnitOfWork, current: Resolver, on: date) -> Resolver:
    """The resolver a replay for ``on`` decides with: ``current`` (the current snapshot's), or,
    when ``on`` is a day an older snapshot describes, one on the snapshot current on that day
    (its registry loaded and indexed: seconds on the national profile)."""
    then = uow.registry.snapshot_on(on)
    if then is None or then.id == current.index.snapshot.id:
        return current
    index = RoutingIndex.build(
        SnapshotRef(then.id, then.taken_at), uow.registry.load_registry(then.id)
    )
    return Resolver(index, current.policy, current.message_types)


def _replaying(resolver: Resolver, index: RoutingIndex | None = None) -> Resolver:
    """A resolver like ``resolver`` (on ``index`` when given) that identifies each receiver
    once: a window of logged traffic asks for the same few thousand receivers again and again."""
    return Resolver(
        index or resolver.index, resolver.policy, resolver.message_types, remember_receivers=True
    )


def _price(
    questions: Iterable[LoggedQuestion],
    resolver: Resolver,
    owners: Owners,
    on: date,
    first: date,
    last: date,
    restrict: frozenset[str],
) -> PricedCutover:
    glns = resolver.index.registry.glns
    counters: dict[str, Counter[str]] = {
        k: Counter() for k in ("receiver", "sender", "message", "vans", "reason")
    }
    logged = not_replayable = delivered = lost = 0
    for q in questions:
        receiver_owner = owners.of(q.receiver_sor_id, q.receiver_gln)
        sender_owner = owners.of(q.sender_sor_id, q.sender_gln)
        if restrict and receiver_owner not in restrict and sender_owner not in restrict:
            continue
        logged += q.decisions
        if q.facts is None:
            not_replayable += q.decisions
            continue
        if q.outcome != "deliver":
            continue
        delivered += q.decisions
        question = route_request_of(q, on)
        assert question is not None  # it has its facts
        then = resolver.resolve(question, on)
        if then.decision is not Decision.REJECT:
            continue
        lost += q.decisions
        address = then.address
        owner = owners.of(address.sor_id, address.gln) or receiver_owner
        record = glns.get(address.gln) if address.gln else None
        vans = record.vans if record is not None else None
        counters["receiver"][owner or UNKNOWN] += q.decisions
        counters["sender"][sender_owner or UNKNOWN] += q.decisions
        counters["message"][q.business_message] += q.decisions
        counters["vans"][vans or UNKNOWN] += q.decisions
        counters["reason"][then.reason.value if then.reason else UNKNOWN] += q.decisions
    ranked = {k: dict(c.most_common()) for k, c in counters.items()}
    return PricedCutover(
        on=on,
        first=first,
        last=last,
        snapshot_id=resolver.index.snapshot.id,
        logged=logged,
        not_replayable=not_replayable,
        delivered=delivered,
        lost=lost,
        by_receiver_owner=ranked["receiver"],
        by_sender_owner=ranked["sender"],
        by_business_message=ranked["message"],
        by_vans=ranked["vans"],
        by_reason=ranked["reason"],
    )


def route_request_of(q: LoggedQuestion, on: date) -> RouteRequest | None:
    """The question ``q`` asked, for the date ``on`` (None when its facts were not kept)."""
    if q.facts is None:
        return None
    return question_of(
        {**orjson.loads(q.facts), "at": on.isoformat()},
        business_message=q.business_message,
        sender_syntax=q.sender_syntax,
        receiver_gln=q.receiver_gln,
        receiver_sor_id=q.receiver_sor_id,
    )


@dataclass(frozen=True)
class PlanTraffic:
    """The messages logged in a window to the GLNs a plan changes, decided today as the
    registry stands and as it would stand with the plan carried out."""

    plan_id: int
    first: date
    last: date
    messages: int  # logged messages whose address is one of the plan's GLNs (replayed)
    not_replayable: int  # messages to the plan's GLNs logged without their facts
    before: dict[str, int]  # delivery (native, converted, rejected) -> messages
    after: dict[str, int]

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def fewer_per_day(self, delivery: str) -> float:
        """How many fewer messages a day go ``delivery`` with the plan carried out."""
        return (self.before.get(delivery, 0) - self.after.get(delivery, 0)) / self.days


def price_plan(
    uow: UnitOfWork,
    resolver: Resolver,
    plan: Plan,
    *,
    window_days: int,
    today: date,
) -> PlanTraffic:
    """The window's logged traffic to ``plan``'s GLNs decided today without and with the plan
    (its items' types added and removed; the rest of the snapshot as it is)."""
    first = today - timedelta(days=window_days - 1)
    start, end = day_bounds(first)[0], day_bounds(today)[1]
    index = resolver.index
    changed = planned_types(index.types_by_gln, plan.items)
    planned = _replaying(
        resolver, replace(index, types_by_gln=ChainMap(changed, dict(index.types_by_gln)))
    )
    resolver = _replaying(resolver)
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    messages = not_replayable = 0
    for q in uow.traffic.logged_questions(start, end):
        question = route_request_of(q, today)
        if question is None:
            not_replayable += q.decisions if q.receiver_gln in changed else 0
            continue
        now = resolver.resolve(question, today)
        if now.address.gln not in changed:
            continue  # the plan changes nothing the decision reads
        then = planned.resolve(question, today)
        messages += q.decisions
        before[_delivery(now)] += q.decisions
        after[_delivery(then)] += q.decisions
    return PlanTraffic(plan.id, first, today, messages, not_replayable, dict(before), dict(after))


def _delivery(decision: RouteDecision) -> str:
    if decision.decision is Decision.REJECT:
        return REJECTED
    return CONVERTED if decision.conversion else NATIVE
