"""A loopback SOAP server playing SORLS (lookup) and SKRS (replication) from a sandbox day.

It answers from the generator's own model of one day (:class:`~soredi_sync.sandbox.world.World`
for a profile, seed and day; no files needed), serves the modelled contracts at ``/sorls?wsdl``
and ``/skrs?wsdl`` (with its own address written into them) and can be told to misbehave:
a SOAP Fault, a delay (client timeout), a malformed envelope, or an HTTP 503.

The replication feed holds every LocationsCodeEDITypeMap row of the day (current and ended),
ordered by (GLN, message type, valid-from), with offsets ``0000000001``, ``0000000002``, ...
Entries after an offset are those with a greater offset, so paging is gap- and repeat-free.

Binds to loopback only: the service has no authentication (no DGWS/SOSI here).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from soredi_sync.domain.model import Gln, Unit
from soredi_sync.sandbox.catalog import BASE_DATE
from soredi_sync.sandbox.generate import load_message_types
from soredi_sync.sandbox.loopback import BackgroundServer, QuietHandler
from soredi_sync.sandbox.server import is_loopback_host
from soredi_sync.sandbox.world import World

logger = logging.getLogger(__name__)

SORLS_NS = "urn:soredi:modelled:sorls:1"
SKRS_NS = "urn:soredi:modelled:skrs:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
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
    """The data one sandbox day serves: units, GLNs and the replication feed rows."""

    def __init__(self, profile: str, seed: int, day: int, *, base_date: date = BASE_DATE) -> None:
        world = World(profile, seed, load_message_types(), base_date)
        for _ in range(day):
            world.advance()
        snapshot = world.snapshot()
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


class _Handler(QuietHandler):
    server_version = "soredi-soap-sandbox"

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        soap = self.server.owner
        if path in ("/sorls", "/skrs") and split.query.lower() == "wsdl":
            text = (_CONTRACTS / f"{path[1:]}.wsdl").read_text(encoding="utf-8")
            text = text.replace(f"http://localhost{path}", soap.url(path[1:]))
            self._send(HTTPStatus.OK, "text/xml; charset=utf-8", text.encode())
        elif path in ("/sorls.xsd", "/skrs.xsd"):
            body = (_CONTRACTS / path[1:]).read_bytes()
            self._send(HTTPStatus.OK, "text/xml; charset=utf-8", body)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        soap = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if path not in ("/sorls", "/skrs") or length > _MAX_BODY:
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
            else:
                raise ValueError(f"unknown operation {operation.tag}")
        except (etree.XMLSyntaxError, ValueError) as exc:
            self._fault("soap:Client", str(exc))
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


def _el(name: str, value: object | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


class SoapSandboxServer(BackgroundServer):
    """SORLS + SKRS on loopback, answering from one sandbox day.

    :param profile: sandbox profile (``tiny``, ``small``, ``national``).
    :param port: 0 picks a free port (see :attr:`base_url` after :meth:`start`).
    :raises ValueError: for a non-loopback host.
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
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"refusing to serve the SOAP sandbox on non-loopback host {host!r}")
        super().__init__(host, port)
        self.data = data if data is not None else SoapDay(profile, seed, day)
        self._lock = threading.Lock()
        self._faults: list[SoapFaultSpec] = []
        self._calls: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.url_host}:{self.running_port}/"

    def url(self, service: str) -> str:
        """``http://127.0.0.1:PORT/sorls`` (the endpoint) for ``sorls`` or ``skrs``."""
        return self.base_url + service

    def wsdl_url(self, service: str) -> str:
        return self.url(service) + "?wsdl"

    # -- faults and bookkeeping --

    def inject(self, kind: str, service: str | None = None, **options: Any) -> SoapFaultSpec:
        """Make the next ``times`` calls to ``service`` (``sorls``/``skrs``/None) misbehave."""
        fault = SoapFaultSpec(kind=kind, service=service, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
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
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.service is None or fault.service == service:
                    if fault.times <= 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, times=fault.times - 1)
                    return fault
        return None

    # -- operations --

    def _get_sor_entity(self, request: Any) -> str:
        sor_id = (request.findtext(f"{{{SORLS_NS}}}SorIdentifier") or "").strip()
        day_text = (request.findtext(f"{{{SORLS_NS}}}Date") or "").strip()
        day = date.fromisoformat(day_text) if day_text else self.data.snapshot_date
        unit = self.data.units.get(sor_id)
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
        gln = self.data.glns.get(unit.gln) if unit.gln else None
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
        updated = datetime.combine(self.data.snapshot_date, time(4, 30), tzinfo=UTC).isoformat()
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
            for row in self.data.rows_after(offset, limit)
        )
        return (
            f'<ReplicationResponse xmlns="{SKRS_NS}"><feed>'
            f"{_el('id', f'{register}/{datatype}')}{_el('updated', updated)}{entries}"
            f"</feed></ReplicationResponse>"
        )


__all__ = ["FAULT_KINDS", "FeedRow", "SoapDay", "SoapFaultSpec", "SoapSandboxServer"]
