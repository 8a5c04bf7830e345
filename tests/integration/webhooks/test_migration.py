"""Revision 0006 moves URL credentials into their own column, and its downgrade puts them back."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from soredi_sync.db.engine import make_engine
from soredi_sync.db.schema import downgrade, upgrade

subscriptions = sa.table(
    "webhook_subscriptions",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("url", sa.Text()),
    sa.column("filters", sa.JSON()),
    sa.column("origin", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("created_by", sa.String()),
    sa.column("active", sa.Boolean()),
    sa.column("cursor", sa.BigInteger()),
)
deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Integer()),
    sa.column("subscription_id", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("first_change_id", sa.BigInteger()),
    sa.column("last_change_id", sa.BigInteger()),
    sa.column("change_count", sa.Integer()),
    sa.column("payload", sa.JSON()),
    sa.column("status", sa.String()),
    sa.column("attempts", sa.Integer()),
    sa.column("next_attempt_at", sa.DateTime(timezone=True)),
)
WITH = "https://hook%40user:p%3Ass@gateway.example:8443/hook?x=1"
WITHOUT = "https://gateway.example/other"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CLAIM_ENDS = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)


def _utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class TestRevision0006:
    def test_url_credentials_move_to_their_own_column_and_back_on_downgrade(
        self, database_url: str
    ) -> None:
        downgrade(database_url, "0005")
        engine = make_engine(database_url, null_pool=True)
        try:
            with engine.begin() as conn:
                for sub_id, url in ((1, WITH), (2, WITHOUT)):
                    conn.execute(
                        subscriptions.insert().values(
                            id=sub_id,
                            name=f"s{sub_id}",
                            url=url,
                            filters={},
                            origin="api",
                            created_at=AT,
                            created_by="t",
                            active=True,
                            cursor=0,
                        )  # fmt: skip
                    )
                conn.execute(
                    deliveries.insert().values(
                        id=1,
                        subscription_id=1,
                        created_at=AT,
                        first_change_id=1,
                        last_change_id=1,
                        change_count=1,
                        payload={},
                        status="pending",
                        attempts=0,
                        next_attempt_at=AT,
                    )  # fmt: skip
                )
            upgrade(database_url, "0006")
            with engine.begin() as conn:
                upgraded = conn.execute(
                    sa.text("SELECT id, url, credentials FROM webhook_subscriptions ORDER BY id")
                ).all()
                conn.execute(
                    sa.text(
                        "UPDATE webhook_deliveries SET status = 'sending', claimed_by = 'd', "
                        "claimed_until = :ends WHERE id = 1"
                    ),
                    {"ends": CLAIM_ENDS.replace(tzinfo=None) if "sqlite" in database_url
                     else CLAIM_ENDS},
                )  # fmt: skip
            downgrade(database_url, "0005")
            with engine.connect() as conn:
                restored = conn.execute(
                    sa.text("SELECT id, url FROM webhook_subscriptions ORDER BY id")
                ).all()
                status, due = conn.execute(
                    sa.text("SELECT status, next_attempt_at FROM webhook_deliveries")
                ).one()
                columns = {c["name"] for c in sa.inspect(conn).get_columns("webhook_deliveries")}
        finally:
            engine.dispose()
            upgrade(database_url)
        assert [tuple(r) for r in upgraded] == [
            (1, "https://gateway.example:8443/hook?x=1", "hook%40user:p%3Ass"),
            (2, WITHOUT, None),
        ]
        assert [tuple(r) for r in restored] == [(1, WITH), (2, WITHOUT)]
        # The previous version knows no "sending": pending, due when the claim would have ended.
        assert (status, _utc(due)) == ("pending", CLAIM_ENDS)
        assert "claimed_by" not in columns
