"""``soredi-sync audit`` and ``soredi-sync adoption`` on the synced tiny sandbox (both engines)."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook

from soredi_sync.bootstrap import bootstrap
from soredi_sync.domain.audit import RULES, AdoptionDimension, adoption
from soredi_sync.sandbox.generate import Manifest
from tests.support.app import make_settings
from tests.support.cli_runner import Cli


@pytest.fixture
def synced(cli: Cli, database_url: str, sandbox_dir: Path) -> Cli:
    """The command line on a database synced with day 0 (snapshot 1) and day 1 (snapshot 2)."""
    cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
    cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
    return cli


def _ident(row: dict[str, str]) -> str:
    return row["sor_id"] if row["code"] == "UNIT_WITHOUT_GLN" else row["gln"]


def _audit_json(cli: Cli, *args: str) -> dict:
    return json.loads(cli("audit", "--format", "json", *args).stdout)


class TestAuditOutputs:
    def test_json_lists_the_manifests_day_one_defects_with_counts_per_rule(
        self, synced, manifest: Manifest
    ) -> None:
        data = _audit_json(synced)
        assert data["snapshot"]["id"] == 2
        assert data["snapshot"]["effective_date"] == manifest.day(1).snapshot_date
        for code, expected in manifest.day(1).defects.items():
            found = {_ident(r) for r in data["findings"] if r["code"] == code}
            assert found == set(expected), code
        assert sum(data["counts"].values()) == data["total"] == len(data["findings"])
        assert sum(data["severity_counts"].values()) == data["total"]
        assert [r["code"] for r in data["rules"]] == [rule.code for rule in RULES]

    def test_table_shows_counts_per_rule_and_the_findings(self, synced) -> None:
        output = synced("audit").stdout
        assert "Findings per rule" in output and "snapshot 2" in output
        assert "GLN_WITHOUT_VANS" in output

    def test_csv_has_one_row_per_finding_with_owner_and_vans_name(self, synced) -> None:
        data = _audit_json(synced)
        rows = list(csv.DictReader(io.StringIO(synced("audit", "--format", "csv").stdout)))
        assert len(rows) == data["total"]
        assert {"code", "gln", "owner_name", "vans_name", "text"} <= set(rows[0])
        assert any(r["vans"] and r["vans_name"] for r in rows)

    def test_an_older_snapshot_can_be_audited_by_id_or_date(
        self, synced, manifest: Manifest
    ) -> None:
        by_id = _audit_json(synced, "--snapshot", "1")
        by_date = _audit_json(synced, "--at", manifest.day(0).snapshot_date)
        assert by_id["snapshot"]["id"] == by_date["snapshot"]["id"] == 1
        for code, expected in manifest.day(0).defects.items():
            assert {_ident(r) for r in by_id["findings"] if r["code"] == code} == set(expected)

    def test_an_unknown_snapshot_exits_with_not_found(self, synced) -> None:
        result = synced("audit", "--since", "99", expect=4)
        assert "no snapshot '99'" in result.output

    @pytest.mark.usefixtures("database_url")
    def test_without_a_snapshot_the_audit_says_to_sync_first(self, cli: Cli) -> None:
        cli("db", "upgrade")
        assert "sync" in cli("audit", expect=4).output

    def test_xlsx_and_html_need_an_output_file(self, synced) -> None:
        assert "--out" in synced("audit", "--format", "xlsx", expect=2).output


class TestAuditComparison:
    def test_since_lists_new_and_resolved_findings_as_the_manifest_says(
        self, synced, manifest: Manifest
    ) -> None:
        data = _audit_json(synced, "--since", "1")
        assert data["since"]["id"] == 1
        before, after = manifest.day(0).defects, manifest.day(1).defects
        for code in after:
            new = {_ident(r) for r in data["new"] if r["code"] == code}
            resolved = {_ident(r) for r in data["resolved"] if r["code"] == code}
            assert new == set(after[code]) - set(before[code]), code
            assert resolved == set(before[code]) - set(after[code]), code
        assert data["new"] or data["resolved"], "day 1 changes some defects"

    def test_csv_marks_new_existing_and_resolved_rows(self, synced) -> None:
        data = _audit_json(synced, "--since", "1")
        rows = list(
            csv.DictReader(io.StringIO(synced("audit", "--since", "1", "--format", "csv").stdout))
        )
        changes = [r["change"] for r in rows]
        assert changes.count("new") == len(data["new"])
        assert changes.count("resolved") == len(data["resolved"])
        assert changes.count("existing") == data["total"] - len(data["new"])


class TestAuditScope:
    def test_owner_by_sor_id_keeps_the_findings_of_that_municipality_only(self, synced) -> None:
        everything = _audit_json(synced)
        municipal = [
            r["owner_sor_id"] for r in everything["findings"] if r["owner_kind"] == "municipality"
        ]
        assert municipal, "the tiny sandbox has municipal findings"
        owner = municipal[0]
        scoped = _audit_json(synced, "--owner", owner)
        assert scoped["findings"]
        assert {r["owner_sor_id"] for r in scoped["findings"]} == {owner}
        assert len(scoped["findings"]) == municipal.count(owner)

    def test_owner_by_name_fragment_is_case_insensitive(self, synced) -> None:
        everything = _audit_json(synced)
        name = next(r["owner_name"] for r in everything["findings"] if r["owner_name"])
        scoped = _audit_json(synced, "--owner", name.upper())
        assert scoped["findings"]
        assert all(name.casefold() in r["owner_name"].casefold() for r in scoped["findings"])

    def test_region_and_vans_narrow_the_findings(self, synced) -> None:
        everything = _audit_json(synced)
        row = next(r for r in everything["findings"] if r["region_code"] and r["vans"])
        region = _audit_json(synced, "--region", row["region_code"])
        assert {r["region_code"] for r in region["findings"]} == {row["region_code"]}
        vans = _audit_json(synced, "--vans", row["vans"])
        assert {r["vans"] for r in vans["findings"]} == {row["vans"]}
        assert len(vans["findings"]) < everything["total"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.tables += tag == "table"
        self.refs += [v or "" for k, v in attrs if k in ("src", "href") or k.endswith(":href")]


class TestAuditFiles:
    def test_xlsx_has_a_summary_and_one_sheet_per_rule_with_its_findings(
        self, synced, tmp_path: Path
    ) -> None:
        data = _audit_json(synced, "--since", "1")
        path = tmp_path / "audit.xlsx"
        synced("audit", "--since", "1", "--format", "xlsx", "--out", str(path))
        book = load_workbook(path, read_only=True)
        expected = ["Summary", *(rule.code for rule in RULES), "New", "Resolved"]
        assert book.sheetnames == expected
        summary = list(book["Summary"].iter_rows(values_only=True))
        titles = {row[0]: row for row in summary if row and row[0] in data["counts"]}
        for rule in RULES:
            assert titles[rule.code][2] == rule.title
            assert titles[rule.code][3] == data["counts"][rule.code]
            assert book[rule.code].max_row - 1 == data["counts"][rule.code]
        assert book["New"].max_row - 1 == len(data["new"])
        assert book["Resolved"].max_row - 1 == len(data["resolved"])
        header = next(book["GLN_WITHOUT_VANS"].iter_rows(values_only=True))
        assert header[:4] == ("Code", "Severity", "GLN", "SOR-ID")
        book.close()

    def test_html_is_one_self_contained_page_with_chart_and_sortable_tables(
        self, synced, tmp_path: Path
    ) -> None:
        path = tmp_path / "audit.html"
        synced("audit", "--since", "1", "--format", "html", "--out", str(path))
        page = path.read_text(encoding="utf-8")
        parser = _Links()
        parser.feed(page)
        parser.close()
        assert all(ref.startswith("#") for ref in parser.refs), parser.refs
        assert "svg" in parser.tags and "script" in parser.tags and "style" in parser.tags
        assert parser.tables == 1 + 2 + len(RULES) - page.count("<p>None.</p>")
        assert "link" not in parser.tags


class TestAdoption:
    def _recount(self, database_url: str, by: AdoptionDimension | None) -> list[dict]:
        settings = make_settings(database_url)
        with bootstrap(settings) as app, app.uow() as uow:
            result = []
            for snapshot_id in (1, 2):
                info = uow.registry.get_snapshot(snapshot_id)
                assert info is not None
                registry = uow.registry.load_registry(snapshot_id)
                counts = adoption(registry, app.reference.audit_context, info.effective_date, by=by)
                result.append({g: (c.fhir_only, c.legacy_only, c.both) for g, c in counts.items()})
            return result

    def test_json_equals_a_recount_from_the_registry(self, synced, database_url: str) -> None:
        data = json.loads(synced("adoption", "--format", "json").stdout)
        got = [
            {g: (c["fhir_only"], c["legacy_only"], c["both"]) for g, c in s["groups"].items()}
            for s in data["snapshots"]
        ]
        assert [s["snapshot"]["id"] for s in data["snapshots"]] == [1, 2]
        assert got == self._recount(database_url, None)

    def test_csv_by_region_equals_a_recount_from_the_registry(
        self, synced, database_url: str
    ) -> None:
        rows = list(csv.DictReader(io.StringIO(synced("adoption", "--by", "region").stdout)))
        expected = self._recount(database_url, AdoptionDimension.REGION)
        got: list[dict] = [{}, {}]
        for row in rows:
            counts = (int(row["fhir_only"]), int(row["legacy_only"]), int(row["both"]))
            got[int(row["snapshot_id"]) - 1][row["group"]] = counts
            assert int(row["total"]) == sum(counts)
        assert got == expected

    def test_plot_writes_a_png(self, synced, tmp_path: Path) -> None:
        path = tmp_path / "adoption.png"
        synced("adoption", "--by", "owner-type", "--plot", str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_plot_to_html_inlines_the_chart(self, synced, tmp_path: Path) -> None:
        path = tmp_path / "adoption.html"
        synced("adoption", "--plot", str(path))
        page = path.read_text(encoding="utf-8")
        parser = _Links()
        parser.feed(page)
        assert "svg" in parser.tags
        assert not [r for r in parser.refs if not r.startswith("#")]
