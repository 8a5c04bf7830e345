"""Storage ports: the repositories and the unit of work the services depend on.

``typing.Protocol`` classes: the SQLAlchemy adapters in :mod:`soredi_sync.db` and the in-memory
fakes in :mod:`soredi_sync.ports.fakes` both satisfy them without naming them. Repositories never
commit; the use case does, through its :class:`UnitOfWork`.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from soredi_sync.domain.diff import ChangeSet
from soredi_sync.domain.model import Capability, Gln, Registry, Unit
from soredi_sync.domain.plans import ItemDraft
from soredi_sync.domain.traffic import LoggedGroup, LoggedQuestion, TrafficCount, TrafficTotal
from soredi_sync.ports.records import (
    ChangeRecord,
    DecisionEntry,
    Delivery,
    DueDelivery,
    FhirVersion,
    OwnerMap,
    Plan,
    PlanEvent,
    PlanSummary,
    RunEnd,
    RunStatus,
    SnapshotInfo,
    StateChange,
    StuckDeliveries,
    Subscription,
    SyncRunInfo,
    TokenRecord,
    VersionSpan,
)


class RegistryRepository(Protocol):
    """Snapshots, the registry as of each of them, and the change feed."""

    def lock_snapshots(self) -> None:
        """Hold, until the transaction ends, the one lock every writer of snapshots takes."""
        ...

    def current_snapshot(self) -> SnapshotInfo | None: ...

    def current_snapshot_and_cursor(self) -> tuple[SnapshotInfo | None, int]: ...

    def get_snapshot(self, snapshot_id: int) -> SnapshotInfo | None: ...

    def snapshot_on(self, day: date) -> SnapshotInfo | None: ...

    def list_snapshots(self, limit: int = 20) -> list[SnapshotInfo]:
        """Newest first."""
        ...

    def load_registry(self, snapshot_id: int) -> Registry: ...

    def get_unit(self, sor_id: str, snapshot_id: int) -> Unit | None: ...

    def get_gln(self, gln: str, snapshot_id: int) -> Gln | None: ...

    def capabilities_of(self, gln: str, snapshot_id: int) -> list[Capability]: ...

    def children_of(self, sor_id: str, snapshot_id: int) -> list[Unit]: ...

    def units_owning(self, gln: str, snapshot_id: int) -> list[Unit]: ...

    def search_units(
        self,
        fragment: str,
        snapshot_id: int,
        *,
        owners: Collection[str] | None = None,
        limit: int = 50,
    ) -> list[Unit]:
        """Units whose name contains ``fragment`` (any case), by name; with ``owners``, only
        units of those institution owners; at most ``limit``."""
        ...

    def gln_history(self, gln: str) -> tuple[list[VersionSpan], list[VersionSpan]]: ...

    def unit_history(self, sor_id: str) -> list[VersionSpan]:
        """Every stored version of a unit, oldest first."""
        ...

    def changes_since(
        self, cursor: int, limit: int = 1000, up_to_snapshot: int | None = None
    ) -> list[ChangeRecord]: ...

    def last_cursor(self) -> int: ...

    def add_snapshot(
        self,
        registry: Registry,
        changes: ChangeSet,
        *,
        run_id: int,
        source: str,
        content_hash: str,
        baseline: bool,
        taken_at: datetime | None = None,
    ) -> SnapshotInfo: ...


class SyncRunRepository(Protocol):
    """The record of every sync attempt, and the liveness lease of the running ones."""

    def start(
        self,
        source: str,
        location: str,
        trigger: str,
        *,
        holder: str | None = None,
        lease_until: datetime | None = None,
    ) -> int: ...

    def renew_lease(self, run_id: int, holder: str, until: datetime) -> None: ...

    def release_lease(self, run_id: int, holder: str) -> None: ...

    def close_abandoned(self, error: str, now: datetime | None = None) -> list[int]: ...

    def finish(self, run_id: int, status: RunStatus, **values: Any) -> None: ...

    def get(self, run_id: int) -> SyncRunInfo | None: ...

    def last_accepted(self, source: str) -> SyncRunInfo | None: ...

    def recent(self, limit: int = 10) -> list[SyncRunInfo]: ...

    def ended(self, source: str, limit: int) -> list[RunEnd]:
        """How the last ``limit`` finished runs of ``source`` ended, newest first."""
        ...

    def last_confirmed_at(self) -> datetime | None:
        """When the newest accepted run that names a snapshot finished (any source)."""
        ...


class AuditRepository(Protocol):
    """The stored audit and adoption figures of each snapshot."""

    def adoption(self, key: str) -> dict[int, dict[str, dict[str, int]]]:
        """Snapshot id → group → adoption figures under ``key`` ("all" or a dimension), for
        every snapshot with a stored summary holding that key."""
        ...

    def findings(self, snapshot_id: int) -> dict[str, Any] | None:
        """The stored finding counts of ``snapshot_id`` (``by_code``, ``by_severity``,
        ``total``); None when it has no summary."""
        ...

    def owner_figures(
        self, snapshot_ids: Collection[int], owners: Collection[str]
    ) -> dict[int, dict[str, dict[str, Any]]]:
        """Snapshot id → owner → its stored ``findings`` and ``adoption``, for those of
        ``snapshot_ids`` whose summary was stored with per-owner rows; an owner missing under
        a snapshot was not summarised on it, a snapshot missing from the answer has no
        per-owner figures at all."""
        ...

    def save_summary(
        self,
        snapshot_id: int,
        *,
        computed_at: datetime,
        findings: dict[str, Any],
        adoption: dict[str, dict[str, dict[str, int]]],
        owners: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store the summary of ``snapshot_id``, replacing any earlier one; ``owners``: each
        institution owner's ``findings`` and ``adoption`` (None: no per-owner figures)."""
        ...


