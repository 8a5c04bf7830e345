"""`soredi-sync route`, `route-message` and its older name `route-bundle` as a gateway operator
uses them. Real messages are read from the shared reference folder and, where their real
receiver is not in the sandbox, readdressed to one that is (tests/support/real_messages.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from soredi_sync.domain.routing import Reason, WarningCode
from soredi_sync.sandbox.generate import Manifest
from tests.support.cli_runner import Cli
from tests.support.paths import REPO_ROOT
from tests.support.real_messages import readdressed
from tests.support.reference import reference_path


@pytest.fixture
def synced(cli: Cli, database_url: str, sandbox_dir: Path) -> None:
    """The database synced with the sandbox's day 0."""
    cli("sync", "--from-dir", str(sandbox_dir / "day-000"))


def _reference(manifest: Manifest, label: str) -> str:
    return next(g for g, info in manifest.reference_glns.items() if label in info["label"])


@pytest.mark.usefixtures("synced")
class TestRouteCommand:
    def test_fhir_to_a_legacy_test_system_is_converted_by_its_vans(self, cli, manifest) -> None:
        xmo = _reference(manifest, "XMO")
        data = json.loads(
            cli(
                "route", "--receiver", xmo, "--attachment", "application/pdf:20000", "--json"
            ).output
        )
        assert data["decision"] == "deliver"
        assert data["message_type"] == "XDIS91"
        assert data["conversion"] == [{"step": "fhir->oioxml", "by": "51000035003"}]
        assert data["attachments"][0]["carried_as"] == "XBIN01"
        assert data["snapshot"]["id"] == 1 and data["snapshot"]["age_seconds"] >= 0
        assert "receiver" in [t["rule"] for t in data["trace"]]

    def test_a_rejection_exits_6_and_names_the_reason(self, cli, manifest) -> None:
        xmo = _reference(manifest, "XMO")
        result = cli("route", "--receiver", xmo, "--at", "2027-02-01", expect=6)
        assert "REJECT" in result.output
        assert "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE" in result.output

    def test_a_receiver_can_be_given_by_sor_id(self, cli, manifest) -> None:
        vena = _reference(manifest, "VENA")
        gln_view = json.loads(cli("show", "gln", vena, "--json").output)
        sor_id = gln_view["inheritors"][0]["sor_id"]
        data = json.loads(cli("route", "--receiver", f"sor:{sor_id}", "--json").output)
        assert data["address"] == {
            "sor_id": sor_id,
            "gln": vena,
            "inherited_from": gln_view["owners"][0]["sor_id"],
        }

    def test_a_bad_attachment_or_message_is_a_usage_error(self, cli, manifest) -> None:
        vena = _reference(manifest, "VENA")
        assert (
            "MIME:BYTES" in cli("route", "--receiver", vena, "--attachment", "pdf", expect=2).output
        )
        assert (
            "unknown business message"
            in cli("route", "--receiver", vena, "--message", "telegram", expect=2).output
        )

    def test_human_output_explains_the_decision(self, cli, manifest) -> None:
        out = cli("route", "--receiver", _reference(manifest, "VENA")).output
        assert "DELIVER as FDIS91 (fhir)" in out
        assert "conversion: none (native)" in out
        assert "trace:" in out


