"""The FHIR directory's resource versions (mCSD Organization and Endpoint).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:00:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

A new table ``fhir_resource_versions``: one row per version of an Organization (SOR unit) or
Endpoint (GLN) as the FHIR directory serves it, written after the sync of the snapshot that
made it; ``_history?_since=`` and the resources' ``meta`` read it. It starts empty (the next
sync, or ``soredi-sync export fhir``, writes the current snapshot's resources as the first
versions), so its indexes are built at once. No data is moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fhir_resource_versions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("resource_type", sa.String(length=20), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_fhir_resource_versions_snapshot_id_snapshots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_resource_versions")),
        sa.UniqueConstraint(
            "resource_type",
            "resource_id",
            "snapshot_id",
            name=op.f("uq_fhir_resource_versions_resource_type"),
        ),
    )
    with op.batch_alter_table("fhir_resource_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fhir_resource_versions_snapshot_id"), ["snapshot_id"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_resource_versions_type_updated",
            ["resource_type", "last_updated"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("fhir_resource_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_resource_versions_type_updated")
        batch_op.drop_index(batch_op.f("ix_fhir_resource_versions_snapshot_id"))

    op.drop_table("fhir_resource_versions")
