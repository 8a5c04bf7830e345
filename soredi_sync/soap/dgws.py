"""DGWS / SOSI security for the zeep clients: ID card from a SOSI STS, cached, added to each call.

MODELLED: the message shapes follow the published DGWS 1.0.1 / SOSI descriptions (a WS-Trust
``RequestSecurityToken`` carrying a SAML 2.0 assertion, the "ID card", signed with the
organisation's certificate; the STS answers with an ID card it signed itself), but they are not
checked against the real NSP STS. Names and namespaces live in this module only.

Signing and verification use ``signxml`` (XML-DSig, RSA-SHA256, exclusive C14N); keys and
certificates are loaded with ``cryptography``. Nothing here logs key material or card content.

Flow: :class:`IdCardProvider` asks :class:`StsClient` for a card, keeps it until
``refresh_margin`` seconds before it expires, and :class:`DgwsPlugin` (a zeep plugin) puts the
card into ``wsse:Security`` and a ``medcom:Header`` into every outgoing envelope.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import zeep
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12
from lxml import etree
from pydantic import SecretStr
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from soredi_sync.config import DgwsSettings
from soredi_sync.errors import SourceError
from soredi_sync.retry import retrying

logger = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WST = "http://schemas.xmlsoap.org/ws/2005/02/trust"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
MEDCOM = "http://www.medcom.dk/dgws/2006/04/dgws-1.0.xsd"
SOSI = "http://www.sosi.dk/sosi/2006/04/sosi-1.0.xsd"
NSMAP = {
    "soap": SOAP_ENV,
    "saml": SAML,
    "ds": DS,
    "wsse": WSSE,
    "wsu": WSU,
    "wst": WST,
    "wsa": WSA,
    "medcom": MEDCOM,
    "sosi": SOSI,
}
ID_CARD_TOKEN_TYPE = "http://sosi.dk/sosi/2006/04/sosi-1.0.xsd#IDCard"
ISSUE_REQUEST = "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue"
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
ATTR_CARD_ID = "sosi:IDCardID"
ATTR_SYSTEM = "medcom:ITSystemName"
ATTR_CVR = "medcom:CareProviderID"
ATTR_CARE_PROVIDER = "medcom:CareProviderName"
ATTR_AUTH_LEVEL = "sosi:AuthenticationLevel"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- settings (belongs in config.py as SoapSettings.dgws; kept here until it moves) --


# -- errors --


class DgwsError(SourceError):
    """Base of the DGWS/SOSI security errors."""


class CredentialsError(DgwsError):
    """The organisation certificate or key could not be loaded (never names the password)."""


class IdCardRefused(DgwsError):
    """The STS answered a SOAP fault instead of an ID card."""

    def __init__(self, sts_url: str, code: str | None, message: str) -> None:
        super().__init__(f"the STS at {sts_url} refused the ID card: {code}: {message}")
        self.sts_url = sts_url
        self.code = code
        self.fault_message = message


class IdCardExpired(DgwsError):
    """The STS issued a card that is already (or not yet) valid; retrying will not help."""

    def __init__(self, sts_url: str, not_before: datetime, not_on_or_after: datetime) -> None:
        super().__init__(
            f"the STS at {sts_url} issued an ID card valid {not_before.isoformat()} .. "
            f"{not_on_or_after.isoformat()}, which is not valid now (check the clocks)"
        )
        self.not_before = not_before
        self.not_on_or_after = not_on_or_after


class IdCardInvalid(DgwsError):
    """The STS answer was not a usable, correctly signed ID card."""

    def __init__(self, sts_url: str, detail: str) -> None:
        super().__init__(f"the STS at {sts_url} gave an unusable ID card answer: {detail}")
        self.sts_url = sts_url


class StsUnavailable(DgwsError):
    def __init__(self, sts_url: str, attempts: int, cause: str) -> None:
        super().__init__(f"the STS at {sts_url} kept failing after {attempts} attempts: {cause}")


# -- credentials --


@dataclass(frozen=True, slots=True)
class Credentials:
    """An organisation's private key and certificate. ``repr`` never shows the key."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def load_credentials(
    certificate: Path, private_key: Path | None = None, password: SecretStr | None = None
) -> Credentials:
    """Load PKCS#12 (``.p12``/``.pfx``) or PEM key + certificate.

    :raises CredentialsError: unreadable file, wrong password, no key or no certificate.
    """
    secret = password.get_secret_value().encode() if password is not None else None
    try:
        if certificate.suffix.lower() in (".p12", ".pfx"):
            key, cert, _chain = pkcs12.load_key_and_certificates(certificate.read_bytes(), secret)
        else:
            certs = x509.load_pem_x509_certificates(certificate.read_bytes())
            cert = certs[0] if certs else None
            key = load_pem_private_key((private_key or certificate).read_bytes(), secret)
    except OSError as exc:
        raise CredentialsError(f"cannot read the organisation certificate: {exc}") from None
    except (ValueError, TypeError) as exc:
        # cryptography's messages name neither key material nor the password
        raise CredentialsError(f"cannot load the organisation certificate: {exc}") from None
    if key is None or cert is None:
        raise CredentialsError(f"{certificate.name} must hold both a private key and a certificate")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"{certificate.name}: only RSA or EC keys can sign, not {type(key)}")
    return Credentials(key=key, certificate=cert)


