"""Use case: who could no longer be reached if the configured conversion paths ended on a date.

Every answer comes from the routing :class:`Resolver` itself (no second copy of its rules): for
each active GLN that takes the correspondence message in any syntax, a ``correspondence``
request from each sender syntax is resolved on the cut-over date ``on`` and, for comparison, on
``today`` (the snapshot's date). A receiver is *lost* for a sender syntax when it is delivered
today and rejected with ``MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE`` on ``on``. Receivers that
are rejected either way (closed, inactive, no VANS) are not lost: they were never reached.

:class:`CutoverCache` (``App.cutover_cache``) keeps the whole registry's report of a snapshot and
date, so the API's ``GET /v1/cutover`` and the console decide each once per process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from soredi_sync.domain.audit import CORRESPONDENCE, AuditContext, AuditView, Owner
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import (
    Decision,
    Reason,
    Resolver,
    RouteRequest,
    RoutingPolicy,
    SnapshotRef,
)
from soredi_sync.errors import NoSnapshot
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.once import OnceCache


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


Receiver = tuple[str, tuple[str, ...], Owner | None]  # GLN, correspondence types, owner


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
    report, _ = _decide(resolver, on, audit_context, owners, today)
    return report


def _decide(
    resolver: Resolver,
    on: date,
    audit_context: AuditContext,
    owners: Iterable[str] | None,
    today: date | None,
) -> tuple[CutoverReport, list[Receiver]]:
    """The report, and the receivers it considered."""
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

    receivers: list[Receiver] = []
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
    report = CutoverReport(
        snapshot=resolver.index.snapshot,
        today=today,
        on=on,
        receivers=len(receivers),
        senders=tuple(senders),
    )
    return report, receivers


@dataclass(frozen=True)
class _Decided:
    """The unrestricted report of one (snapshot, date, today, policy), and what restricting it
    to owners needs. It holds the policy, message types and context it was decided with, so
    while it is cached their ``id()`` in its key cannot be taken by other objects."""

    report: CutoverReport
    receivers_by_owner: Mapping[str, int]  # owner SOR-ID -> correspondence receivers
    pinned: tuple[RoutingPolicy, MessageTypeRegistry, AuditContext]

    def restricted(self, owners: Iterable[str] | None) -> CutoverReport:
        """The report :func:`cutover` gives for ``owners`` (None: every owner)."""
        if owners is None:
            return self.report
        wanted = set(owners)
        senders = tuple(
            SenderCutover(
                sender.sender_syntax,
                tuple(r for r in sender.lost if r.owner is not None and r.owner.sor_id in wanted),
            )
            for sender in self.report.senders
        )
        receivers = sum(self.receivers_by_owner.get(owner, 0) for owner in wanted)
        return replace(self.report, receivers=receivers, senders=senders)


_Key = tuple[int, datetime, date, date, int, int, int]


class CutoverCache:
    """Cut-over reports of the whole registry, by snapshot, date and policy, once per process.

    A report resolves every correspondence receiver for each sender syntax (about 2 s on the
    national profile) and a stored snapshot never changes, so each (snapshot, date) is decided
    once; an owner-restricted report is the whole registry's narrowed to those owners, which
    is what :func:`cutover` with ``owners`` gives, at no cost. One per
    :class:`~soredi_sync.bootstrap.App`; callers get shared reports and never change them.

    :param size: reports kept (the dates asked for last, least recently used dropped first)
    """

    def __init__(self, size: int = 16) -> None:
        self._decided: OnceCache[_Key, _Decided] = OnceCache(size)

    def report(
        self,
        resolver: Resolver,
        on: date,
        *,
        audit_context: AuditContext,
        owners: Iterable[str] | None = None,
        today: date | None = None,
    ) -> CutoverReport:
        """What :func:`cutover` answers for the same arguments. A (snapshot, date) is decided by
        one caller at a time (others asking for it wait and share the answer); other dates are
        not held up meanwhile."""
        today = today or resolver.index.snapshot.taken_at.date()
        snapshot = resolver.index.snapshot
        # With the time the snapshot was taken: an id alone could name another snapshot if a
        # database were emptied and filled again under a running process (as tests do).
        key: _Key = (
            snapshot.id,
            snapshot.taken_at,
            on,
            today,
            id(resolver.policy),
            id(resolver.message_types),
            id(audit_context),
        )

        def decide() -> _Decided:
            report, receivers = _decide(resolver, on, audit_context, None, today)
            by_owner = Counter(o.sor_id for _, _, o in receivers if o is not None)
            pinned = (resolver.policy, resolver.message_types, audit_context)
            return _Decided(report, dict(by_owner), pinned)

        return self._decided.get(key, decide).restricted(owners)

    def cutover_on(
        self,
        uow: UnitOfWork,
        resolver: Resolver,
        on: date,
        *,
        owners: Iterable[str] | None,
        context: AuditContext,
    ) -> tuple[SnapshotInfo, CutoverReport]:
        """As ``queries.cutover_on``, from the cache: the report decided on the resolver's
        snapshot, compared with the day that snapshot describes, and that snapshot.

        :raises NoSnapshot: the resolver's snapshot is gone
        """
        info = uow.registry.get_snapshot(resolver.index.snapshot.id)
        if info is None:
            raise NoSnapshot()
        report = self.report(
            resolver, on, audit_context=context, owners=owners, today=info.effective_date
        )
        return info, report
