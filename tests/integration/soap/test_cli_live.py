"""`soredi-sync show unit --live`: one SORLS lookup through the configured endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import pytest
from click.testing import Result

from soredi_sync.domain.model import GlnMode
from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from tests.support.cli_runner import Cli


@pytest.fixture
def live(
    cli: Cli, soap_server: SoapSandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """``soredi-sync show unit ARGS...`` with SORLS at the sandbox's address (no database)."""
    monkeypatch.setenv("SOREDI_SOAP__SORLS__ADDRESS", soap_server.url("sorls"))
    monkeypatch.setenv("SOREDI_SOAP__RETRY__INITIAL_WAIT", "0")
    monkeypatch.setenv("SOREDI_SOAP__RETRY__MAX_WAIT", "0")
    return partial(cli, "show", "unit")


class TestShowUnitLive:
    def test_a_unit_owning_a_gln_is_shown_with_it(self, live, soap_day: SoapDay) -> None:
        day = soap_day.snapshot_date.isoformat()
        owner = next(
            u
            for u in soap_day.units.values()
            if u.gln_mode is GlnMode.OWN and u.is_open_on(soap_day.snapshot_date)
        )
        data = json.loads(live(owner.sor_id, "--live", "--at", day, "--json").output)
        assert data["unit"]["sor_id"] == owner.sor_id
        assert data["gln"]["gln"] == owner.gln
        assert "live from SORLS" in live(owner.sor_id, "--live", "--at", day).output

    def test_an_unknown_unit_exits_not_found(self, live) -> None:
        assert "999999" in live("999999", "--live", expect=4).output

    def test_a_soap_fault_is_a_clear_error_without_retries(
        self, live, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        soap_server.inject("fault", "sorls")
        sor_id = next(iter(soap_day.units))
        result = live(sor_id, "--live", "--at", soap_day.snapshot_date.isoformat(), expect=1)
        assert "error:" in result.output
        assert soap_server.calls.count("sorls") == 1


class TestSandboxServeSoap:
    def test_sandbox_serve_also_serves_the_soap_contracts(self, tmp_path) -> None:
        import socket
        import subprocess
        import sys
        import time

        import httpx

        from soredi_sync.sandbox.generate import generate

        generate(tmp_path / "sb", profile="tiny", seed=0, days=0)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            soap_port = sock.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "soredi_sync",
                "sandbox",
                "serve",
                "--dir",
                str(tmp_path / "sb"),
                "--port",
                "0",
                "--soap-port",
                str(soap_port),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert "SORLS" in line, line
            deadline = time.monotonic() + 20
            while True:
                try:
                    wsdl = httpx.get(f"http://127.0.0.1:{soap_port}/sorls?wsdl", timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            assert wsdl.status_code == 200 and "MODELLED" in wsdl.text
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()