def load_pem_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot load the STS certificate {path.name}: {exc}") from None


# -- signing (signxml; no hand-rolled crypto) --


def sign_enveloped(element: etree._Element, credentials: Credentials) -> etree._Element:
    """``element`` with an enveloped XML-DSig (RSA-SHA256, exclusive C14N, cert in KeyInfo)."""
    signer = XMLSigner(c14n_algorithm=EXC_C14N)
    signed: etree._Element = signer.sign(
        element, key=credentials.key, cert=[credentials.certificate]
    )
    return signed


def verify_enveloped(element: etree._Element, certificate: x509.Certificate) -> etree._Element:
    """Verify ``element``'s enveloped signature against ``certificate``; the signed copy.

    :raises signxml.InvalidSignature: wrong key, altered content.
    :raises signxml.InvalidInput: no or malformed signature.
    """
    detached = etree.fromstring(etree.tostring(element))
    result = XMLVerifier().verify(detached, x509_cert=certificate)
    if isinstance(result, list):  # only with expect_references > 1
        raise InvalidInput("expected one signed reference")
    if result.signed_xml is None:
        raise InvalidInput("nothing was signed")
    signed: etree._Element = result.signed_xml
    return signed


def certificate_in_signature(element: etree._Element) -> x509.Certificate:
    """The X.509 certificate presented in ``element``'s ``ds:Signature/ds:KeyInfo``."""
    text = element.findtext(
        f"{{{DS}}}Signature/{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"
    )
    if not text:
        raise InvalidInput("no X509Certificate in the signature's KeyInfo")
    body = "".join(text.split())
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    return x509.load_pem_x509_certificate(pem.encode())


# -- the ID card --


