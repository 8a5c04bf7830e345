"""Initial schema: sync runs, snapshots, versioned units/GLNs/capabilities, change feed.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 12:27:07.338063

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "unchanged",
                "failed",
                "refused",
                name="runstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("etags", sa.JSON(), nullable=False),
        sa.Column("last_modified", sa.JSON(), nullable=False),
        sa.Column("content_hashes", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("accepted_mass_change", sa.Boolean(), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    op.create_index(
        "ix_sync_runs_source_status_id", "sync_runs", ["source", "status", "id"], unique=False
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_date", sa.Date(), nullable=True),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("unit_count", sa.Integer(), nullable=False),
        sa.Column("gln_count", sa.Integer(), nullable=False),
        sa.Column("capability_count", sa.Integer(), nullable=False),
        sa.Column("change_count", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_snapshots_run_id_sync_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    op.create_table(
        "capabilities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column(
            "valid_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("valid_to", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("version_code", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capabilities")),
    )
    op.create_index(
        "ix_capabilities_key_valid_from",
        "capabilities",
        ["gln", "message_type", "valid_from"],
        unique=False,
    )
    op.create_index(
        "uq_capabilities_current",
        "capabilities",
        ["gln", "message_type"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_changes_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    op.create_index(op.f("ix_changes_gln"), "changes", ["gln"], unique=False)
    op.create_index(op.f("ix_changes_snapshot_id"), "changes", ["snapshot_id"], unique=False)
    op.create_table(
        "glns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column(
            "valid_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("valid_to", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("only_internal", sa.Boolean(), nullable=False),
        sa.Column("system_supplier", sa.String(length=20), nullable=True),
        sa.Column("system_type", sa.String(length=20), nullable=True),
        sa.Column("vans", sa.String(length=20), nullable=True),
        sa.Column("region_code", sa.String(length=10), nullable=True),
        sa.Column("edi_administrator", sa.String(length=20), nullable=True),
        sa.Column("owner_sor_id", sa.String(length=20), nullable=True),
        sa.Column("from_date", sa.Date(), nullable=True),
        sa.Column("to_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_glns")),
    )
    op.create_index("ix_glns_key_valid_from", "glns", ["gln", "valid_from"], unique=False)
    op.create_index(
        "uq_glns_current",
        "glns",
        ["gln"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column(
            "valid_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("valid_to", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("parent_sor_id", sa.String(length=20), nullable=True),
        sa.Column("owner_sor_id", sa.String(length=20), nullable=False),
        sa.Column("type_code", sa.String(length=20), nullable=True),
        sa.Column("gln_mode", sa.String(length=10), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=True),
        sa.Column("from_date", sa.Date(), nullable=True),
        sa.Column("to_date", sa.Date(), nullable=True),
        sa.Column("shak", sa.String(length=20), nullable=True),
        sa.Column("provider_number", sa.String(length=20), nullable=True),
        sa.Column("pharmacy_number", sa.String(length=20), nullable=True),
        sa.Column("postal_code", sa.String(length=10), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
    )
    op.create_index(op.f("ix_units_gln"), "units", ["gln"], unique=False)
    op.create_index("ix_units_key_valid_from", "units", ["sor_id", "valid_from"], unique=False)
    op.create_index(op.f("ix_units_parent_sor_id"), "units", ["parent_sor_id"], unique=False)
    op.create_index(
        "uq_units_current",
        "units",
        ["sor_id"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_units_current",
        table_name="units",
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.drop_index(op.f("ix_units_parent_sor_id"), table_name="units")
    op.drop_index("ix_units_key_valid_from", table_name="units")
    op.drop_index(op.f("ix_units_gln"), table_name="units")
    op.drop_table("units")
    op.drop_index(
        "uq_glns_current",
        table_name="glns",
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.drop_index("ix_glns_key_valid_from", table_name="glns")
    op.drop_table("glns")
    op.drop_index(op.f("ix_changes_snapshot_id"), table_name="changes")
    op.drop_index(op.f("ix_changes_gln"), table_name="changes")
    op.drop_table("changes")
    op.drop_index(
        "uq_capabilities_current",
        table_name="capabilities",
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.drop_index("ix_capabilities_key_valid_from", table_name="capabilities")
    op.drop_table("capabilities")
    op.drop_table("snapshots")
    op.drop_index("ix_sync_runs_source_status_id", table_name="sync_runs")
    op.drop_table("sync_runs")
