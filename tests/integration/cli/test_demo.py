"""``soredi-sync demo``: the offline tour and the story of its three users, checked against the
database it leaves behind with ``--keep``."""

from __future__ import annotations

import io
import json
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from soredi_sync.bootstrap import bootstrap
from soredi_sync.cli import cli
from soredi_sync.config import Settings
from soredi_sync.demo import run_demo
from soredi_sync.domain.model import Registry
from soredi_sync.services.audit import run_audit

WIDE = {"COLUMNS": "250"}  # one line per line of the story, as a wide terminal shows it


@dataclass(frozen=True)
class Kept:
    """A demo run with --keep: its output, its folder and the database URL it printed."""

    output: str
    directory: Path
    database_url: str

    def commands(self) -> list[list[str]]:
        """The explore commands it printed, as argument lists (comments dropped)."""
        found = []
        for line in self.output.splitlines():
            if line.startswith("  soredi-sync "):
                found.append(shlex.split(line, comments=True)[1:])
        return found

    def registry(self, snapshot_id: int) -> Registry:
        with bootstrap(Settings(database_url=self.database_url)) as app, app.uow() as uow:
            return uow.registry.load_registry(snapshot_id)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=WIDE)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Kept:
    """One tiny demo, kept, shared by the tests that read its story or its database."""
    directory = tmp_path_factory.mktemp("demo") / "kept"
    result = invoke("demo", "--profile", "tiny", "--keep", str(directory))
    assert result.exit_code == 0, result.output
    match = re.search(r"--database-url (\S+) status", result.output)
    assert match, result.output
    return Kept(result.output, directory, match.group(1))


