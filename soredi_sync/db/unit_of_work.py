"""Unit of Work: one session, one transaction, rolled back unless the use case commits."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.orm import Session, sessionmaker

from soredi_sync.db.api_repository import SqlAlchemyDecisionRepository, SqlAlchemyTokenRepository
from soredi_sync.db.plan_repository import SqlAlchemyPlanRepository
from soredi_sync.db.repository import SqlAlchemyRegistryRepository, SqlAlchemySyncRunRepository
from soredi_sync.db.webhook_repository import SqlAlchemyWebhookRepository


class UnitOfWork(Protocol):
    """What a use case needs from storage: repositories plus commit/rollback.

    Leaving the ``with`` block without :meth:`commit` rolls everything back.
    """

    registry: SqlAlchemyRegistryRepository
    runs: SqlAlchemySyncRunRepository
    tokens: SqlAlchemyTokenRepository
    decisions: SqlAlchemyDecisionRepository
    plans: SqlAlchemyPlanRepository
    webhooks: SqlAlchemyWebhookRepository

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class SessionUnitOfWork:
    """One session and transaction; rolled back on leaving unless committed.

    Subclasses attach their repositories to the session in :meth:`_open`.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use it in a with block")
        return self._session

    def _open(self, session: Session) -> None:
        """Create the repositories over ``session``."""

    def __enter__(self) -> Self:
        self._session = self._session_factory()
        self._open(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self.session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class SqlAlchemyUnitOfWork(SessionUnitOfWork):
    """The one unit of work: every repository over one session and transaction."""

    registry: SqlAlchemyRegistryRepository
    runs: SqlAlchemySyncRunRepository
    tokens: SqlAlchemyTokenRepository
    decisions: SqlAlchemyDecisionRepository
    plans: SqlAlchemyPlanRepository
    webhooks: SqlAlchemyWebhookRepository

    def _open(self, session: Session) -> None:
        self.registry = SqlAlchemyRegistryRepository(session)
        self.runs = SqlAlchemySyncRunRepository(session)
        self.tokens = SqlAlchemyTokenRepository(session)
        self.decisions = SqlAlchemyDecisionRepository(session)
        self.plans = SqlAlchemyPlanRepository(session)
        self.webhooks = SqlAlchemyWebhookRepository(session)
