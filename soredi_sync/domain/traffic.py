"""Routing traffic: the decision log counted per day, receiver, sender and outcome.

The decision log is kept for a retention period; its counts are kept for good. A count is of
the decisions *logged* on one Danish day (``logged_on``), split by the day each message was
routed *for* (``day``: the question's ``at`` when it gave one, else the day it was logged),
by receiver (the address the resolver found, else what the question named), by sender (as the
question named it), by business message and sender syntax, and by outcome: delivered natively,
delivered after conversion (by its steps), or rejected (by reason). Counting one logged day
again replaces that day's counts, so recounting is always safe.

Owners are the receiver's and sender's institution owners (SOR-IDs) in the snapshot given to
:func:`count_traffic`; the counts hold identifiers, owners, reasons and numbers only — no
message id, no content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from soredi_sync.domain.audit import Finding
from soredi_sync.domain.model import Registry

NATIVE = "native"
CONVERTED = "converted"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class LoggedGroup:
    """Decisions logged on one day that agree on everything counted (as the log's query
    groups them): ``at`` is the routing date the questions asked for, if any."""

    at: date | None
    receiver_gln: str | None
    receiver_sor_id: str | None
    address_gln: str | None
    address_sor_id: str | None
    sender_gln: str | None
    sender_sor_id: str | None
    business_message: str
    sender_syntax: str
    outcome: str  # the decision log's: "deliver" | "reject"
    reason: str | None
    conversion: str | None
    decisions: int


@dataclass(frozen=True, slots=True)
class LoggedQuestion:
    """Decisions logged in a window that asked the same question, and how they went."""

    receiver_gln: str | None
    receiver_sor_id: str | None
    sender_gln: str | None
    sender_sor_id: str | None
    business_message: str
    sender_syntax: str
    outcome: str  # as logged: "deliver" | "reject"
    facts: str | None  # the facts' JSON text; None: logged before they were kept
    decisions: int


@dataclass(frozen=True, slots=True)
class TrafficCount:
    """How many messages of one kind went from one sender to one receiver on one day."""

    logged_on: date
    day: date
    receiver_gln: str | None
    receiver_sor_id: str | None
    receiver_owner: str | None
    sender_gln: str | None
    sender_sor_id: str | None
    sender_owner: str | None
    business_message: str
    sender_syntax: str
    delivery: str  # NATIVE | CONVERTED | REJECTED
    reason: str | None
    conversion: str | None
    messages: int


@dataclass(frozen=True)
class Owners:
    """Who owns what in one snapshot: a unit's institution owner, and a GLN's."""

    of_unit: Callable[[str], str | None]
    of_gln: Callable[[str], str | None]

    def of(self, sor_id: str | None, gln: str | None) -> str | None:
        """The owner of the unit when it is known, else of the GLN."""
        owner = self.of_unit(sor_id) if sor_id else None
        if owner is None and gln:
            owner = self.of_gln(gln)
        return owner


def delivery_of(outcome: str, conversion: str | None) -> str:
    """``native``, ``converted`` or ``rejected``, from a logged outcome and its steps."""
    if outcome == "reject":
        return REJECTED
    return CONVERTED if conversion else NATIVE


class _Kind(NamedTuple):
    """What a count is of (``TrafficCount`` without the logged day and the number)."""

    day: date
    receiver_gln: str | None
    receiver_sor_id: str | None
    receiver_owner: str | None
    sender_gln: str | None
    sender_sor_id: str | None
    sender_owner: str | None
    business_message: str
    sender_syntax: str
    delivery: str
    reason: str | None
    conversion: str | None


def count_traffic(
    logged_on: date, groups: Iterable[LoggedGroup], owners: Owners
) -> list[TrafficCount]:
    """The counts of the decisions logged on ``logged_on``, one per distinct kind."""
    counts: Counter[_Kind] = Counter()
    for g in groups:
        receiver_gln = g.address_gln or g.receiver_gln
        receiver_sor_id = g.address_sor_id or g.receiver_sor_id
        kind = _Kind(
            g.at or logged_on,
            receiver_gln,
            receiver_sor_id,
            owners.of(receiver_sor_id, receiver_gln),
            g.sender_gln,
            g.sender_sor_id,
            owners.of(g.sender_sor_id, g.sender_gln),
            g.business_message,
            g.sender_syntax,
            delivery_of(g.outcome, g.conversion),
            g.reason,
            g.conversion,
        )
        counts[kind] += g.decisions
    return [TrafficCount(logged_on, *kind, n) for kind, n in counts.items()]


def owners_in(registry: Registry, carriers: Mapping[str, tuple[str, ...]]) -> Owners:
    """Owners as one snapshot has them: a unit's ``owner_sor_id``; a GLN's, that of the first
    unit carrying it as its own (``carriers``: SOR-IDs by GLN, sorted), else that of the unit
    its location record names (``domain/ownership.py``'s rule, one owner)."""
    units = registry.units
    glns = registry.glns

    def of_unit(sor_id: str) -> str | None:
        unit = units.get(sor_id)
        return unit.owner_sor_id if unit is not None else None

    def of_gln(gln: str) -> str | None:
        for sor_id in carriers.get(gln, ()):
            owner = of_unit(sor_id)
            if owner:
                return owner
        record = glns.get(gln)
        return of_unit(record.owner_sor_id) if record and record.owner_sor_id else None

    return Owners(of_unit, of_gln)


@dataclass(frozen=True, slots=True)
class TrafficTotal:
    """Messages of one receiver, sender or sender-receiver pair in a window, by delivery."""

    key: tuple[str | None, ...]  # (GLN, SOR-ID, owner) of each party
    native: int = 0
    converted: int = 0
    rejected: int = 0

    @property
    def messages(self) -> int:
        return self.native + self.converted + self.rejected


Party = tuple[str | None, ...]


def _receiver(c: TrafficCount) -> Party:
    return (c.receiver_gln, c.receiver_sor_id, c.receiver_owner)


def _sender(c: TrafficCount) -> Party:
    return (c.sender_gln, c.sender_sor_id, c.sender_owner)


def _pair(c: TrafficCount) -> Party:
    return _sender(c) + _receiver(c)


BY: Mapping[str, Callable[[TrafficCount], Party]] = {
    "receiver": _receiver,
    "sender": _sender,
    "pair": _pair,
}


def totals(counts: Iterable[TrafficCount], by: str) -> list[TrafficTotal]:
    """``counts`` summed per receiver, sender or pair (``by``), most messages first."""
    key_of = BY[by]
    sums: dict[tuple[str | None, ...], list[int]] = {}
    slot = {NATIVE: 0, CONVERTED: 1, REJECTED: 2}
    for c in counts:
        sums.setdefault(key_of(c), [0, 0, 0])[slot[c.delivery]] += c.messages
    found = [TrafficTotal(key, *numbers) for key, numbers in sums.items()]
    return sorted(found, key=lambda t: (-t.messages, tuple(p or "" for p in t.key)))


@dataclass(frozen=True, slots=True)
class WeightedFinding:
    """A finding with the traffic that touched its GLN: messages converted and rejected there
    in the window cost something (a conversion, a lost message); native ones did not."""

    finding: Finding
    native: int
    converted: int
    rejected: int

    @property
    def cost(self) -> int:
        return self.converted + self.rejected


def weigh_findings(
    findings: Iterable[Finding], received: Mapping[str, TrafficTotal]
) -> list[WeightedFinding]:
    """``findings`` with the traffic their GLN received (``received``: totals by receiver GLN),
    those that cost the most messages first; a finding without a GLN or traffic costs none."""
    weighed = []
    for f in findings:
        total = received.get(f.gln) if f.gln else None
        if total is None:
            weighed.append(WeightedFinding(f, 0, 0, 0))
        else:
            weighed.append(WeightedFinding(f, total.native, total.converted, total.rejected))
    return sorted(weighed, key=lambda w: (-w.cost, -w.native, w.finding.code, *w.finding.key))