class FhirRepository(Protocol):
    """The FHIR directory's resource versions (``services/fhir_directory.py``)."""

    def latest_hashes(self, resource_type: str) -> dict[str, str | None]:
        """Each resource's latest content hash (None: its latest version is a deletion)."""
        ...

    def current(self, resource_type: str, at_snapshot: int | None = None) -> list[FhirVersion]:
        """The latest version of each resource not deleted (on ``at_snapshot``: the latest
        made by it or before), in resource id order."""
        ...

    def iter_current(
        self,
        resource_type: str,
        at_snapshot: int | None = None,
        *,
        chunk: int = 1000,
        as_json: bool = False,
    ) -> Iterator[FhirVersion]:
        """:meth:`current`, read ``chunk`` at a time (for an export of every resource);
        ``as_json``: each content as its JSON text (``content_json``), not decoded."""
        ...

    def newest_id(self) -> int:
        """The id of the newest version of any type (0: none)."""
        ...

    def update_statistics(self) -> None:
        """Bring the query planner's statistics of the versions up to date (after many were
        written at once)."""
        ...

    def iter_latest(
        self, resource_type: str, *, up_to_id: int, chunk: int = 2000
    ) -> Iterator[FhirVersion]:
        """The latest version of each resource among the versions up to ``up_to_id``,
        deletions included, contents as JSON text (``content_json``), in resource id order
        (what is built from them is then laid out in memory in the order it is searched)."""
        ...

    def history(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        after_id: int = 0,
        limit: int = 100,
        as_json: bool = False,
    ) -> list[FhirVersion]:
        """Versions of ``resource_type`` made after ``since`` (None: all), oldest first,
        from the version after ``after_id``; ``as_json``: each content as its JSON text
        (``content_json``), not decoded."""
        ...

    def newest_first(
        self,
        resource_type: str,
        *,
        since: datetime | None,
        before_id: int | None = None,
        limit: int = 100,
        resource_id: str | None = None,
    ) -> list[FhirVersion]:
        """Versions of ``resource_type`` (of one resource: ``resource_id``) made at or after
        ``since`` (None: all), newest first, older than the version ``before_id``; contents
        as JSON text (``content_json``): a FHIR history page."""
        ...

    def version(self, resource_type: str, resource_id: str, snapshot_id: int) -> FhirVersion | None:
        """The version of a resource that snapshot ``snapshot_id`` made, as JSON text; None
        if it made none."""
        ...

    def has_versions_up_to(self, snapshot_id: int) -> bool:
        """Whether a version was made by ``snapshot_id`` or an earlier snapshot."""
        ...

    def add(self, versions: Sequence[FhirVersion]) -> None: ...


