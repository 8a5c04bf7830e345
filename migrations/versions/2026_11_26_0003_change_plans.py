"""Change plans: plans, their items and the record of every state change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:05:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

All three tables are new and empty, so their indexes are created in the same transaction:
nothing is locked that a running version reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "change_plans",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("goal", sa.String(length=60), nullable=False),
        sa.Column("owners", sa.JSON(), nullable=False),
        sa.Column("owner_kind", sa.String(length=20), nullable=True),
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_plans")),
    )
    op.create_table(
        "change_plan_items",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("plan_id", BIG_ID, nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("owner_sor_id", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column("version_code", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_snapshot_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["change_plans.id"],
            name=op.f("fk_change_plan_items_plan_id_change_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_plan_items")),
    )
    op.create_index(
        op.f("ix_change_plan_items_plan_id"), "change_plan_items", ["plan_id"], unique=False
    )
    op.create_table(
        "change_plan_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("plan_id", BIG_ID, nullable=False),
        sa.Column("item_id", BIG_ID, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["change_plans.id"],
            name=op.f("fk_change_plan_events_plan_id_change_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_plan_events")),
    )
    op.create_index(
        op.f("ix_change_plan_events_plan_id"), "change_plan_events", ["plan_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_change_plan_events_plan_id"), table_name="change_plan_events")
    op.drop_table("change_plan_events")
    op.drop_index(op.f("ix_change_plan_items_plan_id"), table_name="change_plan_items")
    op.drop_table("change_plan_items")
    op.drop_table("change_plans")