def _q(prefix_name: str) -> str:
    prefix, name = prefix_name.split(":")
    return f"{{{NSMAP[prefix]}}}{name}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, _q(tag), attrs, nsmap=None)
    if text is not None:
        child.text = text
    return child


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_id_card(
    *,
    issuer: str,
    system_name: str,
    care_provider_cvr: str,
    care_provider_name: str,
    authentication_level: int,
    not_before: datetime,
    not_on_or_after: datetime,
    card_id: str | None = None,
) -> etree._Element:
    """An unsigned MODELLED DGWS system ID card (a SAML 2.0 assertion with ``ID="IDCard"``)."""
    nsmap = {k: NSMAP[k] for k in ("saml", "ds", "medcom", "sosi")}
    assertion = etree.Element(
        _q("saml:Assertion"),
        {"ID": "IDCard", "IssueInstant": _iso(not_before), "Version": "2.0"},
        nsmap=nsmap,
    )
    _sub(assertion, "saml:Issuer", issuer)
    subject = _sub(assertion, "saml:Subject")
    _sub(subject, "saml:NameID", care_provider_cvr, Format="medcom:cvrnumber")
    _sub(
        assertion, "saml:Conditions", NotBefore=_iso(not_before), NotOnOrAfter=_iso(not_on_or_after)
    )
    statement = _sub(assertion, "saml:AttributeStatement", id="IDCardData")
    for name, value in (
        (ATTR_CARD_ID, card_id or uuid.uuid4().hex),
        ("sosi:IDCardVersion", "1.0.1"),
        ("sosi:IDCardType", "system"),
        (ATTR_AUTH_LEVEL, str(authentication_level)),
        (ATTR_SYSTEM, system_name),
        (ATTR_CVR, care_provider_cvr),
        (ATTR_CARE_PROVIDER, care_provider_name),
    ):
        attribute = _sub(statement, "saml:Attribute", Name=name)
        _sub(attribute, "saml:AttributeValue", value)
    return assertion