class TokenRepository(Protocol):
    """API tokens, looked up by the SHA-256 of the presented token."""

    def add(
        self,
        token_hash: str,
        name: str,
        scopes: Sequence[str],
        owners: Sequence[str],
        created_at: datetime,
    ) -> TokenRecord: ...

    def get_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    def get(self, token_id: int) -> TokenRecord | None: ...

    def revoke(self, token_id: int, at: datetime) -> TokenRecord | None: ...

    def mark_used(self, last_used: dict[int, datetime]) -> None: ...

    def list(self) -> builtins.list[TokenRecord]: ...


class DecisionRepository(Protocol):
    """The decision log."""

    def add_many(self, entries: Sequence[DecisionEntry]) -> None: ...

    def since(self, since: datetime, limit: int = 1000) -> list[DecisionEntry]: ...

    def purge(self, older_than: datetime) -> int: ...


class TrafficRepository(Protocol):
    """The decision log's counts (``domain/traffic.py``) and how far they reach."""

    def logged_groups(self, start: datetime, end: datetime) -> list[LoggedGroup]:
        """The decisions logged in [``start``, ``end``), grouped by what is counted."""
        ...

    def replace_day(self, logged_on: date, counts: Sequence[TrafficCount]) -> None:
        """``counts`` instead of whatever was counted for ``logged_on`` before."""
        ...

    def oldest_logged(self) -> datetime | None:
        """When the oldest decision the log still holds was made; None for an empty log."""
        ...

    def state(self) -> tuple[date | None, datetime | None]:
        """(the last logged day counted whole, the retention's last cut), None where unset."""
        ...

    def set_state(
        self, *, counted_through: date | None = None, purged_before: datetime | None = None
    ) -> None:
        """Move either mark forward (a mark never moves back; None leaves it)."""
        ...

    def counts(
        self, first: date, last: date, owners: frozenset[str] = frozenset()
    ) -> list[TrafficCount]:
        """The counts of the messages routed for ``first``..``last``; with ``owners``, those
        whose receiver or sender belongs to one of them."""
        ...

    def receiver_totals(
        self, first: date, last: date, glns: Collection[str] | None = None
    ) -> dict[str, TrafficTotal]:
        """Messages routed for ``first``..``last`` per receiver GLN (those of ``glns`` only,
        when given), by delivery."""
        ...

    def logged_questions(self, start: datetime, end: datetime) -> list[LoggedQuestion]:
        """The questions logged in [``start``, ``end``), identical ones counted together."""
        ...


class PlanRepository(Protocol):
    """Change plans, their items and the record of every state change."""

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
    ) -> int: ...

    def get(self, plan_id: int) -> Plan | None: ...

    def events(self, plan_id: int) -> list[PlanEvent]: ...

    def summaries(
        self, *, within: Collection[str] | None = None, limit: int = 50, offset: int = 0
    ) -> list[PlanSummary]:
        """Plans newest first, each with its items counted by state.

        :param within: only plans whose owners are all among these SOR-IDs (an owner-restricted
            token's); None: every plan
        :param limit: at most this many, after skipping ``offset`` of those selected
        """
        ...

    def open_plan_ids(self) -> list[int]: ...

    def change_states(
        self,
        plan_id: int,
        changes: Iterable[StateChange],
        *,
        at: datetime,
        actor: str,
        action: str,
        details: dict[str, Any] | None = None,
    ) -> int: ...


