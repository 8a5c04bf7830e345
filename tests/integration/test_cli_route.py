"""`soredi-sync route` and `route-bundle` as a gateway operator uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from soredi_sync.cli import cli
from soredi_sync.sandbox.generate import Manifest
from tests.reference import reference_path


@pytest.fixture
def run(database_url: str, sandbox_dir: Path):
    runner = CliRunner()

    def invoke(*args: str, expect: int | None = 0):
        result = runner.invoke(cli, ["--database-url", database_url, *args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, result.output
        return result

    invoke("sync", "--from-dir", str(sandbox_dir / "day-000"))
    return invoke


def _reference(manifest: Manifest, label: str) -> str:
    return next(g for g, info in manifest.reference_glns.items() if label in info["label"])


class TestRouteCommand:
    def test_fhir_to_a_legacy_test_system_is_converted_by_its_vans(self, run, manifest) -> None:
        xmo = _reference(manifest, "XMO")
        data = json.loads(
            run(
                "route", "--receiver", xmo, "--attachment", "application/pdf:20000", "--json"
            ).output
        )
        assert data["decision"] == "deliver"
        assert data["message_type"] == "XDIS91"
        assert data["conversion"] == [{"step": "fhir->oioxml", "by": "51000035003"}]
        assert data["attachments"][0]["carried_as"] == "XBIN01"
        assert data["snapshot"]["id"] == 1 and data["snapshot"]["age_seconds"] >= 0
        assert data["trace"][0]["rule"] == "receiver"

    def test_a_rejection_exits_6_and_names_the_reason(self, run, manifest) -> None:
        xmo = _reference(manifest, "XMO")
        result = run("route", "--receiver", xmo, "--at", "2027-02-01", expect=6)
        assert "REJECT" in result.output
        assert "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE" in result.output

    def test_a_receiver_can_be_given_by_sor_id(self, run, manifest) -> None:
        vena = _reference(manifest, "VENA")
        gln_view = json.loads(run("show", "gln", vena, "--json").output)
        sor_id = gln_view["inheritors"][0]["sor_id"]
        data = json.loads(run("route", "--receiver", f"sor:{sor_id}", "--json").output)
        assert data["address"] == {
            "sor_id": sor_id,
            "gln": vena,
            "inherited_from": gln_view["owners"][0]["sor_id"],
        }

    def test_a_bad_attachment_or_message_is_a_usage_error(self, run, manifest) -> None:
        vena = _reference(manifest, "VENA")
        assert (
            "MIME:BYTES" in run("route", "--receiver", vena, "--attachment", "pdf", expect=2).output
        )
        assert (
            "unknown business message"
            in run("route", "--receiver", vena, "--message", "telegram", expect=2).output
        )

    def test_human_output_explains_the_decision(self, run, manifest) -> None:
        out = run("route", "--receiver", _reference(manifest, "VENA")).output
        assert "DELIVER as FDIS91 (fhir)" in out
        assert "conversion: none (native)" in out
        assert "trace:" in out


class TestRouteBundleCommand:
    def _example(self, name: str) -> Path:
        return reference_path("services", "carecommunication", "examples", name)

    def test_a_real_carecommunication_bundle_is_decided_for_its_receiver(self, run) -> None:
        path = self._example("Flow1-CareCommunication_Ex_from_OIOXML.xml")
        result = run("route-bundle", str(path), "--json", expect=6)
        data = json.loads(result.output)
        # The example's receiver (Odense's home care, GLN 5790000121441) is not in the sandbox.
        assert data["decision"] == "reject" and data["reason"] == "RECEIVER_UNKNOWN"
        assert data["address"]["gln"] == "5790000121441"

    def test_an_acknowledgement_is_refused_as_not_carecommunication(self, run) -> None:
        path = self._example("Flow2-Acknowledgement_Ex_to_OIOXML.xml")
        result = run("route-bundle", str(path), expect=2)
        assert "not a CareCommunication message" in result.output
