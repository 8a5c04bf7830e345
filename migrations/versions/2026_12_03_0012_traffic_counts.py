"""Daily traffic counts of the decision log, kept after its retention.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 17:30:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

Two new tables, nothing else touched: ``traffic_counts`` (messages per logged day, routed
day, receiver, sender, business message, sender syntax and delivery, with the receiver's and
sender's owners: identifiers, reasons and numbers only, ``domain/traffic.py``) with indexes for
a window of days per receiver GLN and per owner, and ``traffic_state`` (one row: the last
logged day counted whole, and the retention's last cut). Both start empty: the daemon's first
count (or ``soredi-sync traffic rebuild``) fills them from the decision log as it is. The
running version does not know them. Downgrade drops both (the counts of days no longer in the
log are lost with them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("logged_on", sa.Date(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("receiver_gln", sa.String(length=13), nullable=True),
        sa.Column("receiver_sor_id", sa.String(length=20), nullable=True),
        sa.Column("receiver_owner", sa.String(length=20), nullable=True),
        sa.Column("sender_gln", sa.String(length=13), nullable=True),
        sa.Column("sender_sor_id", sa.String(length=20), nullable=True),
        sa.Column("sender_owner", sa.String(length=20), nullable=True),
        sa.Column("business_message", sa.String(length=40), nullable=False),
        sa.Column("sender_syntax", sa.String(length=20), nullable=False),
        sa.Column("delivery", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("conversion", sa.String(length=100), nullable=True),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_counts")),
    )
    with op.batch_alter_table("traffic_counts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_traffic_counts_day_receiver", ["day", "receiver_gln"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_traffic_counts_logged_on"), ["logged_on"], unique=False
        )
        batch_op.create_index(
            "ix_traffic_counts_receiver_owner_day", ["receiver_owner", "day"], unique=False
        )
        batch_op.create_index(
            "ix_traffic_counts_sender_owner_day", ["sender_owner", "day"], unique=False
        )

    op.create_table(
        "traffic_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("counted_through", sa.Date(), nullable=True),
        sa.Column("purged_before", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_state")),
    )


def downgrade() -> None:
    op.drop_table("traffic_state")
    with op.batch_alter_table("traffic_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_traffic_counts_sender_owner_day")
        batch_op.drop_index("ix_traffic_counts_receiver_owner_day")
        batch_op.drop_index(batch_op.f("ix_traffic_counts_logged_on"))
        batch_op.drop_index("ix_traffic_counts_day_receiver")

    op.drop_table("traffic_counts")
