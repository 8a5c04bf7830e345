"""The ID card: asked of a SOSI STS (:class:`StsClient`), cached until near its expiry
(:class:`IdCardProvider`). Nothing here logs key material or card content.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from cryptography import x509
from lxml import etree
from signxml.exceptions import InvalidInput, InvalidSignature

from soredi_sync.config import DgwsSettings
from soredi_sync.retry import retrying
from soredi_sync.soap.dgws.errors import (
    IdCardExpired,
    IdCardInvalid,
    IdCardRefused,
    StsUnavailable,
)
from soredi_sync.soap.dgws.idcard import IdCard, build_id_card
from soredi_sync.soap.dgws.names import (
    ID_CARD_TOKEN_TYPE,
    ISSUE_REQUEST,
    NSMAP,
    SAML,
    SOAP_ENV,
    WST,
    Clock,
    _iso,
    _q,
    _sub,
    utc_now,
)
from soredi_sync.soap.dgws.signing import (
    Credentials,
    load_credentials,
    load_pem_certificate,
    sign_enveloped,
    verify_enveloped,
)

logger = logging.getLogger(__name__)


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
