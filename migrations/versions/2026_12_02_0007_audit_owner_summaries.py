"""Audit summaries per institution owner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:00:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

A new table ``audit_owner_summaries`` (per summarised snapshot, one row for each region,
municipality and owner an unrevoked token is restricted to: the owner's finding counts and the
adoption of its GLNs) and a nullable column
``audit_summaries.owner_rows`` (how many such rows the summary wrote). Existing summaries keep
``owner_rows`` NULL, and an owner's figures on those snapshots are counted from the snapshot as
before; the summary after each sync from now on writes the rows. No data is moved; the new
table starts empty, so its primary key is built at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_summaries") as batch:
        batch.add_column(sa.Column("owner_rows", sa.Integer(), nullable=True))
    op.create_table(
        "audit_owner_summaries",
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.Column("owner_sor_id", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("adoption", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["audit_summaries.snapshot_id"],
            name=op.f("fk_audit_owner_summaries_snapshot_id_audit_summaries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "owner_sor_id", name=op.f("pk_audit_owner_summaries")
        ),
    )


def downgrade() -> None:
    op.drop_table("audit_owner_summaries")
    with op.batch_alter_table("audit_summaries") as batch:
        batch.drop_column("owner_rows")
