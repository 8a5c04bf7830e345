"""A loopback SOSI STS for tests and the sandbox (MODELLED WS-Trust Issue of DGWS ID cards).

It checks the request's ID card signature against the certificate presented in its KeyInfo (with
``signxml``), then issues an ID card it signs with its own key, valid ``lifetime`` seconds. It
does not check that the certificate chains to an OCES CA (a real STS does). Tests can make it
refuse (SOAP fault) or issue cards with any validity, including already expired ones.

Without a key and certificate it makes an ephemeral self-signed pair in memory (never written).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.exceptions import InvalidInput, InvalidSignature

from soredi_sync.sandbox.loopback import BackgroundServer, QuietHandler
from soredi_sync.sandbox.server import is_loopback_host
from soredi_sync.soap.dgws import (
    Credentials,
    build_id_card,
    card_attribute,
    certificate_in_signature,
    sign_enveloped,
    verify_enveloped,
)
from soredi_sync.soap.dgws.names import (
    ATTR_AUTH_LEVEL,
    ATTR_CARE_PROVIDER,
    ATTR_CVR,
    ATTR_SYSTEM,
    SAML,
    SOAP_ENV,
    WST,
    Clock,
    utc_now,
)

logger = logging.getLogger(__name__)

_MAX_BODY = 256 * 1024


def self_signed(common_name: str, *, days: int = 30, clock: Clock = utc_now) -> Credentials:
    """An in-memory RSA-2048 key and self-signed certificate (tests and the sandbox only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "soredi-sync sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = clock()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return Credentials(key=key, certificate=cert)


@dataclass(frozen=True, slots=True)
class StsRefusal:
    code: str = "wst:FailedAuthentication"
    message: str = "sandbox STS refuses"


class _Handler(QuietHandler):
    server_version = "soredi-sts-sandbox"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if urlsplit(self.path).path.rstrip("/") != "/sts" or length > _MAX_BODY:
            self.close_connection = True
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        body = self.rfile.read(length)
        status, answer = self.server.owner._answer(body)
        self._send(status, answer.encode(), "text/xml; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _envelope(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    )


def _fault(code: str, message: str) -> tuple[int, str]:
    return HTTPStatus.INTERNAL_SERVER_ERROR, _envelope(
        f"<soap:Fault><faultcode>{escape(code)}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring></soap:Fault>"
    )


class StsSandboxServer(BackgroundServer):
    """The STS at ``http://127.0.0.1:PORT/sts``.

    :param lifetime: seconds an issued card is valid (negative: issued already expired).
    :param credentials: the STS's signing key and certificate (default: ephemeral self-signed).
    """

    handler_class = _Handler
    name = "STS sandbox"

    def __init__(
        self,
        *,
        lifetime: float = 3600.0,
        credentials: Credentials | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"refusing to serve the STS sandbox on non-loopback host {host!r}")
        self.lifetime = lifetime
        self.credentials = credentials or self_signed("soredi-sync sandbox STS", clock=clock)
        super().__init__(host, port)
        self._clock = clock
        self._lock = threading.Lock()
        self._refusals: list[StsRefusal] = []
        self._issued = 0

    @property
    def certificate(self) -> x509.Certificate:
        return self.credentials.certificate

    # -- lifecycle --

    @property
    def url(self) -> str:
        return f"http://{self.url_host}:{self.running_port}/sts"

    # -- test controls --

    def refuse(
        self,
        code: str = "wst:FailedAuthentication",
        message: str = "sandbox STS refuses",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with a SOAP fault."""
        with self._lock:
            self._refusals.extend([StsRefusal(code, message)] * times)

    @property
    def issued(self) -> int:
        """How many ID cards were issued."""
        with self._lock:
            return self._issued

    # -- the operation --

    def _answer(self, body: bytes) -> tuple[int, str]:
        with self._lock:
            refusal = self._refusals.pop(0) if self._refusals else None
        if refusal is not None:
            return _fault(refusal.code, refusal.message)
        try:
            request = etree.fromstring(body)
        except etree.XMLSyntaxError as exc:
            return _fault("soap:Client", f"not XML: {exc}")
        claim = request.find(
            f"{{{SOAP_ENV}}}Body/{{{WST}}}RequestSecurityToken/{{{WST}}}Claims/{{{SAML}}}Assertion"
        )
        if claim is None:
            return _fault("wst:InvalidRequest", "no ID card in RequestSecurityToken/Claims")
        try:
            presented = certificate_in_signature(claim)
            verify_enveloped(claim, presented)
        except (InvalidSignature, InvalidInput, ValueError) as exc:
            return _fault("wst:FailedAuthentication", f"the request's signature is invalid: {exc}")
        now = self._clock()
        if not presented.not_valid_before_utc <= now < presented.not_valid_after_utc:
            return _fault("wst:FailedAuthentication", "the presented certificate is not valid now")
        card = build_id_card(
            issuer="soredi-sync sandbox STS",
            system_name=card_attribute(claim, ATTR_SYSTEM) or "",
            care_provider_cvr=card_attribute(claim, ATTR_CVR) or "",
            care_provider_name=card_attribute(claim, ATTR_CARE_PROVIDER) or "",
            authentication_level=int(card_attribute(claim, ATTR_AUTH_LEVEL) or "3"),
            not_before=now - timedelta(seconds=max(0.0, -self.lifetime) + 60),
            not_on_or_after=now + timedelta(seconds=self.lifetime),
        )
        signed = sign_enveloped(card, self.credentials)
        with self._lock:
            self._issued += 1
        token = etree.tostring(signed).decode()
        return HTTPStatus.OK, _envelope(
            f'<wst:RequestSecurityTokenResponse xmlns:wst="{WST}" Context="www.sosi.dk">'
            f"<wst:TokenType>http://sosi.dk/sosi/2006/04/sosi-1.0.xsd#IDCard</wst:TokenType>"
            f"<wst:RequestedSecurityToken>{token}</wst:RequestedSecurityToken>"
            f"</wst:RequestSecurityTokenResponse>"
        )


__all__ = ["StsRefusal", "StsSandboxServer", "self_signed"]
