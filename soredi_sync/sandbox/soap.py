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

Binds to loopback only: the service has no authentication (no DGWS/SOSI here).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln, Unit
from soredi_sync.sandbox.catalog import BASE_DATE
from soredi_sync.sandbox.generate import load_message_types
from soredi_sync.sandbox.journal import ACTIONS, ChangeRequest, JournalEntry, SubmissionJournal
from soredi_sync.sandbox.loopback import BackgroundServer, FaultQueue, QuietHandler
from soredi_sync.sandbox.server import SandboxServer, is_loopback_host
from soredi_sync.sandbox.vocabulary import Vocabulary
from soredi_sync.sandbox.world import World

logger = logging.getLogger(__name__)

SORLS_NS = "urn:soredi:modelled:sorls:1"
SKRS_NS = "urn:soredi:modelled:skrs:1"
SORUS_NS = "urn:soredi:modelled:sorus:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICES = ("sorls", "skrs", "sorus")
FAULT_KINDS = ("fault", "delay", "malformed", "status")
_CONTRACTS = Path(__file__).resolve().parent.parent / "soap" / "contracts"
_MAX_BODY = 1024 * 1024


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


class _Handler(QuietHandler):
    server_version = "soredi-soap-sandbox"

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        soap = self.server.owner
        if path[1:] in SERVICES and split.query.lower() == "wsdl":
            text = (_CONTRACTS / f"{path[1:]}.wsdl").read_text(encoding="utf-8")
            text = text.replace(f"http://localhost{path}", soap.url(path[1:]))
            self._send(HTTPStatus.OK, "text/xml; charset=utf-8", text.encode())
        elif path[1:].removesuffix(".xsd") in SERVICES and path.endswith(".xsd"):
            body = (_CONTRACTS / path[1:]).read_bytes()
            self._send(HTTPStatus.OK, "text/xml; charset=utf-8", body)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        soap = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if path[1:] not in SERVICES or length > _MAX_BODY:
            self.close_connection = True
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
            return
        body = self.rfile.read(length)
        service = path[1:]
        soap._record(service)
        fault = soap._take_fault(service)
        if fault is not None:
            if fault.kind == "delay":
                soap._stopping.wait(fault.delay)
            elif fault.kind == "status":
                self._send(fault.status, "text/plain", f"{fault.status} sandbox\n".encode())
                return
            elif fault.kind == "malformed":
                self._send(HTTPStatus.OK, "text/xml", b"<soap:Envelope xmlns:soap='x'><soap:Bo")
                return
            elif fault.kind == "fault":
                self._fault(fault.code, fault.message)
                return
        try:
            request = etree.fromstring(body)
            payload = request.find(f"{{{SOAP_ENV}}}Body")
            operation = payload[0] if payload is not None and len(payload) else None
            if operation is None:
                raise ValueError("no operation in the SOAP body")
            if service == "sorls" and operation.tag == f"{{{SORLS_NS}}}GetSorEntityRequest":
                answer = soap._get_sor_entity(operation)
            elif service == "skrs" and operation.tag == f"{{{SKRS_NS}}}ReplicationRequest":
                answer = soap._replicate(operation)
            elif (
                service == "sorus" and operation.tag == f"{{{SORUS_NS}}}SubmitEdiTypeChangesRequest"
            ):
                answer = soap._submit(operation)
            else:
                raise ValueError(f"unknown operation {operation.tag}")
        except (etree.XMLSyntaxError, ValueError) as exc:
            self._fault("soap:Client", str(exc))
            return
        except NoNextDay as exc:
            self._fault("soap:Server", str(exc))
            return
        except OSError as exc:  # the journal file could not be written: nothing was recorded
            logger.exception("SORUS submission not recorded")
            self._fault("soap:Server", f"the submission could not be recorded: {exc}")
            return
        envelope = (
            f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{answer}</soap:Body>'
            f"</soap:Envelope>"
        )
        self._send(HTTPStatus.OK, "text/xml; charset=utf-8", envelope.encode())

    def _fault(self, code: str, message: str) -> None:
        envelope = (
            f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><soap:Fault>'
            f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>"
            f"</soap:Fault></soap:Body></soap:Envelope>"
        )
        self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/xml; charset=utf-8", envelope.encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class NoNextDay(Exception):
    """The linked sandbox directory ends at the served day: a SORUS change has nowhere to go."""

    def __init__(self, day: int, directory: Path) -> None:
        super().__init__(
            f"the sandbox directory {directory} has no day {day + 1} to publish SORUS changes "
            f"into (it ends at day {day}); generate more days"
        )
        self.day = day


