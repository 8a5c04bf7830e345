"""Replication cursor: the offset an incremental source (SKRS) has stored up to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:20:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

One new, empty table keyed by source; nothing a running version reads is touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "replication_cursors",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("offset", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_replication_cursors")),
    )


def downgrade() -> None:
    op.drop_table("replication_cursors")
