from __future__ import annotations

from pathlib import Path

import pytest

from soredi_sync.sandbox.soap import SoapFaultSpec, SoapSandboxServer
from soredi_sync.soap.settings import SoapSettings, contract_path

CONTRACTS = ("sorls.wsdl", "sorls.xsd", "skrs.wsdl", "skrs.xsd")


class TestContracts:
    @pytest.mark.parametrize("name", CONTRACTS)
    def test_ship_as_package_data_and_say_they_are_modelled(self, name: str) -> None:
        text = Path(contract_path(name)).read_text(encoding="utf-8")
        assert "MODELLED on the published descriptions; replace with the real ?wsdl" in text

    def test_default_settings_point_at_the_shipped_contracts(self) -> None:
        settings = SoapSettings()
        assert settings.sorls.wsdl == contract_path("sorls.wsdl")
        assert settings.skrs.wsdl == contract_path("skrs.wsdl")
        assert settings.sorls.address is None and settings.skrs.address is None


class TestSoapSandbox:
    def test_refuses_a_non_loopback_host(self) -> None:
        with pytest.raises(ValueError, match="non-loopback"):
            SoapSandboxServer(host="192.0.2.1")

    @pytest.mark.parametrize(
        "spec", [{"kind": "explode"}, {"kind": "delay", "delay": -1}, {"kind": "fault", "times": 0}]
    )
    def test_rejects_impossible_faults(self, spec: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            SoapFaultSpec(**spec)  # type: ignore[arg-type]