def one(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not in:\n{text}"
    return match


def section(text: str, number: int) -> str:
    """The lines of step ``number`` of the tour."""
    start = one(rf"^{number}\. ", text).start()
    after = re.search(rf"^({number + 1}\. |Done)", text[start:], re.MULTILINE)
    return text[start : start + after.start()] if after else text[start:]


class TestTheTour:
    def test_the_demo_syncs_two_days_offline_and_shows_what_changed(self, kept: Kept) -> None:
        text = kept.output
        assert "day 0: run 1 succeeded" in text
        assert "day 0 again: run 2 unchanged" in text
        assert "day 1: run 3 succeeded" in text
        assert "took up FDIS91" in text
        assert len(re.findall(r"^GLN 579\d{10} ", text, re.MULTILINE)) == 2

    def test_running_the_demo_twice_starts_from_a_fresh_database(self, tmp_path: Path) -> None:
        for _ in range(2):
            out = io.StringIO()
            code = run_demo(tmp_path / "demo", profile="tiny", console=Console(file=out))
            assert code == 0, out.getvalue()
            assert "day 0: run 1 succeeded" in out.getvalue()
            assert "plan 1 verified" in out.getvalue()

    def test_without_keep_the_demo_leaves_no_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        result = invoke("demo", "--profile", "tiny")
        assert result.exit_code == 0, result.output
        assert list(cwd.iterdir()) == []
        assert list(scratch.iterdir()) == []
        assert "--keep DIR keeps them" in result.output


class TestTheGatewayStory:
    def test_a_carecommunication_bundle_is_delivered_natively_with_its_trace(
        self, kept: Kept
    ) -> None:
        story = section(kept.output, 7)
        native = one(
            r"delivered natively: FDIS91 \(fhir\) correspondence from .+ to .+ "
            r"\(GLN (\d{13}), SOR-ID (\d+)\)",
            story,
        )
        gln = native.group(1)
        assert f"address: found (SOR-ID {native.group(2)} GLN {gln})" in story
        assert "DELIVER as FDIS91 (fhir), native: no conversion; attachment 1 inline" in story
        assert "native: yes (receiver advertises FDIS91)" in story
        assert "decision: deliver (FDIS91 (fhir))" in story
        assert "FDIS91" in kept.registry(2).message_types(gln)

    def test_a_bundle_for_a_receiver_of_xdis91_only_is_converted_by_its_vans(
        self, kept: Kept
    ) -> None:
        story = section(kept.output, 7)
        converted = one(r"one that must be converted: .+ \(GLN (\d{13}), SOR-ID \d+\)", story)
        gln = converted.group(1)
        vans = one(r"DELIVER as XDIS91 \(oioxml\), converted: fhir->oioxml by VANS (\d+)", story)
        record = kept.registry(2)
        assert vans.group(1) == record.glns[gln].vans
        assert "XDIS91" in record.message_types(gln)
        assert "FDIS91" not in record.message_types(gln)
        assert "attachment 1 XBIN01" in story
        day = one(r"conversion: allowed \(fhir->oioxml on (\d{4}-\d\d-\d\d)\)", story).group(1)
        assert f"decided on {day} (the sandbox's day)" in story
        assert "decision: deliver (XDIS91 (oioxml))" in story

    def test_the_converted_bundle_is_kept_and_route_message_decides_it_the_same_way(
        self, kept: Kept
    ) -> None:
        (route,) = [c for c in kept.commands() if "route-message" in c]
        message = Path(route[route.index("route-message") + 1])
        assert message.parent == kept.directory.resolve() / "messages"
        assert message.read_bytes().startswith(b"<?xml")
        result = invoke(*route)
        assert result.exit_code == 0, result.output
        assert "DELIVER as XDIS91 (oioxml)" in result.output
        assert "conversion: fhir->oioxml by VANS" in result.output


class TestTheRegionStory:
    def test_one_regions_audit_summary_gives_its_counts(self, kept: Kept) -> None:
        story = section(kept.output, 8)
        head = one(r"^8\. A region: (.+) \((\d{4})\) reads its audit summary of snapshot 2", story)
        totals = one(
            r"(\d+) findings \((\d+) error, (\d+) warning, (\d+) info\); since snapshot 1: "
            r"(\d+) new, (\d+) resolved",
            story,
        )
        total, errors, warnings, infos = (int(totals.group(i)) for i in range(1, 5))
        assert total > 0 and total == errors + warnings + infos
        per_rule = [int(n) for n in re.findall(r"^\s+(\d+)  [A-Z0-9_]+: ", story, re.MULTILINE)]
        assert sum(per_rule) == total
        with bootstrap(Settings(database_url=kept.database_url)) as app, app.uow() as uow:
            report = run_audit(
                uow, app.reference.audit_context, snapshot_id=2, region=head.group(2)
            )
        assert len(report.findings) == total
        assert app.reference.audit_context.region_names[head.group(2)] == head.group(1)
        assert "CareCommunication adoption:" in story


class TestTheMedcomStory:
    def test_a_municipalitys_switch_plan_is_submitted_to_sorus_and_verified_next_day(
        self, kept: Kept
    ) -> None:
        story = section(kept.output, 9)
        plan = one(
            r"plan 1 switches (.+) \((\d+)\) to CareCommunication: (\d+) changes on (\d+) GLNs",
            story,
        )
        items = int(plan.group(3))
        assert items > 0
        assert f"submitted to the sandbox SORUS on day 1: {items} submitted (receipt SORUS-" in (
            story
        )
        assert f"verified the same day: {items} pending" in story
        assert "day 2: run 4 succeeded" in story
        assert f"plan 1 verified on snapshot 3: {items} confirmed" in story

        shown = invoke("--database-url", kept.database_url, "plan", "show", "1", "--json")
        assert shown.exit_code == 0, shown.output
        data: dict[str, Any] = json.loads(shown.stdout)
        assert data["owners"] == [plan.group(2)]
        assert data["counts"]["confirmed"] == items == len(data["items"])


class TestKeep:
    def test_keep_leaves_a_database_the_read_commands_can_read(self, kept: Kept) -> None:
        assert (kept.directory / "demo.db").is_file()
        assert (kept.directory / "sandbox" / "sorus-journal.json").is_file()
        status = invoke("--database-url", kept.database_url, "status")
        assert status.exit_code == 0, status.output
        assert "Current snapshot 3 " in status.output

    def test_keep_prints_the_commands_to_explore_it_and_they_run(self, kept: Kept) -> None:
        commands = kept.commands()
        names = [c[2] if c[0] == "--database-url" else c[0] for c in commands]
        assert names == [
            "status",
            "changes",
            "history",
            "route-message",
            "audit",
            "plan",
            "serve",
            "sandbox",
        ]
        for command in commands:
            if names[commands.index(command)] in ("serve", "sandbox"):
                continue  # they serve until interrupted
            result = invoke(*command)
            assert result.exit_code == 0, (command, result.output)

    def test_keep_refuses_a_folder_holding_other_files(self, tmp_path: Path) -> None:
        precious = tmp_path / "notes.txt"
        precious.write_text("mine", encoding="utf-8")
        result = invoke("demo", "--profile", "tiny", "--keep", str(tmp_path))
        assert result.exit_code == 2
        assert "holds files the demo did not write (notes.txt)" in result.output
        assert precious.read_text(encoding="utf-8") == "mine"
        assert not (tmp_path / "demo.db").exists()