def _el(name: str, value: object | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


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

    handler_class = _Handler
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
        return self._data_for(self.day)

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
        self._data_for(day)  # build now, so the first call after the switch is not the slow one
        logger.info("SOAP sandbox now answers for day %d", day)

    @contextmanager
    def _holding_day(self) -> Iterator[int]:
        if self.files is not None:
            with self.files.holding_day() as day:
                yield day
        else:
            with self._day_lock:
                yield self._day

    def _data_for(self, day: int) -> SoapDay:
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

    # -- operations --

    def _get_sor_entity(self, request: Any) -> str:
        sor_id = (request.findtext(f"{{{SORLS_NS}}}SorIdentifier") or "").strip()
        day_text = (request.findtext(f"{{{SORLS_NS}}}Date") or "").strip()
        data = self.data
        day = date.fromisoformat(day_text) if day_text else data.snapshot_date
        unit = data.units.get(sor_id)
        if unit is None or not unit.is_open_on(day):
            return f'<GetSorEntityResponse xmlns="{SORLS_NS}"/>'
        parts = [
            _el("SorIdentifier", unit.sor_id),
            _el("EntityName", unit.name),
            _el("EntityKind", unit.kind.value),
            _el("ParentSorIdentifier", unit.parent_sor_id),
            _el("InstitutionOwnerSorIdentifier", unit.owner_sor_id),
            _el("EntityTypeIdentifier", unit.type_code),
            _el(
                "EntityInheritedIndicator",
                None if unit.gln_mode.value == "own" else unit.gln_mode.value == "inherited",
            ),
            _el("FromDate", unit.from_date),
            _el("ToDate", unit.to_date),
            _el("ShakIdentifier", unit.shak),
            _el("ProviderIdentifier", unit.provider_number),
            _el("PharmacyIdentifier", unit.pharmacy_number),
            _el("PostalCodeIdentifier", unit.postal_code),
        ]
        gln = data.glns.get(unit.gln) if unit.gln else None
        if gln is not None:
            parts.append(
                "<EanLocationCodeEntity>"
                + _el("EanLocationCode", gln.gln)
                + _el("NonActiveIndicator", not gln.active)
                + _el("OnlyInternalIndicator", gln.only_internal)
                + _el("SystemSupplierIdentifier", gln.system_supplier)
                + _el("SystemTypeIdentifier", gln.system_type)
                + _el("CommunicationSupplierIdentifier", gln.vans)
                + _el("RegionCode", gln.region_code)
                + _el("EdiAdministrator", gln.edi_administrator)
                + _el("FromDate", gln.from_date)
                + _el("ToDate", gln.to_date)
                + "</EanLocationCodeEntity>"
            )
        entity = "".join(parts)
        return (
            f'<GetSorEntityResponse xmlns="{SORLS_NS}"><SorEntity>{entity}</SorEntity>'
            "</GetSorEntityResponse>"
        )

    def _replicate(self, request: Any) -> str:
        register = (request.findtext(f"{{{SKRS_NS}}}register") or "").strip()
        datatype = (request.findtext(f"{{{SKRS_NS}}}datatype") or "").strip()
        offset = (request.findtext(f"{{{SKRS_NS}}}offset") or "").strip() or None
        try:
            limit = int(request.findtext(f"{{{SKRS_NS}}}maxRecords") or "0")
        except ValueError as exc:
            raise ValueError("maxRecords must be an integer") from exc
        if limit < 1:
            raise ValueError("maxRecords must be >= 1")
        if offset is not None and not offset.isdigit():
            raise ValueError(f"unknown offset {offset!r}")
        if not datatype.endswith("eanlocationcodeeditype/v1"):
            raise ValueError(
                f"the sandbox replicates eanlocationcodeeditype only, not {datatype!r}"
            )
        data = self.data
        updated = datetime.combine(data.snapshot_date, time(4, 30), tzinfo=UTC).isoformat()
        entries = "".join(
            "<entry>"
            + _el("id", f"tag:sandbox,2026:{register}/{datatype}/{row.offset}")
            + _el("offset", row.offset)
            + _el("updated", updated)
            + "<content><EanLocationCodeEdiType>"
            + _el("EanLocationCode", row.gln)
            + _el("EdiTypeIdentifier", row.edi_type_id)
            + _el("StandardIdentifier", row.message_type)
            + _el("VersionCode", row.version_code)
            + _el("ValidFrom", row.valid_from)
            + _el("ValidTo", row.valid_to)
            + "</EanLocationCodeEdiType></content></entry>"
            for row in data.rows_after(offset, limit)
        )
        return (
            f'<ReplicationResponse xmlns="{SKRS_NS}"><feed>'
            f"{_el('id', f'{register}/{datatype}')}{_el('updated', updated)}{entries}"
            f"</feed></ReplicationResponse>"
        )

    def _submit(self, request: Any) -> str:
        if request.find(f"{{{SORUS_NS}}}Reference") is None:
            raise ValueError("SubmitEdiTypeChangesRequest has no Reference")
        reference = (request.findtext(f"{{{SORUS_NS}}}Reference") or "").strip()
        changes = [
            _change(element, index)
            for index, element in enumerate(request.findall(f"{{{SORUS_NS}}}Change"), start=1)
        ]
        if not changes:
            raise ValueError("SubmitEdiTypeChangesRequest has no Change")
        received_at = datetime.now(UTC).replace(microsecond=0)
        with self._holding_day() as day:
            if self.files is not None and day >= self.files.last_day:
                raise NoNextDay(day, self.files.directory)
            data = self._data_for(day)
            effective = data.snapshot_date + timedelta(days=1)
            results: list[str] = []
            accepted: list[ChangeRequest] = []
            for change in changes:
                reason = data.rejection(change)
                if reason is None:
                    accepted.append(change)
                results.append(
                    "<ChangeResult>"
                    + _el("ChangeIdentifier", change.change_id)
                    + _el("Status", "accepted" if reason is None else "rejected")
                    + _el("EffectiveDate", effective if reason is None else None)
                    + _el("Reason", reason)
                    + "</ChangeResult>"
                )
            ticket, _ = self.journal.record(
                accepted, received_day=day, received_at=received_at, reference=reference
            )
        return (
            f'<SubmitEdiTypeChangesResponse xmlns="{SORUS_NS}">'
            f"{_el('SubmissionIdentifier', ticket)}{_el('ReceivedAt', received_at.isoformat())}"
            f"{''.join(results)}</SubmitEdiTypeChangesResponse>"
        )


def _change(element: Any, index: int) -> ChangeRequest:
    """One ``Change`` of a SORUS request; ValueError (a client fault) when it breaks the schema."""

    def required(name: str) -> str:
        value = element.findtext(f"{{{SORUS_NS}}}{name}")
        if value is None or not value.strip():
            raise ValueError(f"Change {index} has no {name}")
        return str(value).strip()

    change_id = required("ChangeIdentifier")
    gln = required("EanLocationCode")
    action = required("Action")
    if action not in ACTIONS:
        raise ValueError(f"Change {index}: Action must be one of {ACTIONS}, got {action!r}")
    code = required("StandardIdentifier")
    version = (element.findtext(f"{{{SORUS_NS}}}VersionCode") or "").strip() or None
    return ChangeRequest(change_id, gln, action, code, version)


__all__ = [
    "FAULT_KINDS",
    "SERVICES",
    "SORUS_NS",
    "FeedRow",
    "NoNextDay",
    "SoapDay",
    "SoapFaultSpec",
    "SoapSandboxServer",
]
