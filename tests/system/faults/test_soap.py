"""Faults of the SKRS replication feed (SOAP) and its DGWS security: the incremental sync on
top of the last good snapshot fails with the reason, stores no page and moves no cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pydantic import SecretStr

from soredi_sync.config import DgwsSettings, RetrySettings
from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.soap import SoapSandboxServer
from soredi_sync.sandbox.sts import StsSandboxServer, self_signed
from soredi_sync.services.incremental import IncrementalOutcome, sync_incremental
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.skrs import make_skrs_client
from tests.support.faults.invariants import LastGood
from tests.support.faults.report import Case

PASSWORD = "fault-suite-only"


@pytest.fixture
def soap(last_good: LastGood) -> Iterator[SoapSandboxServer]:
    """SORLS/SKRS following the files sandbox: the feed of day 1, on top of day 0."""
    with SoapSandboxServer(files=last_good.files) as server:
        yield server


def soap_settings(server: SoapSandboxServer, **overrides: Any) -> SoapSettings:
    settings = SoapSettings(
        timeout=5,
        operation_timeout=1,
        retry=RetrySettings(attempts=3, initial_wait=0, max_wait=0),
        skrs_max_records=200,
        **overrides,
    )
    settings.sorls.address = server.url("sorls")
    settings.skrs.address = server.url("skrs")
    return settings


def feed_day(last_good: LastGood) -> date:
    manifest = last_good.files.manifest
    assert manifest is not None
    return date.fromisoformat(manifest.day(1).snapshot_date)


def pull_feed(last_good: LastGood, settings: SoapSettings) -> IncrementalOutcome:
    """``soredi-sync sync --source skrs`` on the day the feed describes."""
    with last_good.timed():
        client = make_skrs_client(settings, sleep=lambda _seconds: None)
        return sync_incremental(
            last_good.app.uow_factory,
            client,
            as_of=feed_day(last_good),
            location=settings.skrs.address or "",
        )


def assert_no_cursor(last_good: LastGood) -> None:
    with last_good.app.uow() as uow:
        assert uow.cursors.offset("skrs") is None


class TestReplicationFeedFaults:
    @pytest.mark.parametrize(
        ("case", "fault", "reasons"),
        [
            pytest.param(
                Case("SOAP fault", "SKRS replicate answers a SOAP Fault soap:Server"),
                {"kind": "fault", "code": "soap:Server", "message": "replication unavailable"},
                ("SKRS replicate answered a SOAP fault", "replication unavailable"),
                id="soap-fault",
            ),
            pytest.param(
                Case("SOAP answer malformed", "SKRS replicate answers HTTP 200 with broken XML"),
                {"kind": "malformed"},
                ("SKRS replicate gave an unusable answer",),
                id="malformed",
            ),
            pytest.param(
                Case("SOAP HTTP 503", "SKRS replicate answers HTTP 503 on every attempt"),
                {"kind": "status", "status": 503},
                ("SKRS replicate kept failing after 3 attempts",),
                id="http-503",
            ),
        ],
    )
    def test_a_failing_feed_stores_no_page_and_the_next_pull_applies_it(
        self,
        last_good: LastGood,
        soap: SoapSandboxServer,
        case: Case,
        fault: dict[str, Any],
        reasons: tuple[str, ...],
    ) -> None:
        settings = soap_settings(soap)
        soap.inject(service="skrs", times=10, **fault)
        outcome = pull_feed(last_good, settings)
        calls = soap.calls.count("skrs")
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            *reasons,
            run_id=outcome.run_id,
            did=f"{calls} call(s); no page stored, no cursor; day 0 kept and served; the next "
            "pull after the fault cleared applied the feed",
        )
        assert_no_cursor(last_good)
        soap.clear_faults()
        again = pull_feed(last_good, settings)
        assert again.status is RunStatus.SUCCEEDED, again.error
        assert again.snapshot is not None and again.snapshot.id > last_good.snapshot.id
        last_good.assert_served(again.snapshot.id)

    def test_an_expired_id_card_fails_the_pull_clearly(
        self, last_good: LastGood, soap: SoapSandboxServer, tmp_path: Path
    ) -> None:
        case = Case(
            "expired ID card",
            "the STS issues DGWS ID cards that expired 60 s before they were issued",
        )
        organisation = self_signed("soredi-sync fault suite")
        certificate = tmp_path / "organisation.p12"
        certificate.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"org",
                organisation.key,
                organisation.certificate,
                None,
                BestAvailableEncryption(PASSWORD.encode()),
            )
        )
        with StsSandboxServer(lifetime=-60) as sts:
            dgws = DgwsSettings(
                sts_url=sts.url,
                certificate=certificate,
                password=SecretStr(PASSWORD),
                care_provider_cvr="12345678",
                care_provider_name="Fault Suite Region",
                retry=RetrySettings(attempts=2, initial_wait=0, max_wait=0),
            )
            outcome = pull_feed(last_good, soap_settings(soap, dgws=dgws))
            issued = sts.issued
        assert soap.calls == []  # nothing went out without a valid card
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "issued an ID card valid",
            "which is not valid now",
            run_id=outcome.run_id,
            did=f"{issued} card(s) issued, none used: no SKRS call was made; day 0 kept and served",
        )
        assert_no_cursor(last_good)
