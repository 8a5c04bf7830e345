from __future__ import annotations

import pytest

from soredi_sync.domain.model import GlnMode
from soredi_sync.errors import NotFound
from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from soredi_sync.soap.errors import SoapFault, SoapProtocolError, SoapUnavailable
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.sorls import make_sorls_client
from tests.support.soap import no_sleep


def _open_units(day: SoapDay, mode: GlnMode) -> list[str]:
    return sorted(
        sor_id
        for sor_id, unit in day.units.items()
        if unit.gln_mode is mode and unit.is_open_on(day.snapshot_date)
    )


class TestGetSorEntity:
    def test_returns_the_unit_and_its_own_gln(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        for sor_id in _open_units(soap_day, GlnMode.OWN)[:10]:
            found = client.get_sor_entity(sor_id, soap_day.snapshot_date)
            assert found.unit == soap_day.units[sor_id]
            assert found.unit.gln is not None
            expected = soap_day.glns[found.unit.gln]
            # SORLS names the carrying unit; the snapshot may know it too.
            assert found.gln is not None
            assert found.gln.gln == expected.gln
            assert found.gln.active == expected.active
            assert found.gln.vans == expected.vans
            assert found.gln.system_supplier == expected.system_supplier
            assert found.gln.owner_sor_id == sor_id

    def test_returns_inheriting_units_without_a_gln_record(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        sor_ids = _open_units(soap_day, GlnMode.INHERITED)[:5]
        assert sor_ids
        for sor_id in sor_ids:
            found = client.get_sor_entity(sor_id, soap_day.snapshot_date)
            assert found.unit == soap_day.units[sor_id]
            assert found.gln is None

    def test_unknown_sor_id_is_not_found(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        with pytest.raises(NotFound, match="999999999"):
            client.get_sor_entity("999999999", soap_day.snapshot_date)

    def test_reads_the_contract_from_the_served_wsdl(
        self, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        settings = SoapSettings(timeout=5, operation_timeout=2)
        settings.sorls.wsdl = soap_server.wsdl_url("sorls")  # address comes from the WSDL
        sor_id = _open_units(soap_day, GlnMode.OWN)[0]
        found = make_sorls_client(settings).get_sor_entity(sor_id, soap_day.snapshot_date)
        assert found.unit.sor_id == sor_id


class TestSorlsFailures:
    def test_a_soap_fault_is_not_retried_and_names_the_fault(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        soap_server.inject("fault", "sorls", code="soap:Client", message="ID card expired")
        with pytest.raises(SoapFault) as info:
            client.get_sor_entity(_open_units(soap_day, GlnMode.OWN)[0], soap_day.snapshot_date)
        assert info.value.code is not None and "Client" in info.value.code
        assert "ID card expired" in str(info.value)
        assert soap_server.calls == ["sorls"]

    def test_a_503_then_success_is_retried(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        soap_server.inject("status", "sorls", status=503)
        sor_id = _open_units(soap_day, GlnMode.OWN)[0]
        assert client.get_sor_entity(sor_id, soap_day.snapshot_date).unit.sor_id == sor_id
        assert soap_server.calls == ["sorls", "sorls"]

    def test_a_timeout_gives_a_clear_error_after_every_attempt(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        soap_server.inject("delay", "sorls", delay=2.0, times=3)
        with pytest.raises(SoapUnavailable, match="timed out") as info:
            client.get_sor_entity(_open_units(soap_day, GlnMode.OWN)[0], soap_day.snapshot_date)
        assert info.value.attempts == 3
        assert soap_server.calls == ["sorls"] * 3

    def test_a_malformed_envelope_is_a_clear_error_and_not_retried(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        soap_server.inject("malformed", "sorls")
        with pytest.raises(SoapProtocolError, match="unusable answer"):
            client.get_sor_entity(_open_units(soap_day, GlnMode.OWN)[0], soap_day.snapshot_date)
        assert soap_server.calls == ["sorls"]

    def test_a_503_on_every_attempt_is_unavailable(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorls_client(soap_settings, sleep=no_sleep)
        soap_server.inject("status", "sorls", status=503, times=5)
        with pytest.raises(SoapUnavailable, match="HTTP 503"):
            client.get_sor_entity(_open_units(soap_day, GlnMode.OWN)[0], soap_day.snapshot_date)
        assert soap_server.calls == ["sorls"] * 3
