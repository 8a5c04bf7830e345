"""Use case: answer routing questions on the current snapshot, never on a half-synced one.

The in-memory :class:`RoutingIndex` is keyed by snapshot id. Before each decision the service
asks the database for the current snapshot id (one primary-key look-up); when a sync has landed
a newer snapshot, the index is rebuilt and swapped before any further answer, so no decision
after a sync is made on the old snapshot once the new one is current.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from soredi_sync.domain.days import danish_day
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import (
    Decision,
    Resolver,
    RouteDecision,
    RouteRequest,
    RoutingIndex,
    RoutingInputError,
    RoutingPolicy,
    SnapshotRef,
)
from soredi_sync.errors import NoSnapshot
from soredi_sync.ports.records import TokenRecord
from soredi_sync.ports.storage import CurrentSnapshot, UnitOfWork
from soredi_sync.services.tokens import OutsideOwners, may_route_to

logger = logging.getLogger(__name__)

OUTSIDE_OWNERS = "the receiver is outside the owners this token is restricted to"

# Decision dates are Danish calendar days: a message sent at 00:30 local time on 1 January
# is decided on 1 January, although it is still 31 December in UTC.


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision served to a caller: when, and how long the resolver took."""

    decision: RouteDecision
    decided_at: datetime
    resolve_seconds: float

    @property
    def outcome(self) -> str:
        """``reject``, ``convert`` (delivered after a conversion) or ``deliver``."""
        if self.decision.decision is Decision.REJECT:
            return "reject"
        return "convert" if self.decision.conversion else "deliver"


class RoutingService:
    """Decisions on the current snapshot, with the index rebuilt when a new snapshot lands.

    :param current: the cheap "which snapshot is current" look-up before each decision
    :param uow_factory: for loading a snapshot when the index must be (re)built
    """

    def __init__(
        self,
        current: CurrentSnapshot,
        uow_factory: Callable[[], UnitOfWork],
        policy: RoutingPolicy,
        message_types: MessageTypeRegistry,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._current = current
        self._uow_factory = uow_factory
        self._policy = policy
        self._message_types = message_types
        self._clock = clock
        self._resolver: Resolver | None = None
        self._lock = threading.Lock()

    @property
    def policy(self) -> RoutingPolicy:
        return self._policy

    def close(self) -> None:
        """Give back the current-snapshot look-up's connections (at shutdown)."""
        self._current.close()

    def resolver(self) -> Resolver:
        """The resolver for the current snapshot, rebuilding the index if a new one landed.

        :raises NoSnapshot: nothing has been synced yet
        """
        current_id = self._current.current_snapshot_id()
        if current_id is None:
            raise NoSnapshot()
        resolver = self._resolver
        if resolver is not None and resolver.index.snapshot.id == current_id:
            return resolver
        with self._lock:
            # Another thread may have rebuilt it while this one waited.
            resolver = self._resolver
            if resolver is None or resolver.index.snapshot.id != current_id:
                resolver = self._build(current_id)
                self._resolver = resolver
        return resolver

    def _build(self, snapshot_id: int) -> Resolver:
        with self._uow_factory() as uow:
            info = uow.registry.get_snapshot(snapshot_id)
            if info is None:
                raise NoSnapshot()
            registry = uow.registry.load_registry(snapshot_id)
        index = RoutingIndex.build(SnapshotRef(info.id, info.taken_at), registry)
        # Half a million long-lived records would otherwise be rescanned by every full
        # collection of the cyclic GC, stalling requests for tens of milliseconds each time.
        # Frozen objects are still freed by reference counting when a newer index replaces
        # this one (the records hold no reference cycles). Freezing moves every tracked
        # object out of the collector's reach, garbage cycles included: unfreeze what the
        # last rebuild froze and collect first, so each rebuild pins only live objects (one
        # full collection per snapshot, not per request).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        logger.info(
            "Routing index built for snapshot %d (%d units, %d GLNs)",
            snapshot_id,
            len(registry.units),
            len(registry.glns),
        )
        return Resolver(index, self._policy, self._message_types)

    def today(self) -> date:
        return danish_day(self._clock())

    def now(self) -> datetime:
        return self._clock()

    def route(self, request: RouteRequest) -> RouteDecision:
        """Decide ``request`` on the current snapshot.

        :raises NoSnapshot: nothing has been synced yet
        :raises RoutingInputError: the request names an unknown business message or syntax
        """
        return self.resolver().resolve(request, self.today())

    def decide_batch(
        self, requests: Sequence[RouteRequest], caller: TokenRecord
    ) -> list[Decided | RoutingInputError | OutsideOwners]:
        """Decide each of ``requests`` for ``caller``, all on one snapshot (the current one
        when the batch starts) and one day; an item that cannot be decided is its error.

        :raises NoSnapshot: nothing has been synced yet
        """
        resolver = self.resolver()
        today = self.today()
        now = self.now()
        index = resolver.index
        answers: list[Decided | RoutingInputError | OutsideOwners] = []
        for request in requests:
            started = time.perf_counter()
            try:
                decision = resolver.resolve(request, today)
            except RoutingInputError as exc:
                answers.append(exc)
                continue
            resolve_seconds = time.perf_counter() - started
            if not may_route_to(caller, index, decision.address):
                answers.append(OutsideOwners(OUTSIDE_OWNERS))
                continue
            answers.append(Decided(decision, now, resolve_seconds))
        return answers

    def decide(self, request: RouteRequest, caller: TokenRecord) -> Decided:
        """Decide ``request`` on the current snapshot for ``caller``.

        One resolver makes the decision and the owner check, so both see the same snapshot.

        :raises NoSnapshot: nothing has been synced yet
        :raises RoutingInputError: the request names an unknown business message or syntax
        :raises OutsideOwners: ``caller`` is restricted to owners and the receiver is not theirs
        """
        resolver = self.resolver()
        today = self.today()
        started = time.perf_counter()
        decision = resolver.resolve(request, today)
        resolve_seconds = time.perf_counter() - started
        if not may_route_to(caller, resolver.index, decision.address):
            raise OutsideOwners(OUTSIDE_OWNERS)
        return Decided(decision, self.now(), resolve_seconds)
