"""Unit of Work: one session, one transaction, rolled back unless the use case commits.

:class:`SqlAlchemyUnitOfWork` is the adapter of :class:`soredi_sync.ports.storage.UnitOfWork`;
only ``bootstrap`` builds it (``app.uow()``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from soredi_sync.db.api_repository import SqlAlchemyDecisionRepository, SqlAlchemyTokenRepository
from soredi_sync.db.audit_repository import SqlAlchemyAuditRepository
from soredi_sync.db.cursor_repository import SqlAlchemyCursorRepository
from soredi_sync.db.fhir_repository import SqlAlchemyFhirRepository
from soredi_sync.db.plan_repository import SqlAlchemyPlanRepository
from soredi_sync.db.registry_repository import SqlAlchemyRegistryRepository
from soredi_sync.db.run_repository import SqlAlchemySyncRunRepository
from soredi_sync.db.traffic_repository import SqlAlchemyTrafficRepository
from soredi_sync.db.webhook_repository import SqlAlchemyWebhookRepository


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
    audits: SqlAlchemyAuditRepository
    fhir: SqlAlchemyFhirRepository
    tokens: SqlAlchemyTokenRepository
    decisions: SqlAlchemyDecisionRepository
    plans: SqlAlchemyPlanRepository
    webhooks: SqlAlchemyWebhookRepository
    cursors: SqlAlchemyCursorRepository
    traffic: SqlAlchemyTrafficRepository

    def _open(self, session: Session) -> None:
        self.registry = SqlAlchemyRegistryRepository(session)
        self.runs = SqlAlchemySyncRunRepository(session)
        self.audits = SqlAlchemyAuditRepository(session)
        self.fhir = SqlAlchemyFhirRepository(session)
        self.tokens = SqlAlchemyTokenRepository(session)
        self.decisions = SqlAlchemyDecisionRepository(session)
        self.plans = SqlAlchemyPlanRepository(session)
        self.webhooks = SqlAlchemyWebhookRepository(session)
        self.cursors = SqlAlchemyCursorRepository(session)
        self.traffic = SqlAlchemyTrafficRepository(session)
