"""DGWS/SOSI: ID card from the loopback STS, caching, errors, and the headers on a zeep call."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zeep
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from lxml import etree
from pydantic import SecretStr
from signxml.exceptions import InvalidSignature
from zeep.plugins import HistoryPlugin

from soredi_sync.config import DgwsSettings, RetrySettings
from soredi_sync.errors import SourceError
from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from soredi_sync.sandbox.sts import StsSandboxServer, self_signed
from soredi_sync.soap.dgws import (
    Credentials,
    CredentialsError,
    DgwsPlugin,
    IdCard,
    IdCardExpired,
    IdCardInvalid,
    IdCardProvider,
    IdCardRefused,
    StsClient,
    card_attribute,
    load_credentials,
    make_dgws_plugin,
    verify_enveloped,
)
from soredi_sync.soap.dgws.names import ATTR_CVR, MEDCOM, SAML, WSSE
from soredi_sync.soap.settings import SoapSettings
from tests.support.soap import no_sleep

PASSWORD = "test-only-password"
CVR = "12345678"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def org() -> Credentials:
    """The organisation's certificate, generated per test run (never committed)."""
    return self_signed("soredi-sync test organisation")


@pytest.fixture
def p12_path(org: Credentials, tmp_path: Path) -> Path:
    path = tmp_path / "org.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"org",
            org.key,
            org.certificate,
            None,
            BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    return path


@pytest.fixture
def sts() -> Iterator[StsSandboxServer]:
    with StsSandboxServer(lifetime=3600) as server:
        yield server


def _settings(
    sts: StsSandboxServer, certificate: Path, sts_cert: Path | None = None
) -> DgwsSettings:
    return DgwsSettings(
        sts_url=sts.url,
        certificate=certificate,
        password=SecretStr(PASSWORD),
        sts_certificate=sts_cert,
        care_provider_cvr=CVR,
        care_provider_name="Test Region",
        refresh_margin=300,
        retry=RetrySettings(attempts=2, initial_wait=0, max_wait=0),
    )


def _sts_client(sts: StsSandboxServer, org: Credentials, clock: FakeClock) -> StsClient:
    settings = _settings(sts, Path("unused.p12"))
    return StsClient(settings, org, sts_certificate=sts.certificate, clock=clock, sleep=no_sleep)


