"""The composition root: builds engine, sessions, clients and use-case configs from Settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from soredi_sync.clients.sor_files import (
    DirectorySorFilesClient,
    HttpxSorFilesClient,
    SorFilesClient,
    make_http_client,
)
from soredi_sync.clients.webhook_http import make_webhook_sender
from soredi_sync.config import Settings
from soredi_sync.db.current_snapshot import SqlAlchemyCurrentSnapshot
from soredi_sync.db.engine import make_engine, make_session_factory
from soredi_sync.db.unit_of_work import SqlAlchemyUnitOfWork
from soredi_sync.domain.traffic import Owners
from soredi_sync.errors import NoSnapshot
from soredi_sync.ports.webhooks import WebhookSender
from soredi_sync.reference_data import ReferenceData
from soredi_sync.services.audit import AuditCache
from soredi_sync.services.cutover import CutoverCache
from soredi_sync.services.fhir_search import DirectoryCache
from soredi_sync.services.routing import RoutingService
from soredi_sync.services.sync import SyncConfig

if TYPE_CHECKING:
    from soredi_sync.soap.sorus import SorusClient


@dataclass
class App:
    """Everything an entrypoint needs, built once from one Settings object."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    reference: ReferenceData  # the config folder's tables and routing policy, read once
    # Findings per snapshot, so audit reads do not load and audit a snapshot per request.
    audit_cache: AuditCache = field(default_factory=AuditCache, repr=False)
    # Cut-over reports per snapshot and date (whole registry; narrowed to owners on read).
    cutover_cache: CutoverCache = field(default_factory=CutoverCache, repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)
    _routing: RoutingService | None = field(default=None, repr=False)
    _sorus: SorusClient | None = field(default=None, repr=False)
    _webhook_sender: WebhookSender | None = field(default=None, repr=False)
    _fhir_directory: DirectoryCache | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.session_factory)

    @property
    def uow_factory(self) -> Callable[[], SqlAlchemyUnitOfWork]:
        return self.uow

    def sync_config(self) -> SyncConfig:
        return SyncConfig(
            sources=self.settings.sources,
            columns=self.reference.csv_columns,
            guards=self.settings.guards,
            message_types=self.reference.message_types,
        )

    def routing(self) -> RoutingService:
        """The one routing service of this process (it holds the in-memory index)."""
        if self._routing is None:
            self._routing = RoutingService(
                SqlAlchemyCurrentSnapshot(self.engine),
                self.uow_factory,
                self.reference.routing_policy,
                self.reference.message_types,
            )
        return self._routing

    def traffic_owners(self) -> Owners:
        """Owners as the current snapshot has them, for the traffic counts (the routing index's
        registry); nobody's before the first sync."""
        from soredi_sync.services.traffic import NO_OWNERS, owners_of

        try:
            return owners_of(self.routing().resolver().index)
        except NoSnapshot:
            return NO_OWNERS

    def fhir_directory(self) -> DirectoryCache:
        """The FHIR directory's index of this process (``/fhir`` reads and searches it; the API's
        warm-up keeps it current)."""
        with self._lock:
            if self._fhir_directory is None:
                self._fhir_directory = DirectoryCache(self.uow_factory)
            return self._fhir_directory

    def sorus(self) -> SorusClient:
        """The SORUS client of this process (reads the configured WSDL on first use)."""
        if self._sorus is None:
            from soredi_sync.soap.sorus import make_sorus_client

            self._sorus = make_sorus_client(self.settings.soap)
        return self._sorus

    def webhook_sender(self) -> WebhookSender:
        """The sender of webhook deliveries (``webhooks`` settings: policy, deadline, answer
        cap). It holds no connection between POSTs, so there is nothing to close."""
        if self._webhook_sender is None:
            self._webhook_sender = make_webhook_sender(
                self.settings.webhooks, self.settings.http.user_agent
            )
        return self._webhook_sender

    def files_client(
        self, base_url: str | None = None, from_dir: Path | None = None
    ) -> SorFilesClient:
        if from_dir is not None:
            return DirectorySorFilesClient(from_dir)
        if self._http is None:
            self._http = make_http_client(self.settings.http)
        return HttpxSorFilesClient(
            self._http, base_url or self.settings.sources.base_url, self.settings.retry
        )

    def close(self) -> None:
        if self._routing is not None:
            self._routing.close()
            self._routing = None
        if self._http is not None:
            self._http.close()
            self._http = None
        self.engine.dispose()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bootstrap(settings: Settings, reference: ReferenceData | None = None) -> App:
    """The App of ``settings``; ``reference`` when the caller has read it already (the demo
    needs it before its App), otherwise read from ``settings.config_dir``.

    :raises ReferenceDataError: a file of the config folder is missing or wrong, named
    """
    if reference is None:
        reference = ReferenceData.load(settings.config_dir)
    engine = make_engine(settings.database_url)
    return App(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        reference=reference,
    )
