"""Fixtures: the SOAP sandbox (tiny profile, seed 0, day 1) on loopback, and client settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soredi_sync.config import RetrySettings
from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from soredi_sync.soap.settings import SoapSettings

DAY = 1


@pytest.fixture(scope="session")
def soap_day() -> SoapDay:
    return SoapDay("tiny", 0, DAY)


@pytest.fixture
def soap_server(soap_day: SoapDay) -> Iterator[SoapSandboxServer]:
    with SoapSandboxServer(data=soap_day) as server:
        yield server


@pytest.fixture
def soap_settings(soap_server: SoapSandboxServer) -> SoapSettings:
    """Shipped contracts, sandbox addresses, fast retries (no sleeping) and short timeouts."""
    settings = SoapSettings(
        timeout=5,
        operation_timeout=0.5,
        retry=RetrySettings(attempts=3, initial_wait=0, max_wait=0),
        skrs_max_records=100,
    )
    settings.sorls.address = soap_server.url("sorls")
    settings.skrs.address = soap_server.url("skrs")
    settings.sorus.address = soap_server.url("sorus")
    return settings
