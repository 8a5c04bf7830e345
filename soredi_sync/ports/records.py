"""Plain records that storage returns and services pass around (no SQL, no ORM).

They belong to no adapter: the SQLAlchemy repositories build them from rows, the in-memory
fakes (:mod:`soredi_sync.ports.fakes`) keep them as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.model import Capability, Gln, Unit
from soredi_sync.domain.plans import ItemState, PlanAction

# -- sync runs and snapshots ---------------------------------------------------------------------


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # a new snapshot was stored
    UNCHANGED = "unchanged"  # the source was the same as the last accepted pull
    FAILED = "failed"  # download, parse or validation failed; nothing stored
    REFUSED = "refused"  # implausible (mass removal); nothing stored


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    id: int
    source: str
    taken_at: datetime
    source_date: date | None
    run_id: int
    content_hash: str
    unit_count: int
    gln_count: int
    capability_count: int
    change_count: int
    baseline: bool

    @property
    def effective_date(self) -> date:
        """The day the snapshot describes: the source's SnapshotDate, else the day it was taken."""
        return self.source_date or self.taken_at.date()

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.taken_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    cursor: int
    snapshot_id: int
    entity: str
    key: str
    gln: str | None
    kind: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VersionSpan:
    """One stored version of a record and the snapshots it was valid for."""

    record: Unit | Gln | Capability
    valid_from: int
    valid_to: int | None


@dataclass(frozen=True, slots=True)
class SyncRunInfo:
    id: int
    source: str
    location: str
    trigger: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    etags: dict[str, Any]
    last_modified: dict[str, Any]
    content_hashes: dict[str, Any]
    counts: dict[str, Any]
    accepted_mass_change: bool
    snapshot_id: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a finished run ended: what a source's health is counted from."""

    status: RunStatus
    finished_at: datetime | None
    error: str | None


# -- the API's tokens and decision log -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token (never the token itself): what it may do, and for whom."""

    id: int
    name: str
    scopes: frozenset[str]
    owners: frozenset[str]  # SOR-IDs of institution owners; empty: every owner
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """One routing decision served, as the decision log stores it."""

    decided_at: datetime
    caller: str
    token_id: int | None
    message_id: str | None
    receiver_gln: str | None
    receiver_sor_id: str | None
    business_message: str
    sender_syntax: str
    outcome: str
    reason: str | None
    message_type: str | None
    address_sor_id: str | None
    address_gln: str | None
    snapshot_id: int
    # What the resolver read besides the columns above, no content (domain/routing/facts.py);
    # None for decisions logged before the log kept them.
    facts: Mapping[str, Any] | None = None
    # The sender when the question names it; the conversion steps of a converted delivery
    # ("fhir->oioxml", steps joined by ","), None for a native one or a rejection.
    sender_gln: str | None = None
    sender_sor_id: str | None = None
    conversion: str | None = None


# -- change plans --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanItem:
    id: int
    gln: str
    owner_sor_id: str
    action: PlanAction
    message_type: str
    version_code: str | None
    reason: str
    state: ItemState
    updated_at: datetime
    verified_snapshot_id: int | None

    @property
    def key(self) -> tuple[str, str, str]:
        """(GLN, message type, action), as :attr:`ItemDraft.key`."""
        return (self.gln, self.message_type, self.action.value)


@dataclass(frozen=True, slots=True)
class PlanEvent:
    at: datetime
    actor: str
    action: str
    item_id: int | None
    from_state: str | None
    to_state: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Plan:
    id: int
    created_at: datetime
    created_by: str
    goal: str
    owners: tuple[str, ...]
    owner_kind: str | None
    snapshot_id: int
    items: tuple[PlanItem, ...]


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """A plan as listed: what :class:`Plan` says of itself, and its items counted by state
    (every :class:`~soredi_sync.domain.plans.ItemState`, zero included) instead of the items."""

    id: int
    created_at: datetime
    created_by: str
    goal: str
    owners: tuple[str, ...]
    owner_kind: str | None
    snapshot_id: int
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class StateChange:
    item_id: int
    to_state: ItemState
    snapshot_id: int | None = None
    details: dict[str, Any] | None = None  # recorded on the item's event (receipt, reason)


# -- webhooks ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stored subscription, without its secret (``secret_of`` reads that when signing) or
    the credentials of its URL (only whether it has some).

    ``filters`` maps a field (``glns``, ``owners``, ``message_types``, ``kinds``, ``entities``)
    to the values it accepts; ``cursor`` is the last change id scanned for it.
    """

    id: int
    name: str
    url: str
    filters: Mapping[str, tuple[str, ...]]
    origin: str  # "config" or "api"
    created_at: datetime
    created_by: str
    active: bool
    cursor: int
    has_credentials: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a batch of changes, and how it went (no payload: see ``payload_of``)."""

    id: int
    subscription_id: int
    created_at: datetime
    first_change_id: int
    last_change_id: int
    change_count: int
    status: str
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    claimed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery, with what it takes to send it. ``attempts`` counts this one."""

    id: int
    subscription_id: int
    subscription_name: str
    origin: str
    url: str
    payload: dict[str, Any]
    attempts: int
    credentials: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class StuckDeliveries:
    """Deliveries that should be moving and are not: ``count``, and since when the oldest
    has been waiting (due, or its claim over)."""

    count: int = 0
    oldest_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class OwnerMap:
    """Who owns what on one snapshot, for the owner filter.

    ``unit_owner``: unit SOR-ID → SOR-ID of its institution owner; ``gln_carriers``: GLN →
    SOR-IDs of the units that carry it as their own; ``gln_registered``: GLN → SOR-ID of the unit
    that holds its EanLocationCodeEntity (GLNs no unit carries still have one).
    """

    unit_owner: dict[str, str]
    gln_carriers: dict[str, tuple[str, ...]]
    gln_registered: dict[str, str]


@dataclass(frozen=True, slots=True)
class FhirVersion:
    """One version of a FHIR directory resource (``Organization`` or ``Endpoint``): made by
    snapshot ``snapshot_id`` at ``last_updated``; ``content`` is the resource as served (None
    when ``deleted``), ``content_hash`` the SHA-256 of it without ``meta``. ``id`` orders the
    versions (0 until stored). Read for serving as it is (``as_json``), ``content_json`` is the
    stored JSON text instead and ``content`` is None."""

    resource_type: str
    resource_id: str
    snapshot_id: int
    last_updated: datetime
    deleted: bool
    content_hash: str | None
    content: dict[str, Any] | None
    id: int = 0
    content_json: str | None = None
