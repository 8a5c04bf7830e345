"""Use case: who could no longer be reached if the configured conversion paths ended on a date.

Every answer comes from the routing :class:`Resolver` itself (no second copy of its rules): for
each active GLN that takes the correspondence message in any syntax, a ``correspondence``
request from each sender syntax is resolved on the cut-over date ``on`` and, for comparison, on
``today`` (the snapshot's date). A receiver is *lost* for a sender syntax when it is delivered
today and rejected with ``MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE`` on ``on``. Receivers that
are rejected either way (closed, inactive, no VANS) are not lost: they were never reached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from soredi_sync.domain.audit import CORRESPONDENCE, AuditContext, AuditView, Owner
from soredi_sync.domain.routing import Decision, Reason, Resolver, RouteRequest, SnapshotRef


@dataclass(frozen=True, slots=True)
class LostReceiver:
    """A receiver one sender syntax reaches today but not on the cut-over date."""

    gln: str
    owner: Owner | None
    vans: str | None
    message_types: tuple[str, ...]  # the correspondence types it advertises
    reached_today_by: tuple[str, ...]  # the conversion steps that reach it today


@dataclass(frozen=True, slots=True)
class SenderCutover:
    sender_syntax: str
    lost: tuple[LostReceiver, ...]

    @property
    def count(self) -> int:
        return len(self.lost)


@dataclass(frozen=True)
class CutoverReport:
    snapshot: SnapshotRef
    today: date
    on: date
    receivers: int  # correspondence receivers considered (after owner scoping)
    senders: tuple[SenderCutover, ...]

    @property
    def counts(self) -> dict[str, int]:
        return {s.sender_syntax: s.count for s in self.senders}

    def lost_for(self, sender_syntax: str) -> tuple[LostReceiver, ...]:
        for sender in self.senders:
            if sender.sender_syntax == sender_syntax:
                return sender.lost
        return ()


def cutover(
    resolver: Resolver,
    on: date,
    *,
    audit_context: AuditContext,
    owners: Iterable[str] | None = None,
    today: date | None = None,
) -> CutoverReport:
    """Receivers each sender syntax would lose if the conversions ended on ``on``.

    :param owners: only receivers whose institution owner (SOR-ID) is one of these
    :param today: the comparison date; default: the day the resolver's snapshot was taken
    """
    registry = resolver.index.registry
    today = today or resolver.index.snapshot.taken_at.date()
    view = AuditView(registry, audit_context, today)
    correspondence = {
        mt.code for mt in audit_context.message_types.for_business_message(CORRESPONDENCE)
    }
    preference = resolver.policy.syntax_preference
    syntaxes = sorted(
        {mt.syntax for mt in audit_context.message_types.for_business_message(CORRESPONDENCE)},
        key=lambda s: (preference.index(s) if s in preference else len(preference), s),
    )
    wanted = set(owners) if owners is not None else None

    receivers: list[tuple[str, tuple[str, ...], Owner | None]] = []
    for gln, record in sorted(registry.glns.items()):
        if not record.active:
            continue
        types = tuple(sorted(view.types_of(gln) & correspondence))
        if not types:
            continue
        carrier = view.carrier_by_gln.get(gln)
        if carrier is None and record.owner_sor_id:
            carrier = registry.units.get(record.owner_sor_id)
        owner = view.owner_of_unit(carrier)
        if wanted is not None and (owner is None or owner.sor_id not in wanted):
            continue
        receivers.append((gln, types, owner))

    senders = []
    for syntax in syntaxes:
        lost = []
        for gln, types, owner in receivers:
            then = resolver.resolve(
                RouteRequest(CORRESPONDENCE, syntax, receiver_gln=gln, at=on), today
            )
            if then.reason is not Reason.UNABLE_TO_RECEIVE_MSG_TYPE:
                continue
            now = resolver.resolve(
                RouteRequest(CORRESPONDENCE, syntax, receiver_gln=gln, at=today), today
            )
            if now.decision is not Decision.DELIVER:
                continue
            lost.append(
                LostReceiver(
                    gln=gln,
                    owner=owner,
                    vans=registry.glns[gln].vans,
                    message_types=types,
                    reached_today_by=tuple(plan.step for plan in now.conversion),
                )
            )
        senders.append(SenderCutover(syntax, tuple(lost)))
    return CutoverReport(
        snapshot=resolver.index.snapshot,
        today=today,
        on=on,
        receivers=len(receivers),
        senders=tuple(senders),
    )
