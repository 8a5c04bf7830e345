"""Tables. Units, GLNs and capabilities are stored as versions (slowly changing, type 2).

A version row is valid from the snapshot that introduced it (``valid_from``, inclusive) until the
snapshot that replaced or removed it (``valid_to``, exclusive; NULL while current). Every read
names a snapshot id, so a reader that started before a sync committed keeps seeing one whole
snapshot even on PostgreSQL's READ COMMITTED: rows written by the new snapshot all carry a larger
``valid_from``, and rows it closed are still valid at the older id.

The version tables have no foreign keys to ``snapshots``: their one writer
(:meth:`SqlAlchemyRegistryRepository.add_snapshot`) inserts the snapshot and its rows in one
transaction, and per-row foreign-key checks doubled the time of a national first load on
PostgreSQL (3.7 s against 1.9 s for the capabilities COPY alone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from soredi_sync.ports.records import RunStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine.

    PostgreSQL keeps the zone (timestamptz); SQLite has no zone type, so values are normalised to
    UTC on the way in and tagged as UTC on the way out. Naive datetimes are refused: they are
    always a bug here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

utc_datetime = Annotated[datetime, mapped_column(UTCDateTime())]
sor_id_str = Annotated[str, mapped_column(String(20))]
gln_str = Annotated[str, mapped_column(String(13))]
code_str = Annotated[str, mapped_column(String(40))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        date: Date(),
        dict[str, Any]: JSON(),
        RunStatus: Enum(
            RunStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
    }


class SyncRun(Base):
    """One attempt to pull a source: what was fetched, what came of it, and why."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    location: Mapped[str] = mapped_column(Text)  # base URL or directory; never credentials
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[RunStatus]
    started_at: Mapped[utc_datetime]
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None]
    etags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_modified: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    accepted_mass_change: Mapped[bool] = mapped_column(default=False)
    snapshot_id: Mapped[int | None] = mapped_column(BigId)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_sync_runs_source_status_id", "source", "status", "id"),)


