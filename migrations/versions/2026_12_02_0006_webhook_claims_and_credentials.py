"""Webhooks: deliveries claimed while in flight; URL credentials stored apart.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000

Team rules for every revision:
- The running version must keep working against the migrated schema (add first, drop later).
- No long locks on the version tables: create large indexes concurrently on PostgreSQL.
- Data migrations use op.execute or sa.table() stand-ins, never the app's models.
- downgrade() really undoes upgrade().

Three new nullable columns: ``webhook_deliveries.claimed_by`` and ``claimed_until`` (who is
sending a delivery, status ``sending``, and until when the claim holds) and
``webhook_subscriptions.credentials`` (the user-info of a webhook URL, sent as HTTP Basic and
never listed). Data: a stored URL with user-info (``https://user:pw@host/...``) is split into
the URL without it and ``credentials``; the downgrade puts it back into the URL and returns
deliveries being sent to ``pending``, due when their claim ends. Both tables are small.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

subscriptions = sa.table(
    "webhook_subscriptions",
    sa.column("id", BIG_ID),
    sa.column("url", sa.Text()),
    sa.column("credentials", sa.Text()),
)
deliveries = sa.table(
    "webhook_deliveries",
    sa.column("status", sa.String(10)),
    sa.column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.column("claimed_by", sa.String(200)),
    sa.column("claimed_until", sa.DateTime(timezone=True)),
)


def _split(url: str) -> tuple[str, str | None]:
    """The URL without user-info, and the user-info as written (percent-encoded)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    return urlunsplit(parts._replace(netloc=hostport)), userinfo


def _join(url: str, userinfo: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def upgrade() -> None:
    op.add_column("webhook_subscriptions", sa.Column("credentials", sa.Text(), nullable=True))
    op.add_column(
        "webhook_deliveries", sa.Column("claimed_by", sa.String(length=200), nullable=True)
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(subscriptions.c.id, subscriptions.c.url).where(subscriptions.c.url.like("%@%"))
    ).all()
    for sub_id, url in rows:
        bare, userinfo = _split(url)
        if userinfo is not None:
            bind.execute(
                subscriptions.update()
                .where(subscriptions.c.id == sub_id)
                .values(url=bare, credentials=userinfo)
            )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(subscriptions.c.id, subscriptions.c.url, subscriptions.c.credentials).where(
            subscriptions.c.credentials.is_not(None)
        )
    ).all()
    for sub_id, url, userinfo in rows:
        bind.execute(
            subscriptions.update()
            .where(subscriptions.c.id == sub_id)
            .values(url=_join(url, userinfo), credentials=None)
        )
    # The previous version knows no "sending": a delivery in flight becomes pending again,
    # due when its claim would have ended (so it is not sent twice meanwhile).
    bind.execute(
        deliveries.update()
        .where(deliveries.c.status == "sending")
        .values(status="pending", next_attempt_at=deliveries.c.claimed_until)
    )
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not a batch copy of the table: a copy
    # of webhook_subscriptions would be refused by the foreign key from webhook_deliveries.
    op.drop_column("webhook_deliveries", "claimed_until")
    op.drop_column("webhook_deliveries", "claimed_by")
    op.drop_column("webhook_subscriptions", "credentials")