class TestCredentials:
    def test_loads_pkcs12_with_password(self, p12_path: Path, org: Credentials) -> None:
        loaded = load_credentials(p12_path, password=SecretStr(PASSWORD))
        assert loaded.certificate == org.certificate
        assert "PRIVATE" not in repr(loaded)

    def test_loads_pem_key_and_certificate(self, org: Credentials, tmp_path: Path) -> None:
        cert = tmp_path / "org.crt"
        key = tmp_path / "org.key"
        cert.write_bytes(org.certificate.public_bytes(Encoding.PEM))
        key.write_bytes(org.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        loaded = load_credentials(cert, key)
        assert loaded.certificate == org.certificate

    def test_wrong_password_is_a_clear_error_without_the_password(self, p12_path: Path) -> None:
        with pytest.raises(CredentialsError) as caught:
            load_credentials(p12_path, password=SecretStr("wrong-secret"))
        assert "wrong-secret" not in str(caught.value)
        assert isinstance(caught.value, SourceError)


class TestStsAndCard:
    def test_issued_card_is_signed_by_the_sts_and_verifies(
        self, sts: StsSandboxServer, org: Credentials
    ) -> None:
        card = _sts_client(sts, org, FakeClock()).issue()
        signed = verify_enveloped(card.element(), sts.certificate)
        assert card_attribute(signed, ATTR_CVR) == CVR
        assert card.not_on_or_after - card.not_before >= timedelta(seconds=3600)

    def test_tampered_card_does_not_verify(self, sts: StsSandboxServer, org: Credentials) -> None:
        card = _sts_client(sts, org, FakeClock()).issue()
        element = card.element()
        value = element.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
        assert value is not None
        value.text = "87654321"
        with pytest.raises(InvalidSignature):
            verify_enveloped(element, sts.certificate)

    def test_sts_rejects_a_request_signed_with_another_key(
        self, sts: StsSandboxServer, org: Credentials
    ) -> None:
        client = _sts_client(sts, org, FakeClock())
        envelope = etree.fromstring(client.request_envelope())
        # swap the presented certificate for another one: the signature no longer matches it
        other = self_signed("someone else").certificate
        der = other.public_bytes(Encoding.DER)
        cert_el = next(envelope.iter("{http://www.w3.org/2000/09/xmldsig#}X509Certificate"))
        cert_el.text = base64.b64encode(der).decode()
        status, answer = sts._answer(etree.tostring(envelope))
        assert status == 500
        assert "signature is invalid" in answer
        assert sts.issued == 0

    def test_card_signed_by_an_unexpected_sts_is_rejected(
        self, sts: StsSandboxServer, org: Credentials
    ) -> None:
        settings = _settings(sts, Path("unused.p12"))
        impostor = self_signed("not the configured STS").certificate
        client = StsClient(settings, org, sts_certificate=impostor, sleep=no_sleep)
        with pytest.raises(IdCardInvalid, match="signature does not verify"):
            client.issue()

    def test_refused_card_names_the_sts_fault(
        self, sts: StsSandboxServer, org: Credentials
    ) -> None:
        sts.refuse("wst:FailedAuthentication", "certificate revoked")
        with pytest.raises(IdCardRefused, match="certificate revoked") as caught:
            _sts_client(sts, org, FakeClock()).issue()
        assert caught.value.code == "wst:FailedAuthentication"
        assert sts.url in str(caught.value)
        assert isinstance(caught.value, SourceError)

    def test_already_expired_card_is_a_clear_error(
        self, sts: StsSandboxServer, org: Credentials
    ) -> None:
        sts.lifetime = -60
        with pytest.raises(IdCardExpired, match="not valid now"):
            _sts_client(sts, org, FakeClock()).issue()


class TestProvider:
    def test_fetched_once_cached_until_near_expiry_then_refreshed(self, org: Credentials) -> None:
        clock = FakeClock()
        with StsSandboxServer(lifetime=3600, clock=clock) as sts:
            self._check_cache(sts, org, clock)

    def _check_cache(self, sts: StsSandboxServer, org: Credentials, clock: FakeClock) -> None:
        provider = IdCardProvider(
            _sts_client(sts, org, clock).issue, refresh_margin=300, clock=clock
        )
        first = provider.get()
        clock.advance(3600 - 300 - 5)  # still more than the margin left
        assert provider.get() is first
        assert sts.issued == 1
        clock.advance(10)  # inside the refresh margin
        second = provider.get()
        assert second is not first
        assert sts.issued == 2
        assert provider.get() is second

    def test_refusal_is_not_cached(self, sts: StsSandboxServer, org: Credentials) -> None:
        clock = FakeClock()
        provider = IdCardProvider(_sts_client(sts, org, clock).issue, clock=clock)
        sts.refuse(message="try later")
        with pytest.raises(IdCardRefused):
            provider.get()
        assert isinstance(provider.get(), IdCard)
        assert sts.issued == 1


class TestPluginOnZeepCall:
    def test_headers_on_a_sorls_call_and_nothing_secret_in_logs(
        self,
        sts: StsSandboxServer,
        p12_path: Path,
        tmp_path: Path,
        soap_day: SoapDay,
        soap_server: SoapSandboxServer,
        soap_settings: SoapSettings,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # the project's loggers at DEBUG; zeep.transports and signxml dump envelopes at DEBUG
        # themselves, so deployments must keep those two at INFO or above
        caplog.set_level(logging.DEBUG, logger="soredi_sync")
        sts_cert = tmp_path / "sts.crt"
        sts_cert.write_bytes(sts.certificate.public_bytes(Encoding.PEM))
        plugin = make_dgws_plugin(_settings(sts, p12_path, sts_cert), sleep=no_sleep)
        history = HistoryPlugin()  # type: ignore[no-untyped-call]
        client = zeep.Client(  # type: ignore[no-untyped-call]
            soap_server.wsdl_url("sorls"), plugins=[plugin, history]
        )
        service = client.create_service(  # type: ignore[no-untyped-call]
            soap_settings.sorls.binding, soap_server.url("sorls")
        )
        sor_id = next(iter(soap_day.units))
        service.GetSorEntity(SorIdentifier=sor_id, Date=soap_day.snapshot_date)
        service.GetSorEntity(SorIdentifier=sor_id, Date=soap_day.snapshot_date)
        assert sts.issued == 1  # the card is reused across calls

        envelope = history.last_sent["envelope"]
        security = envelope.find(f".//{{{WSSE}}}Security")
        assert security is not None
        card = security.find(f"{{{SAML}}}Assertion")
        assert card is not None
        verify_enveloped(card, sts.certificate)  # the STS-issued card verifies with signxml
        medcom = envelope.find(f".//{{{MEDCOM}}}Header")
        assert medcom is not None
        assert medcom.findtext(f"{{{MEDCOM}}}SecurityLevel") == "3"
        assert medcom.findtext(f"{{{MEDCOM}}}Linking/{{{MEDCOM}}}MessageID")
        assert medcom.findtext(f"{{{MEDCOM}}}Linking/{{{MEDCOM}}}FlowID")
        assert medcom.findtext(f"{{{MEDCOM}}}FlowStatus") == "flow_running"

        logs = caplog.text
        assert "ID card from" in logs  # the lifecycle is logged ...
        for secret in ("PRIVATE KEY", "BEGIN CERTIFICATE", "SignatureValue", "Assertion", PASSWORD):
            assert secret not in logs  # ... but never key, password or card content
        card_id = card_attribute(card, "sosi:IDCardID")
        assert card_id
        assert card_id not in logs

    def test_plugin_surfaces_a_refused_card(self, sts: StsSandboxServer, org: Credentials) -> None:
        clock = FakeClock()
        plugin = DgwsPlugin(IdCardProvider(_sts_client(sts, org, clock).issue, clock=clock))
        sts.refuse(message="organisation not registered")
        envelope = etree.fromstring(
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>'
        )
        with pytest.raises(IdCardRefused, match="organisation not registered"):
            plugin.egress(envelope, {}, None, None)