class Snapshot(Base):
    """One accepted, complete state of the registry."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    taken_at: Mapped[utc_datetime]
    source_date: Mapped[date | None]
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("sync_runs.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    unit_count: Mapped[int]
    gln_count: Mapped[int]
    capability_count: Mapped[int]
    change_count: Mapped[int]
    baseline: Mapped[bool] = mapped_column(default=False)  # the first snapshot: no change events


def _versioned(key_columns: tuple[str, ...], table: str) -> tuple[Index, ...]:
    """Indexes every version table needs: one current row per key, look-ups by key and snapshot."""
    current = text("valid_to IS NULL")
    return (
        Index(
            f"uq_{table}_current",
            *key_columns,
            unique=True,
            sqlite_where=current,
            postgresql_where=current,
        ),
        Index(f"ix_{table}_key_valid_from", *key_columns, "valid_from"),
    )


class UnitVersion(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sor_id: Mapped[sor_id_str]
    valid_from: Mapped[int] = mapped_column(BigId)
    valid_to: Mapped[int | None] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(30))
    parent_sor_id: Mapped[str | None] = mapped_column(String(20), index=True)
    owner_sor_id: Mapped[sor_id_str]
    type_code: Mapped[str | None] = mapped_column(String(20))
    gln_mode: Mapped[str] = mapped_column(String(10))
    gln: Mapped[str | None] = mapped_column(String(13), index=True)
    from_date: Mapped[date | None]
    to_date: Mapped[date | None]
    shak: Mapped[str | None] = mapped_column(String(20))
    provider_number: Mapped[str | None] = mapped_column(String(20))
    pharmacy_number: Mapped[str | None] = mapped_column(String(20))
    postal_code: Mapped[str | None] = mapped_column(String(10))

    __table_args__ = _versioned(("sor_id",), "units")


class GlnVersion(Base):
    __tablename__ = "glns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gln: Mapped[gln_str]
    valid_from: Mapped[int] = mapped_column(BigId)
    valid_to: Mapped[int | None] = mapped_column(BigId)
    active: Mapped[bool]
    only_internal: Mapped[bool]
    system_supplier: Mapped[str | None] = mapped_column(String(20))
    system_type: Mapped[str | None] = mapped_column(String(20))
    vans: Mapped[str | None] = mapped_column(String(20))
    region_code: Mapped[str | None] = mapped_column(String(10))
    edi_administrator: Mapped[str | None] = mapped_column(String(20))
    owner_sor_id: Mapped[str | None] = mapped_column(String(20))
    from_date: Mapped[date | None]
    to_date: Mapped[date | None]

    __table_args__ = _versioned(("gln",), "glns")


class CapabilityVersion(Base):
    """A GLN × message type row of SOR-EDI."""

    __tablename__ = "capabilities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gln: Mapped[gln_str]
    message_type: Mapped[code_str]
    valid_from: Mapped[int] = mapped_column(BigId)
    valid_to: Mapped[int | None] = mapped_column(BigId)
    version_code: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = _versioned(("gln", "message_type"), "capabilities")


class ChangeEvent(Base):
    """One change between consecutive snapshots. ``id`` is the monotonic cursor of the feed."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(BigId, ForeignKey("snapshots.id"), index=True)
    entity: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(60))
    gln: Mapped[str | None] = mapped_column(String(13), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiToken(Base):
    """A bearer token of the HTTP API. Only the SHA-256 of the token is stored, never the token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # SOR-IDs of institution owners the token is restricted to; empty: no restriction.
    owners: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[utc_datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class DecisionRecord(Base):
    """One routing decision served, for audit. Written in batches, purged after the retention.

    No foreign key to ``snapshots`` or ``api_tokens``: the log is an audit trail that must
    outlive a revoked token, and batched inserts should not pay per-row key checks.
    """

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    caller: Mapped[str] = mapped_column(String(100))
    token_id: Mapped[int | None] = mapped_column(BigId)
    message_id: Mapped[str | None] = mapped_column(String(200))
    receiver_gln: Mapped[str | None] = mapped_column(String(13))
    receiver_sor_id: Mapped[str | None] = mapped_column(String(20))
    business_message: Mapped[str] = mapped_column(String(40))
    sender_syntax: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(60))
    message_type: Mapped[str | None] = mapped_column(String(40))
    address_sor_id: Mapped[str | None] = mapped_column(String(20))
    address_gln: Mapped[str | None] = mapped_column(String(13))
    snapshot_id: Mapped[int] = mapped_column(BigId)
    # The question's other facts, no content (domain/routing/facts.py); NULL before 0010.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The sender as the question named it, and the conversion steps (0011; NULL before).
    sender_gln: Mapped[str | None] = mapped_column(String(13))
    sender_sor_id: Mapped[str | None] = mapped_column(String(20))
    conversion: Mapped[str | None] = mapped_column(String(100))


class ChangePlan(Base):
    """A plan of registration changes in SOR-EDI over the GLNs of some institution owners."""

    __tablename__ = "change_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[utc_datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    goal: Mapped[str] = mapped_column(String(60))  # "switch-to:carecommunication", "findings:CODE"
    owners: Mapped[list[str]] = mapped_column(JSON)  # SOR-IDs of institution owners
    owner_kind: Mapped[str | None] = mapped_column(String(20))  # set for --owner-kind plans
    snapshot_id: Mapped[int] = mapped_column(BigId)  # the snapshot the plan was built on


class ChangePlanItem(Base):
    """One change of a plan: add or remove one message type on one GLN."""

    __tablename__ = "change_plan_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigId, ForeignKey("change_plans.id"), index=True)
    gln: Mapped[gln_str]
    owner_sor_id: Mapped[sor_id_str]
    action: Mapped[str] = mapped_column(String(10))
    message_type: Mapped[code_str]
    version_code: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[utc_datetime]
    verified_snapshot_id: Mapped[int | None] = mapped_column(BigId)


class ChangePlanEvent(Base):
    """One state change of a plan or one of its items: who, when, from what to what."""

    __tablename__ = "change_plan_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigId, ForeignKey("change_plans.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(BigId)
    at: Mapped[utc_datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))  # created, submitted, verified
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ReplicationCursor(Base):
    """Where an incremental source stopped: the offset of the last entry stored.

    Written in the same transaction as the snapshot the entries produced, so a crash between
    pages neither loses nor repeats entries.
    """

    __tablename__ = "replication_cursors"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    offset: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[utc_datetime]
    snapshot_id: Mapped[int | None] = mapped_column(BigId)


class LeaderLease(Base):
    """Who leads the replicas (runs the sync jobs) until when.

    A replica becomes leader by taking a lease that is free or has expired, and keeps it by
    renewing it before ``expires_at``; a leader that dies stops renewing and another replica
    takes over once the lease expires.
    """

    __tablename__ = "leader_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[utc_datetime]
    renewed_at: Mapped[utc_datetime]
    expires_at: Mapped[utc_datetime]


class WebhookSubscription(Base):
    """A change subscription: where to POST the changes that pass its filters, and how far
    it has been given them (``cursor``: the last change id put into a delivery)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    # The HMAC key for API-registered subscriptions (shown once on creation); NULL for
    # configured ones, whose key stays in the configuration / environment.
    secret: Mapped[str | None] = mapped_column(String(200))
    # The user-info of the URL as registered (percent-encoded "user:password"), split off so
    # that ``url`` can be listed; sent as HTTP Basic, never returned by a listing.
    credentials: Mapped[str | None] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    origin: Mapped[str] = mapped_column(String(10))  # "config" or "api"
    created_at: Mapped[utc_datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """One POST of a batch of changes to one subscription, with its retry state."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_subscriptions.id"), index=True
    )
    created_at: Mapped[utc_datetime]
    first_change_id: Mapped[int] = mapped_column(BigInteger)
    last_change_id: Mapped[int] = mapped_column(BigInteger)
    change_count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # pending, sending (claimed), delivered, failed, cancelled
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # While ``sending``: the dispatcher sending it, and until when its claim holds (the
    # delivery deadline and a margin); a claim that ran out makes the delivery due again.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)


class AuditSummary(Base):
    """The audit and adoption figures of one snapshot, computed once after its sync.

    ``findings``: counts by finding code and by severity; ``adoption``: CareCommunication
    adoption counts in all and per region, owner type and VANS. The adoption series over time
    reads these instead of reloading every snapshot.
    """

    __tablename__ = "audit_summaries"

    snapshot_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    computed_at: Mapped[utc_datetime]
    findings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    adoption: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # How many ``audit_owner_summaries`` rows were stored with it; None: none were computed
    # (a summary from before they existed), so an owner's figures must be counted anew.
    owner_rows: Mapped[int | None]


class AuditOwnerSummary(Base):
    """The audit and adoption figures of one institution owner on one snapshot, stored with
    the snapshot's :class:`AuditSummary`, so an owner-restricted caller's figures are sums of
    rows rather than a snapshot loaded and audited.

    ``findings``: counts ``by_code`` and ``by_severity`` and the ``total`` of the owner's
    findings; ``adoption``: ``"all"`` and each dimension → group → counts of the owner's GLNs.
    Rows are stored for the regions, the municipalities and the owners of unrevoked
    restricted tokens (``services.audit.summarised_owners``), zeros included: an owner with no
    row on a snapshot was not summarised, and its figures are counted from the snapshot.
    """

    __tablename__ = "audit_owner_summaries"

    snapshot_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("audit_summaries.snapshot_id", ondelete="CASCADE"), primary_key=True
    )
    owner_sor_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    findings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    adoption: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FhirResourceVersion(Base):
    """One version of a FHIR resource of the mCSD directory view (``Organization`` for a SOR
    unit, ``Endpoint`` for a GLN), written after the sync of the snapshot that made it
    (``services/fhir_directory.py``): a resource whose content differs from its latest version
    gets a new row, one that is gone a ``deleted`` row. ``id`` orders the versions as
    ``_history`` lists them; the latest row of a resource is its current version.

    ``content`` is the resource as served (``meta.versionId`` is ``snapshot_id``,
    ``meta.lastUpdated`` is ``last_updated``, the snapshot's time); None when deleted.
    ``content_hash`` is the SHA-256 of the content without ``meta``, what the next snapshot's
    resource is compared with.
    """

    __tablename__ = "fhir_resource_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(20))
    resource_id: Mapped[str] = mapped_column(String(64))
    snapshot_id: Mapped[int] = mapped_column(BigId, ForeignKey("snapshots.id"), index=True)
    last_updated: Mapped[utc_datetime]
    deleted: Mapped[bool] = mapped_column(default=False)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", "snapshot_id"),
        Index("ix_fhir_resource_versions_type_updated", "resource_type", "last_updated"),
        # _history pages and the index build: one type's versions in id order, after an id.
        Index("ix_fhir_resource_versions_type_id", "resource_type", "id"),
    )


class TrafficRecord(Base):
    """The decision log counted (``domain/traffic.py``): messages logged on ``logged_on`` and
    routed for ``day``, per receiver, sender, business message, sender syntax and delivery
    (``native``, ``converted`` with its steps, ``rejected`` with its reason). Kept after the
    log's retention; counting a logged day again replaces its rows. Identifiers, owners,
    reasons and numbers only."""

    __tablename__ = "traffic_counts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    logged_on: Mapped[date] = mapped_column(index=True)
    day: Mapped[date]
    receiver_gln: Mapped[str | None] = mapped_column(String(13))
    receiver_sor_id: Mapped[str | None] = mapped_column(String(20))
    receiver_owner: Mapped[str | None] = mapped_column(String(20))
    sender_gln: Mapped[str | None] = mapped_column(String(13))
    sender_sor_id: Mapped[str | None] = mapped_column(String(20))
    sender_owner: Mapped[str | None] = mapped_column(String(20))
    business_message: Mapped[str] = mapped_column(String(40))
    sender_syntax: Mapped[str] = mapped_column(String(20))
    delivery: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(60))
    conversion: Mapped[str | None] = mapped_column(String(100))
    messages: Mapped[int]

    __table_args__ = (
        # A window of days, per receiver GLN (the traffic-weighted audit) or per owner.
        Index("ix_traffic_counts_day_receiver", "day", "receiver_gln"),
        Index("ix_traffic_counts_receiver_owner_day", "receiver_owner", "day"),
        Index("ix_traffic_counts_sender_owner_day", "sender_owner", "day"),
    )


class TrafficState(Base):
    """How far the decision log has been counted (one row): every logged day up to
    ``counted_through`` is counted whole; ``purged_before`` is the oldest decision time the
    log still holds whole (the retention's last cut), so a day before it is never recounted."""

    __tablename__ = "traffic_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    counted_through: Mapped[date | None]
    purged_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
