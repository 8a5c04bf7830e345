"""A loopback SOAP server playing SORLS (lookup), SKRS (replication) and SORUS (update).

It answers from the generator's own model of one day (:class:`SoapDay`, built from
:class:`~soredi_sync.sandbox.world.World` for a profile, seed and day; no files needed), serves
the modelled contracts at ``/sorls?wsdl``, ``/skrs?wsdl`` and ``/sorus?wsdl`` (with its own
address written into them) and can be told to misbehave per service: a SOAP Fault, a delay
(client timeout), a malformed envelope, or an HTTP 503.

The replication feed holds every LocationsCodeEDITypeMap row of the day (current and ended),
ordered by (GLN, message type, valid-from), with offsets ``0000000001``, ``0000000002``, ...
Entries after an offset are those with a greater offset, so paging is gap- and repeat-free.

SORUS (``SubmitEdiTypeChanges``, MODELLED) judges each change against the day served: an
unknown or inactive GLN or an unknown message type is ``rejected`` with a reason, anything
else ``accepted`` with ``EffectiveDate`` = the next day, and goes into a
:class:`~soredi_sync.sandbox.journal.SubmissionJournal`. A request without ``Reference`` or
``Change`` is a ``soap:Client`` fault.

Two ways to run it:

- standalone (``SoapSandboxServer(profile, seed, day)`` or
  ``SoapSandboxServer(data=SoapDay(...))``): it keeps its own in-memory journal, and
  :meth:`SoapSandboxServer.set_day` moves it to another day, with the journal entries
  effective by then applied;
- linked to a :class:`~soredi_sync.sandbox.server.SandboxServer`
  (``SoapSandboxServer(files=http_server)``): it follows that server's day (``POST
  /_sandbox/day/N``), answers SORLS and SKRS for it, and records submissions in the directory's
  journal, so after ``set_day(N + 1)`` the files, the feed and the lookups all show them. A
  submission on the directory's last day is a ``soap:Server`` fault: there is no next day to
  publish into.

Binds to loopback only: the service has no authentication (no DGWS/SOSI here). This module
holds the day served and the server's state; :mod:`soredi_sync.sandbox.soap_handler` reads the
requests and :mod:`soredi_sync.sandbox.soap_services` answers them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln, Unit
from soredi_sync.sandbox.catalog import BASE_DATE
from soredi_sync.sandbox.generate import load_message_types
from soredi_sync.sandbox.journal import ChangeRequest, JournalEntry, SubmissionJournal
from soredi_sync.sandbox.loopback import BackgroundServer, FaultQueue
from soredi_sync.sandbox.server import SandboxServer, is_loopback_host
from soredi_sync.sandbox.soap_handler import SoapHandler
from soredi_sync.sandbox.vocabulary import Vocabulary
from soredi_sync.sandbox.world import World

logger = logging.getLogger(__name__)

FAULT_KINDS = ("fault", "delay", "malformed", "status")


@dataclass(frozen=True, slots=True)
class FeedRow:
    gln: str
    message_type: str
    edi_type_id: str
    version_code: str | None
    valid_from: date
    valid_to: date | None
    offset: str


@dataclass(frozen=True, slots=True)
class SoapFaultSpec:
    """One injected misbehaviour for the next ``times`` calls to ``service`` (None: any).

    ``kind``: ``fault`` (SOAP Fault ``code``/``message`` on HTTP 500), ``delay`` (sleep
    ``delay`` seconds, then answer normally), ``malformed`` (HTTP 200, broken XML), ``status``
    (HTTP ``status``, default 503, plain-text body).
    """

    kind: str
    service: str | None = None
    times: int = 1
    delay: float = 0.0
    status: int = 503
    code: str = "soap:Server"
    message: str = "sandbox fault"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.times < 1:
            raise ValueError(f"times must be >= 1, got {self.times!r}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay!r}")


class SoapDay:
    """The data one sandbox day serves: units, GLNs and the replication feed rows.

    :param submissions: SORUS journal entries; those effective on ``day`` or earlier are
        applied (kept in :attr:`submissions`), later ones ignored.
    :param message_types: default ``config/message-types.tsv``.
    """

    def __init__(
        self,
        profile: str,
        seed: int,
        day: int,
        *,
        base_date: date = BASE_DATE,
        submissions: Sequence[JournalEntry] = (),
        message_types: MessageTypeRegistry | None = None,
    ) -> None:
        if day < 0:
            raise ValueError(f"day must be >= 0, got {day}")
        self.profile = profile
        self.seed = seed
        self.day = day
        self.base_date = base_date
        self.submissions: tuple[JournalEntry, ...] = tuple(
            e for e in submissions if e.effective_day <= day
        )
        world = World(
            profile,
            seed,
            message_types or load_message_types(),
            base_date,
            submissions=self.submissions,
        )
        for _ in range(day):
            world.advance()
        snapshot = world.snapshot()
        self.vocabulary: Vocabulary = world.vocabulary
        self.snapshot_date = snapshot.snapshot_date
        self.units: dict[str, Unit] = dict(snapshot.units)
        self.glns: dict[str, Gln] = dict(snapshot.glns)
        by_id = world.vocabulary.by_id
        raw: list[tuple[str, str, date, str, date | None]] = []
        for gln, record in world.glns.items():
            for code, (edi_id, since) in record.types.items():
                raw.append((gln, code, since, edi_id, None))
            for code, edi_id, since, until in record.ended:
                raw.append((gln, code, since, edi_id, until))
        raw.sort(key=lambda r: (r[0], r[1], r[2], r[4] or date.max))
        self.rows: list[FeedRow] = [
            FeedRow(
                gln=gln,
                message_type=code,
                edi_type_id=edi_id,
                version_code=by_id[edi_id].version_code or None,
                valid_from=since,
                valid_to=until,
                offset=f"{index:010d}",
            )
            for index, (gln, code, since, edi_id, until) in enumerate(raw, start=1)
        ]
        if len(self.rows) != snapshot.capability_rows:  # the feed and the files must agree
            raise AssertionError(
                f"{len(self.rows)} feed rows, the model has {snapshot.capability_rows}"
            )

    def rows_after(self, offset: str | None, limit: int) -> list[FeedRow]:
        start = int(offset) if offset else 0
        return self.rows[start : start + limit]

    def rebuilt(self, day: int, submissions: Sequence[JournalEntry]) -> SoapDay:
        """The same register on ``day`` with ``submissions``."""
        return SoapDay(
            self.profile,
            self.seed,
            day,
            base_date=self.base_date,
            submissions=submissions,
            message_types=self.vocabulary.registry,
        )

    def rejection(self, change: ChangeRequest) -> str | None:
        """Why SORUS refuses ``change`` on this day, or None when it accepts it."""
        gln = self.glns.get(change.gln)
        if gln is None:
            return f"unknown GLN {change.gln}: not in the register on {self.snapshot_date}"
        if not gln.active:
            return f"GLN {change.gln} is not active (NonActiveIndicator is true)"
        if gln.to_date is not None and gln.to_date <= self.snapshot_date:
            return f"GLN {change.gln} has ended (ToDate {gln.to_date})"
        if change.message_type not in self.vocabulary:
            return f"unknown message type {change.message_type!r} (StandardIdentifier)"
        return None


class SoapSandboxServer(BackgroundServer):
    """SORLS, SKRS and SORUS on loopback, answering from one sandbox day.

    Standalone it serves ``data`` (default ``SoapDay(profile, seed, day)``) with its own
    ``journal`` (default: in memory); with ``files`` it follows that HTTP sandbox's day and
    journal (``profile``, ``seed``, ``day``, ``data`` and ``journal`` must then be left out).

    :param profile: sandbox profile (``tiny``, ``small``, ``national``).
    :param port: 0 picks a free port (see :attr:`base_url` after :meth:`start`).
    :param files: a :class:`~soredi_sync.sandbox.server.SandboxServer` to link to.
    :raises ValueError: for a non-loopback host, ``files`` combined with ``data`` or
        ``journal``, or ``files`` on a directory without a manifest.
    """

    handler_class = SoapHandler
    name = "SOAP sandbox"

    def __init__(
        self,
        profile: str = "tiny",
        seed: int = 0,
        day: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        data: SoapDay | None = None,
        files: SandboxServer | None = None,
        journal: SubmissionJournal | None = None,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"refusing to serve the SOAP sandbox on non-loopback host {host!r}")
        if files is not None:
            if data is not None or journal is not None:
                raise ValueError("a SOAP sandbox linked to files takes their data and journal")
            if files.manifest is None:
                raise ValueError(f"{files.directory} has no manifest to serve SOAP from")
        super().__init__(host, port)
        self.files = files
        self._data: SoapDay | None
        if files is not None:
            self.journal = files.journal
            self._data = None  # built on first use, for the day the files serve then
        else:
            self.journal = journal if journal is not None else SubmissionJournal()
            self._data = data if data is not None else SoapDay(profile, seed, day)
        self._day = self._data.day if self._data is not None else 0
        self._day_lock = threading.RLock()
        self._data_lock = threading.Lock()
        self._lock = threading.Lock()
        self._faults: FaultQueue[SoapFaultSpec] = FaultQueue()
        self._calls: list[str] = []

    # -- the day served --

    @property
    def day(self) -> int:
        """The day answered: the linked server's, else the one last set."""
        return self.files.day if self.files is not None else self._day

    @property
    def data(self) -> SoapDay:
        """The current day's data, with the journal entries effective by then applied (rebuilt
        when the day or those entries change)."""
        return self.data_for(self.day)

    def set_day(self, day: int) -> None:
        """Answer for ``day`` from now on; linked, this moves the HTTP server too (which
        regenerates its files for pending submissions).

        :raises ValueError: for a negative day, or (linked) a day the directory lacks.
        """
        if self.files is not None:
            self.files.set_day(day)
        else:
            if day < 0:
                raise ValueError(f"day must be >= 0, got {day}")
            with self._day_lock:
                self._day = day
        self.data_for(day)  # build now, so the first call after the switch is not the slow one
        logger.info("SOAP sandbox now answers for day %d", day)

    @contextmanager
    def holding_day(self) -> Iterator[int]:
        """Keep the day answered from changing while the block runs; yields it."""
        if self.files is not None:
            with self.files.holding_day() as day:
                yield day
        else:
            with self._day_lock:
                yield self._day

    def data_for(self, day: int) -> SoapDay:
        """The data of ``day``, with the journal entries effective by then applied."""
        effective = self.journal.effective_by(day)
        with self._data_lock:
            current = self._data
            if current is not None and current.day == day and current.submissions == effective:
                return current
            if current is not None:
                fresh = current.rebuilt(day, effective)
            else:
                assert self.files is not None and self.files.manifest is not None
                manifest = self.files.manifest
                fresh = SoapDay(
                    manifest.profile,
                    manifest.seed,
                    day,
                    base_date=date.fromisoformat(manifest.base_date),
                    submissions=effective,
                    message_types=self.files.message_types,
                )
            self._data = fresh
            return fresh

    @property
    def base_url(self) -> str:
        return f"http://{self.url_host}:{self.running_port}/"

    def url(self, service: str) -> str:
        """``http://127.0.0.1:PORT/sorls`` (the endpoint) for ``sorls``, ``skrs`` or ``sorus``."""
        return self.base_url + service

    def wsdl_url(self, service: str) -> str:
        return self.url(service) + "?wsdl"

    # -- faults and bookkeeping --

    def inject(self, kind: str, service: str | None = None, **options: Any) -> SoapFaultSpec:
        """Make the next ``times`` calls to ``service`` (``sorls``/``skrs``/``sorus``/None)
        misbehave (see :class:`SoapFaultSpec`)."""
        return self._faults.add(SoapFaultSpec(kind=kind, service=service, **options))

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def calls(self) -> list[str]:
        """The service of every SOAP call received (``?wsdl`` fetches excluded)."""
        with self._lock:
            return list(self._calls)

    def _record(self, service: str) -> None:
        with self._lock:
            self._calls.append(service)

    def _take_fault(self, service: str) -> SoapFaultSpec | None:
        return self._faults.take(lambda fault: fault.service is None or fault.service == service)


__all__ = ["FAULT_KINDS", "FeedRow", "SoapDay", "SoapFaultSpec", "SoapSandboxServer"]