def _parse_time(text: str | None, what: str) -> datetime:
    if not text:
        raise ValueError(f"no {what}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def card_attribute(assertion: etree._Element, name: str) -> str | None:
    for attribute in assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        if attribute.get("Name") == name:
            return attribute.findtext(f"{{{SAML}}}AttributeValue")
    return None


@dataclass(frozen=True, slots=True)
class IdCard:
    """A signed ID card as issued by the STS. ``repr`` shows the validity only."""

    xml: bytes = field(repr=False)
    not_before: datetime
    not_on_or_after: datetime

    @classmethod
    def from_assertion(cls, assertion: etree._Element) -> IdCard:
        """:raises ValueError: no or unparsable ``saml:Conditions``."""
        conditions = assertion.find(f"{{{SAML}}}Conditions")
        if conditions is None:
            raise ValueError("the ID card has no saml:Conditions")
        return cls(
            xml=etree.tostring(assertion),
            not_before=_parse_time(conditions.get("NotBefore"), "NotBefore"),
            not_on_or_after=_parse_time(conditions.get("NotOnOrAfter"), "NotOnOrAfter"),
        )

    def element(self) -> etree._Element:
        """A fresh copy of the signed assertion, to put into an envelope."""
        return etree.fromstring(self.xml)

    def is_valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment < self.not_on_or_after

    def usable_at(self, moment: datetime, margin: timedelta) -> bool:
        """Valid at ``moment`` and not expiring within ``margin`` after it."""
        return self.not_before <= moment and moment + margin < self.not_on_or_after


# -- the STS client --


class StsClient:
    """Asks a SOSI STS for a system ID card (WS-Trust Issue; MODELLED).

    The request carries an ID card signed with the organisation certificate; the answer carries
    the card the STS signed. Connection errors and timeouts are retried under the shared policy;
    a SOAP fault is the STS's verdict and is never retried.
    """

    def __init__(
        self,
        settings: DgwsSettings,
        credentials: Credentials,
        *,
        sts_certificate: x509.Certificate | None = None,
        session: requests.Session | None = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._sts_certificate = sts_certificate
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: DgwsSettings, **kwargs: Any) -> StsClient:
        credentials = load_credentials(
            settings.certificate, settings.private_key, settings.password
        )
        sts_cert = (
            load_pem_certificate(settings.sts_certificate) if settings.sts_certificate else None
        )
        return cls(settings, credentials, sts_certificate=sts_cert, **kwargs)

    def request_envelope(self) -> bytes:
        """The signed ``RequestSecurityToken`` envelope (exposed for tests and debugging)."""
        now = self._clock()
        settings = self._settings
        card = build_id_card(
            issuer=settings.system_name,
            system_name=settings.system_name,
            care_provider_cvr=settings.care_provider_cvr,
            care_provider_name=settings.care_provider_name,
            authentication_level=settings.security_level,
            not_before=now - timedelta(minutes=5),
            not_on_or_after=now + timedelta(hours=24),
        )
        signed = sign_enveloped(card, self._credentials)
        envelope = etree.Element(
            _q("soap:Envelope"), nsmap={k: NSMAP[k] for k in ("soap", "wsse", "wsu", "wst", "wsa")}
        )
        header = _sub(envelope, "soap:Header")
        security = _sub(header, "wsse:Security")
        timestamp = _sub(security, "wsu:Timestamp")
        _sub(timestamp, "wsu:Created", _iso(now))
        body = _sub(envelope, "soap:Body")
        rst = _sub(body, "wst:RequestSecurityToken", Context="www.sosi.dk")
        _sub(rst, "wst:TokenType", ID_CARD_TOKEN_TYPE)
        _sub(rst, "wst:RequestType", ISSUE_REQUEST)
        claims = _sub(rst, "wst:Claims")
        claims.append(signed)
        issuer = _sub(rst, "wst:Issuer")
        _sub(issuer, "wsa:Address", settings.system_name)
        return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def issue(self) -> IdCard:
        """A fresh ID card from the STS, valid now.

        :raises IdCardRefused: the STS answered a SOAP fault.
        :raises IdCardExpired: the card is not valid now.
        :raises IdCardInvalid: no card, bad signature (when ``sts_certificate`` is set), bad XML.
        :raises StsUnavailable: connection errors / timeouts through every attempt.
        """
        url = self._settings.sts_url
        body = self.request_envelope()
        transient = (requests.ConnectionError, requests.Timeout)
        kwargs = {"sleep": self._sleep} if self._sleep else {}
        try:
            for attempt in retrying(self._settings.retry, transient, **kwargs):
                with attempt:
                    response = self._session.post(
                        url,
                        data=body,
                        headers={
                            "Content-Type": "text/xml; charset=utf-8",
                            "SOAPAction": ISSUE_REQUEST,
                        },
                        timeout=self._settings.timeout,
                    )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise StsUnavailable(url, self._settings.retry.attempts, type(exc).__name__) from exc
        card = self._card_from(response)
        now = self._clock()
        if not card.is_valid_at(now):
            raise IdCardExpired(url, card.not_before, card.not_on_or_after)
        logger.info("ID card from %s, valid until %s", url, card.not_on_or_after.isoformat())
        return card

    def _card_from(self, response: requests.Response) -> IdCard:
        url = self._settings.sts_url
        try:
            root = etree.fromstring(response.content)
        except etree.XMLSyntaxError as exc:
            raise IdCardInvalid(url, f"HTTP {response.status_code}, not XML: {exc}") from None
        fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
        if fault is not None:
            raise IdCardRefused(
                url, fault.findtext("faultcode"), (fault.findtext("faultstring") or "").strip()
            )
        if response.status_code != 200:
            raise IdCardInvalid(url, f"HTTP {response.status_code} without a SOAP fault")
        assertion = root.find(
            f"{{{SOAP_ENV}}}Body/{{{WST}}}RequestSecurityTokenResponse"
            f"/{{{WST}}}RequestedSecurityToken/{{{SAML}}}Assertion"
        )
        if assertion is None:
            raise IdCardInvalid(url, "no saml:Assertion in RequestedSecurityToken")
        if self._sts_certificate is not None:
            try:
                verify_enveloped(assertion, self._sts_certificate)
            except (InvalidSignature, InvalidInput) as exc:
                raise IdCardInvalid(url, f"the card's signature does not verify: {exc}") from None
        try:
            return IdCard.from_assertion(assertion)
        except ValueError as exc:
            raise IdCardInvalid(url, str(exc)) from None


# -- caching --


class IdCardProvider:
    """The current ID card: fetched once, reused until ``refresh_margin`` before it expires.

    Thread-safe; one STS call at a time.
    """

    def __init__(
        self,
        issue: Callable[[], IdCard],
        *,
        refresh_margin: float = 300.0,
        clock: Clock = utc_now,
    ) -> None:
        self._issue = issue
        self._margin = timedelta(seconds=refresh_margin)
        self._clock = clock
        self._card: IdCard | None = None
        self._lock = threading.Lock()

    def get(self) -> IdCard:
        """:raises DgwsError: the STS refused, issued an expired card, or was unreachable."""
        with self._lock:
            card = self._card
            if card is None or not card.usable_at(self._clock(), self._margin):
                logger.debug("fetching a new ID card (cached card missing or near expiry)")
                self._card = None
                card = self._issue()
                self._card = card
            return card

    def invalidate(self) -> None:
        """Drop the cached card (e.g. after a service rejected it)."""
        with self._lock:
            self._card = None


# -- the zeep plugin --


class DgwsPlugin(zeep.Plugin):
    """Adds ``wsse:Security`` (timestamp + ID card) and ``medcom:Header`` to every request.

    Attach with ``zeep.Client(wsdl, plugins=[DgwsPlugin(provider)])``.
    ``flow_id``: the MedCom ``Linking/FlowID`` (default: a new UUID per call).
    """

    def __init__(
        self,
        provider: IdCardProvider,
        *,
        security_level: int = 3,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._provider = provider
        self._level = security_level
        self._clock = clock
        self._new_id = new_id

    def egress(
        self,
        envelope: etree._Element,
        http_headers: dict[str, str],
        operation: Any,
        binding_options: Any,
    ) -> tuple[etree._Element, dict[str, str]]:
        card = self._provider.get()
        soap_ns = etree.QName(envelope).namespace or SOAP_ENV
        header = envelope.find(f"{{{soap_ns}}}Header")
        if header is None:
            header = etree.Element(f"{{{soap_ns}}}Header")
            envelope.insert(0, header)
        security = etree.SubElement(header, _q("wsse:Security"), nsmap={"wsse": WSSE, "wsu": WSU})
        timestamp = _sub(security, "wsu:Timestamp")
        _sub(timestamp, "wsu:Created", _iso(self._clock()))
        security.append(card.element())
        medcom = etree.SubElement(header, _q("medcom:Header"), nsmap={"medcom": MEDCOM})
        _sub(medcom, "medcom:SecurityLevel", str(self._level))
        linking = _sub(medcom, "medcom:Linking")
        _sub(linking, "medcom:FlowID", self._new_id())
        _sub(linking, "medcom:MessageID", self._new_id())
        _sub(medcom, "medcom:FlowStatus", "flow_running")
        return envelope, http_headers


def make_dgws_plugin(
    settings: DgwsSettings,
    *,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] | None = None,
) -> DgwsPlugin:
    """Composition root helper: credentials from settings -> STS client -> cache -> plugin."""
    sts = StsClient.from_settings(settings, clock=clock, sleep=sleep)
    provider = IdCardProvider(sts.issue, refresh_margin=settings.refresh_margin, clock=clock)
    return DgwsPlugin(provider, security_level=settings.security_level, clock=clock)


__all__ = [
    "Credentials",
    "CredentialsError",
    "DgwsError",
    "DgwsPlugin",
    "DgwsSettings",
    "IdCard",
    "IdCardExpired",
    "IdCardInvalid",
    "IdCardProvider",
    "IdCardRefused",
    "StsClient",
    "StsUnavailable",
    "build_id_card",
    "card_attribute",
    "certificate_in_signature",
    "load_credentials",
    "make_dgws_plugin",
    "sign_enveloped",
    "verify_enveloped",
]
