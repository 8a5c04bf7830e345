"""HTTP API: bearer tokens (stored as SHA-256 only) and the decision log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:10:42.050982

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

Both tables are new and empty, so their indexes are created in the same transaction: nothing
is locked that a running version reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("owners", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "decisions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller", sa.String(length=100), nullable=False),
        sa.Column("token_id", BIG_ID, nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("receiver_gln", sa.String(length=13), nullable=True),
        sa.Column("receiver_sor_id", sa.String(length=20), nullable=True),
        sa.Column("business_message", sa.String(length=40), nullable=False),
        sa.Column("sender_syntax", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("message_type", sa.String(length=40), nullable=True),
        sa.Column("address_sor_id", sa.String(length=20), nullable=True),
        sa.Column("address_gln", sa.String(length=13), nullable=True),
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_decided_at"), "decisions", ["decided_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_decisions_decided_at"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("api_tokens")
