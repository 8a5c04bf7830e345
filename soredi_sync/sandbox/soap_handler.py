"""How the SOAP sandbox answers one HTTP request: the contracts (``/sorls?wsdl``, with its own
address written in, and their XSDs), the injected per-service faults, and the SOAP envelope
around what :mod:`soredi_sync.sandbox.soap_services` answers (or a SOAP Fault).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from soredi_sync.sandbox.loopback import QuietHandler
from soredi_sync.sandbox.soap_services import (
    SKRS_NS,
    SORLS_NS,
    SORUS_NS,
    NoNextDay,
    get_sor_entity,
    replicate,
    submit,
)

logger = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICES = ("sorls", "skrs", "sorus")
_CONTRACTS = Path(__file__).resolve().parent.parent / "soap" / "contracts"
_MAX_BODY = 1024 * 1024


class SoapHandler(QuietHandler):
    """Answers for ``self.server.owner``, a :class:`~soredi_sync.sandbox.soap.SoapSandboxServer`."""

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
                answer = get_sor_entity(soap, operation)
            elif service == "skrs" and operation.tag == f"{{{SKRS_NS}}}ReplicationRequest":
                answer = replicate(soap, operation)
            elif (
                service == "sorus" and operation.tag == f"{{{SORUS_NS}}}SubmitEdiTypeChangesRequest"
            ):
                answer = submit(soap, operation)
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


__all__ = ["SERVICES", "SOAP_ENV", "SoapHandler"]
