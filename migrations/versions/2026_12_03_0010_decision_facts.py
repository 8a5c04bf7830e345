"""The decision log keeps each question's facts (what the resolver read, no content).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:10:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

A new nullable JSON column ``decisions.facts``: the text length, the legacy subject's length,
the attachments' types, sizes and how they travel, the receiver identifiers as written, the
decision date asked for (``domain/routing/facts.py``), so that a logged decision can be decided
again (the cut-over priced in messages). Rows logged before stay NULL: their questions cannot
be replayed. Adding a nullable column without a default is a change of the catalogue only on
PostgreSQL (no rewrite of the table) and a plain ``ALTER TABLE ADD COLUMN`` on SQLite; the
running version does not name the column and keeps writing. No data is moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("facts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:  # SQLite: a copy of the table
        batch_op.drop_column("facts")