@pytest.mark.usefixtures("synced")
class TestRouteMessageCommand:
    def _example(self, name: str) -> Path:
        return reference_path("services", "carecommunication", "examples", name)

    @pytest.fixture
    def message_file(self, tmp_path: Path, manifest: Manifest) -> Callable[[str, str], Path]:
        """A real message readdressed to a sandbox receiver, written to a file."""

        def write(name: str, label: str) -> Path:
            path = tmp_path / name
            path.write_bytes(readdressed(name, _reference(manifest, label)))
            return path

        return write

    def test_a_real_oioxml_letter_is_read_and_delivered_natively(self, cli) -> None:
        path = reference_path("messages", "xdis91-ec-physio-2014.xml")  # to XMO, as published
        out = cli("route-message", str(path)).output
        lines = out.splitlines()
        assert lines[0] == "read: XDIS91 (oioxml) correspondence, receiver EAN 5790000120314"
        assert lines[1] == "DELIVER as XDIS91 (oioxml)"
        assert "conversion: none (native)" in out
        data = json.loads(cli("route-message", str(path), "--json").output)
        assert data["message"] == {
            "syntax": "oioxml",
            "message_type": "XDIS91",
            "business_message": "correspondence",
            "message_id": data["message"]["message_id"],
        }
        assert data["message"]["message_id"]
        assert data["decision"] == "deliver" and data["conversion"] == []

    def test_a_real_edifact_receipt_is_read_with_its_unb_recipient(
        self, cli, message_file: Callable[[str, str], Path], manifest: Manifest
    ) -> None:
        xmo = _reference(manifest, "XMO")
        out = cli("route-message", str(message_file("edi-CTL03.edi", "XMO"))).output
        assert out.startswith(
            f"read: CTL03 (edifact) acknowledgement, receiver UNB recipient {xmo}\n"
        )
        assert "DELIVER as CTL03 (edifact)" in out

    def test_a_real_fhir_acknowledgement_is_decided_not_refused(self, cli) -> None:
        path = self._example("Flow2-Acknowledgement_Ex_to_OIOXML.xml")
        result = cli("route-message", str(path), "--json", expect=None)
        data = json.loads(result.output)
        assert data["message"]["message_type"] == "FCTL"
        assert data["message"]["business_message"] == "acknowledgement"
        # Its receiver is a real unit the sandbox does not hold.
        assert (result.exit_code, data["reason"]) == (6, "RECEIVER_UNKNOWN")

    def test_each_attachment_is_one_line_and_message_text_is_never_taken_as_markup(
        self, cli, tmp_path: Path, manifest: Manifest
    ) -> None:
        # A real letter whose attachment is declared image/png over JPEG bytes.
        data = readdressed("cc5-S-B-png.xml", _reference(manifest, "XMO"))
        # The real title, with what rich would read as markup and an emoji code added.
        data = data.replace(b'value="madpyramiden"', b'value="madpyramiden [/] [bold]:smile:"')
        path = tmp_path / "png.xml"
        path.write_bytes(data)
        out = cli("route-message", str(path)).output
        assert "DELIVER as XDIS91 (oioxml)" in out
        assert "  attachments: 1\n" in out
        assert (
            '    1. "madpyramiden [/] [bold]:smile:" declared image/png, bytes show image/jpeg, '
            "10334 bytes, data, carried XBIN01 as image/jpeg\n"
        ) in out
        assert "\n  warning ATTACHMENT_TYPE_MISMATCH: attachment 1 (" in out

    def test_warnings_are_listed_with_their_codes(self, cli, manifest) -> None:
        xmo = _reference(manifest, "XMO")
        out = cli("route", "--receiver", xmo, "--text-length", "40000").output
        line = next(x for x in out.splitlines() if "TEXT_OVER_LEGACY_LIMIT" in x)
        assert line.startswith("  warning TEXT_OVER_LEGACY_LIMIT: text is longer")

    def test_the_sender_syntax_overrides_only_a_fhir_messages_own(self, cli) -> None:
        path = reference_path("messages", "xdis91-ec-physio-2014.xml")
        result = cli("route-message", str(path), "--sender-syntax", "fhir", expect=2)
        assert "overrides the syntax of a FHIR message only" in result.output

    def test_route_bundle_is_route_message_under_its_older_name(self, cli) -> None:
        for path in (
            reference_path("messages", "xdis91-ec-physio-2014.xml"),
            self._example("Flow1-CareCommunication_Ex_from_OIOXML.xml"),
        ):
            new = cli("route-message", str(path), "--json", expect=None)
            old = cli("route-bundle", str(path), "--json", expect=None)
            assert old.exit_code == new.exit_code
            assert _without_ages(json.loads(old.output)) == _without_ages(json.loads(new.output))

    def test_a_file_that_is_no_message_is_refused_with_its_name(self, cli, tmp_path: Path) -> None:
        path = tmp_path / "note.txt"
        path.write_bytes(b"hello")
        result = cli("route-message", str(path), expect=2)
        assert str(path) in result.output


def _without_ages(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k != "snapshot"}


@pytest.mark.usefixtures("synced")
class TestTextOutputEndsWithANewline:
    """Each line of the text answer ends with a newline, the last one too, and nothing follows
    it: the raw bytes, deliver and reject, for every routing command."""

    def test_route(self, cli, manifest) -> None:
        xmo = _reference(manifest, "XMO")
        for result in (
            cli("route", "--receiver", xmo),
            cli("route", "--receiver", xmo, "--at", "2027-02-01", expect=6),
        ):
            assert result.stdout_bytes.endswith(b")\n"), result.stdout_bytes[-80:]

    @pytest.mark.parametrize("command", ["route-message", "route-bundle"])
    def test_route_message_and_route_bundle(self, cli, command: str) -> None:
        delivered = cli(command, str(reference_path("messages", "xdis91-ec-physio-2014.xml")))
        rejected = cli(
            command,
            str(
                reference_path(
                    "services",
                    "carecommunication",
                    "examples",
                    "Flow1-CareCommunication_Ex_from_OIOXML.xml",
                )
            ),
            expect=6,
        )
        for result in (delivered, rejected):
            raw = result.stdout_bytes
            assert raw.endswith(b")\n") and not raw.endswith(b"\n\n"), raw[-80:]


class TestReadme:
    def test_the_routing_section_gives_every_warning_code_and_reason_a_line(self) -> None:
        readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split("### Routing decisions", 1)[1].split("\n## ", 1)[0]
        lines = section.splitlines()
        for code in [*WarningCode, *Reason]:
            assert any(line.startswith(f"- `{code.value}`") for line in lines), code
        assert "docs/routing.md" in section
