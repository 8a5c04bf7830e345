"""Repository of replication cursors: where each incremental source stopped reading its feed.

Like the other repositories it never commits: the cursor is written in the transaction that
stores the snapshot its entries produced, so the two move together or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from soredi_sync.db.models import ReplicationCursor


class SqlAlchemyCursorRepository:
    """Offsets of incremental sources (``replication_cursors``), one row per source."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def offset(self, source: str) -> str | None:
        """The stored offset of ``source``; None when nothing was stored yet (start from the
        top of the feed)."""
        row = self.session.get(ReplicationCursor, source)
        return row.offset if row is not None else None

    def advance(self, source: str, offset: str, snapshot_id: int | None) -> None:
        """Store ``offset`` as where ``source`` stopped, with the snapshot current at that
        point."""
        row = self.session.get(ReplicationCursor, source)
        now = datetime.now(UTC)
        if row is None:
            self.session.add(
                ReplicationCursor(
                    source=source, offset=offset, updated_at=now, snapshot_id=snapshot_id
                )
            )
        else:
            row.offset = offset
            row.updated_at = now
            row.snapshot_id = snapshot_id
        self.session.flush()