class WebhookRepository(Protocol):
    """Change subscriptions (webhooks) and their deliveries."""

    def add(
        self,
        *,
        name: str,
        url: str,
        filters: Mapping[str, Sequence[str]],
        origin: str,
        secret: str | None,
        created_at: datetime,
        created_by: str,
        cursor: int,
        credentials: str | None = None,
    ) -> Subscription: ...

    def get(self, subscription_id: int) -> Subscription | None: ...

    def get_by_name(self, name: str) -> Subscription | None: ...

    def all(self) -> list[Subscription]: ...

    def secret_of(self, subscription_id: int) -> str | None: ...

    def retarget(
        self,
        subscription_id: int,
        *,
        url: str,
        filters: Mapping[str, Sequence[str]],
        credentials: str | None = None,
    ) -> bool: ...

    def restart(
        self,
        subscription_id: int,
        *,
        url: str,
        filters: Mapping[str, Sequence[str]],
        secret: str | None,
        created_at: datetime,
        created_by: str,
        cursor: int,
        credentials: str | None = None,
    ) -> Subscription: ...

    def deactivate(self, subscription_id: int, at: datetime, reason: str) -> int: ...

    def lock_active(self) -> list[Subscription]: ...

    def advance(self, subscription_id: int, cursor: int) -> None: ...

    def add_delivery(
        self,
        *,
        subscription_id: int,
        created_at: datetime,
        first_change_id: int,
        last_change_id: int,
        change_count: int,
        payload: dict[str, Any],
    ) -> int: ...

    def last_sequence(self, subscription_id: int) -> int: ...

    def claim_due(
        self,
        now: datetime,
        until: datetime,
        holder: str = "dispatcher",
        *,
        limit: int | None = None,
        max_attempts: int | None = None,
    ) -> list[DueDelivery]: ...

    def record_delivered(
        self, delivery_id: int, at: datetime, status_code: int, holder: str = "dispatcher"
    ) -> bool: ...

    def record_failed_attempt(
        self,
        delivery_id: int,
        at: datetime,
        *,
        status_code: int | None,
        error: str,
        retry_at: datetime | None,
        holder: str = "dispatcher",
    ) -> bool: ...

    def stuck(self, now: datetime, due_before: datetime) -> StuckDeliveries: ...

    def deliveries(
        self, subscription_id: int, limit: int = 50, status: str | None = None
    ) -> list[Delivery]: ...

    def payload_of(self, delivery_id: int) -> dict[str, Any] | None: ...

    def delivery_counts(self) -> dict[int, dict[str, int]]: ...

    def owner_map(self, snapshot_id: int) -> OwnerMap: ...


class CursorRepository(Protocol):
    """Where each incremental source stopped reading its feed."""

    def offset(self, source: str) -> str | None:
        """The stored offset of ``source``; None when nothing was stored yet."""
        ...

    def advance(self, source: str, offset: str, snapshot_id: int | None) -> None:
        """Store ``offset`` as where ``source`` stopped, in the transaction of its snapshot."""
        ...


class UnitOfWork(Protocol):
    """What a use case needs from storage: every repository, over one transaction.

    Leaving the ``with`` block without :meth:`commit` rolls everything back.
    """

    @property
    def registry(self) -> RegistryRepository: ...

    @property
    def runs(self) -> SyncRunRepository: ...

    @property
    def audits(self) -> AuditRepository: ...

    @property
    def fhir(self) -> FhirRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def plans(self) -> PlanRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def cursors(self) -> CursorRepository: ...

    @property
    def traffic(self) -> TrafficRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class CurrentSnapshot(Protocol):
    """Which snapshot is current, cheaply enough for the routing service to ask before every
    decision (implemented in ``db/current_snapshot.py`` on a per-thread raw connection)."""

    def current_snapshot_id(self) -> int | None:
        """The newest snapshot's id; ``None`` before the first sync."""
        ...

    def close(self) -> None:
        """Give back what the look-ups hold (at shutdown, when no decision is running)."""
        ...
