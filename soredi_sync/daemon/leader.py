"""One leader among the replicas: a lease row with an expiry, taken and renewed atomically.

Every replica runs :meth:`Lease.refresh` on a short interval. A replica holds the lease when the
row names it and has not expired; it takes the lease when the row is missing or expired, and
keeps it by pushing ``expires_at`` forward on every refresh. A leader that dies stops
refreshing, and another replica takes over once ``expires_at`` has passed: at most
``ttl`` seconds after the last renewal. A leader that shuts down cleanly releases the lease so
another replica can take over at its next refresh.

The take-or-renew is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE holder = me OR expired``
statement, atomic on PostgreSQL and SQLite alike. Expiry is judged by the replicas' clocks: keep
them synchronised (NTP) to well under ``ttl``.

A lease is not a fence. A leader that stalls past its lease (a long GC pause, a frozen VM) could
still commit after another replica took over; the sync itself refuses to store a snapshot when
the current snapshot changed under it (``ConcurrentSync``), which keeps such a race from ever
writing two snapshots from the same base.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from soredi_sync.db.models import LeaderLease

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def replica_name() -> str:
    """``host:pid:random`` — unique per process, readable in the lease row."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease ``name`` as seen by one replica (``holder``).

    :param ttl: seconds a taken or renewed lease lasts
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        name: str = "sync",
        holder: str | None = None,
        ttl: float = 60.0,
        clock: Clock = utc_now,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl}")
        self._sessions = session_factory
        self.name = name
        self.holder = holder or replica_name()
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._held_until: datetime | None = None
        self.on_change: Callable[[bool], None] | None = None

    @property
    def is_leader(self) -> bool:
        """True while this replica holds an unexpired lease (as of its last refresh)."""
        with self._lock:
            return self._held_until is not None and self._clock() < self._held_until

    def refresh(self) -> bool:
        """Take the lease if it is free or expired, renew it if held; True when held after.

        Database errors are logged and count as not holding the lease (fail safe: a replica
        that cannot reach the database must not believe it leads).
        """
        was = self.is_leader
        try:
            held_until = self._take_or_renew()
        except Exception:
            logger.exception("Could not refresh the %r lease; acting as a follower", self.name)
            held_until = None
        with self._lock:
            self._held_until = held_until
        now = held_until is not None
        if now != was:
            if now:
                logger.info("This replica (%s) now leads (%r lease)", self.holder, self.name)
            else:
                logger.warning(
                    "This replica (%s) no longer leads (%r lease)", self.holder, self.name
                )
            if self.on_change is not None:
                self.on_change(now)
        return now

    def _take_or_renew(self) -> datetime | None:
        now = self._clock()
        expires = now + timedelta(seconds=self.ttl)
        with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            if dialect not in ("postgresql", "sqlite"):
                raise RuntimeError(f"leader election needs PostgreSQL or SQLite, not {dialect}")
            table = LeaderLease.__table__
            statement = insert(table).values(
                name=self.name,
                holder=self.holder,
                acquired_at=now,
                renewed_at=now,
                expires_at=expires,
            )
            mine = table.c.holder == self.holder
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.name],
                set_={
                    "holder": self.holder,
                    # keep the original acquisition time across renewals
                    "acquired_at": _case_keep(mine, table.c.acquired_at, now),
                    "renewed_at": now,
                    "expires_at": expires,
                },
                where=or_(mine, table.c.expires_at < now),
            )
            session.execute(statement)
            holder = session.scalar(select(LeaderLease.holder).where(LeaderLease.name == self.name))
            session.commit()
        return expires if holder == self.holder else None

    def release(self) -> None:
        """Give the lease up now (clean shutdown), so another replica can take it at once."""
        with self._lock:
            held = self._held_until is not None
            self._held_until = None
        if not held:
            return
        try:
            with self._sessions() as session:
                session.execute(
                    delete(LeaderLease).where(
                        LeaderLease.name == self.name, LeaderLease.holder == self.holder
                    )
                )
                session.commit()
            logger.info("Released the %r lease", self.name)
        except Exception:
            logger.exception("Could not release the %r lease; it expires by itself", self.name)
        if self.on_change is not None:
            self.on_change(False)

    def current_holder(self) -> tuple[str, datetime] | None:
        """(holder, expires_at) of the lease row, if any (for status pages)."""
        with self._sessions() as session:
            row = session.get(LeaderLease, self.name)
            return (row.holder, row.expires_at) if row is not None else None


def _case_keep(condition: Any, keep: Any, otherwise: datetime) -> Any:
    from sqlalchemy import case, literal

    from soredi_sync.db.models import UTCDateTime

    return case((condition, keep), else_=literal(otherwise, UTCDateTime()))
