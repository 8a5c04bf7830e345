"""The decision log keeps the sender a question names and the conversion steps of a decision.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:58:07.913951

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

Three new nullable columns of ``decisions``: ``sender_gln`` and ``sender_sor_id`` (the sender
as the routing question names it: ``POST /v1/route``'s optional ``sender``, or read from the
message by ``/v1/route/message``) and ``conversion`` (the steps of a converted delivery, e.g.
``fhir->oioxml``), for the traffic counts per sender and receiver and by conversion step.
Rows logged before stay NULL (sender and steps unknown). Adding nullable columns without a
default changes only the catalogue on PostgreSQL (no rewrite of the table) and is a plain
``ALTER TABLE ADD COLUMN`` on SQLite; the running version does not name them and keeps
writing. No data is moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("sender_gln", sa.String(length=13), nullable=True))
    op.add_column("decisions", sa.Column("sender_sor_id", sa.String(length=20), nullable=True))
    op.add_column("decisions", sa.Column("conversion", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:  # SQLite: a copy of the table
        batch_op.drop_column("conversion")
        batch_op.drop_column("sender_sor_id")
        batch_op.drop_column("sender_gln")
