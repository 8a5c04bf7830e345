"""Renderers of audit reports and adoption series, on hand-made reports (no database)."""

from __future__ import annotations

import csv
import io
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from openpyxl import load_workbook
from rich.console import Console

from soredi_sync.domain.audit import RULES, RULES_BY_CODE, AdoptionCounts, Finding, Owner, OwnerKind
from soredi_sync.reports.adoption import adoption_csv, adoption_json, adoption_plot
from soredi_sync.reports.audit import render_table, to_csv, to_json, to_xlsx
from soredi_sync.reports.audit_page import audit_html, bar_chart_svg
from soredi_sync.services.audit import AuditReport, AuditScope
from tests.support.factories import snapshot_info

OWNER = Owner("123456789012345", 'Kommune <script>alert("x")</script> & Co', OwnerKind.MUNICIPALITY)


def _finding(code: str, gln: str, text: str = "text") -> Finding:
    rule = RULES_BY_CODE[code]
    return Finding(
        code=code,
        severity=rule.severity,
        gln=gln,
        sor_id="111",
        owner=OWNER,
        vans="V1",
        system_supplier="S",
        system_type="T",
        region_code="1084",
        text=text,
    )


def _report(*, comparing: bool = False) -> AuditReport:
    findings = [
        _finding("BAD_CHECK_DIGIT", "5790000000001", "bad <b>digit</b>"),
        _finding("GLN_WITHOUT_VANS", "5790000000002"),
        _finding("GLN_WITHOUT_VANS", "5790000000003"),
    ]
    counts = {rule.code: sum(f.code == rule.code for f in findings) for rule in RULES}
    return AuditReport(
        snapshot=snapshot_info(2, 3),
        on=date(2026, 11, 3),
        scope=AuditScope(region="1084"),
        findings=findings,
        counts=counts,
        severity_counts={"error": 3, "warning": 0, "info": 0},
        since=snapshot_info(1, 2) if comparing else None,
        new=[findings[2]] if comparing else None,
        resolved=[_finding("LEGACY_ONLY", "5790000000009")] if comparing else None,
        vans_names={"V1": "VANS One"},
    )


class TestAuditRenderers:
    def test_csv_has_a_row_per_finding_with_the_vans_name(self) -> None:
        rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
        assert [r["gln"] for r in rows] == ["5790000000001", "5790000000002", "5790000000003"]
        assert rows[0]["vans_name"] == "VANS One"
        assert rows[0]["owner_kind"] == "municipality"
        assert "change" not in rows[0]

    def test_csv_when_comparing_marks_new_existing_and_resolved(self) -> None:
        rows = list(csv.DictReader(io.StringIO(to_csv(_report(comparing=True)))))
        assert [r["change"] for r in rows] == ["existing", "existing", "new", "resolved"]

    def test_json_carries_counts_scope_and_changes(self) -> None:
        data = to_json(_report(comparing=True))
        assert data["counts"]["GLN_WITHOUT_VANS"] == 2 and data["total"] == 3
        assert data["scope"]["region"] == "1084"
        assert data["since"]["id"] == 1
        assert [r["gln"] for r in data["new"]] == ["5790000000003"]
        assert [r["code"] for r in data["resolved"]] == ["LEGACY_ONLY"]

    def test_table_prints_counts_per_rule_and_the_findings(self) -> None:
        console = Console(record=True, width=200)
        render_table(console, _report(comparing=True))
        text = console.export_text()
        assert "Findings per rule" in text and "5790000000002" in text
        assert "Resolved" in text and "region 1084" in text

    def test_xlsx_has_summary_rule_sheets_and_change_sheets(self, tmp_path: Path) -> None:
        path = tmp_path / "a.xlsx"
        to_xlsx(_report(comparing=True), path)
        book = load_workbook(path)
        assert book.sheetnames == ["Summary", *(r.code for r in RULES), "New", "Resolved"]
        assert book["GLN_WITHOUT_VANS"].max_row == 3
        assert book["BAD_CHECK_DIGIT"]["M2"].value == "bad <b>digit</b>"
        assert book["FHIR_WITHOUT_FCTL"].max_row == 1
        assert book["Resolved"]["A2"].value == "LEGACY_ONLY"
        summary = {row[0]: row for row in book["Summary"].iter_rows(values_only=True) if row}
        assert summary["GLN_WITHOUT_VANS"][2:] == ("GLN without VANS", 2, 1, 0)


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href") or k.endswith(":href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class TestHtml:
    def test_all_text_is_escaped(self) -> None:
        page = audit_html(_report())
        assert "<script>alert" not in page and "<b>digit</b>" not in page
        parser = _Collect()
        parser.feed(page)
        assert parser.tags.count("script") == 1
        assert any('<script>alert("x")</script>' in t for t in parser.text)

    def test_the_page_is_self_contained(self) -> None:
        parser = _Collect()
        parser.feed(audit_html(_report(comparing=True)))
        assert all(ref.startswith("#") for ref in parser.refs)
        assert "svg" in parser.tags and "link" not in parser.tags and "img" not in parser.tags

    def test_the_bar_chart_has_a_bar_per_rule_scaled_to_the_largest(self) -> None:
        svg = bar_chart_svg([("A", 4, "#f00"), ("B", 2, "#0f0"), ("C", 0, "#00f")])
        assert svg.count("<rect") == 3
        widths = [int(part.split('"')[0]) for part in svg.split('width="')[2:]]
        assert widths[0] == 2 * widths[1] and widths[2] == 0


SERIES = [
    (snapshot_info(1, 2), {"all": AdoptionCounts(fhir_only=1, legacy_only=3, both=0)}),
    (snapshot_info(2, 3), {"all": AdoptionCounts(fhir_only=2, legacy_only=1, both=1)}),
]


class TestAdoptionRenderers:
    def test_csv_has_a_row_per_snapshot_and_group_with_the_share(self) -> None:
        rows = list(csv.DictReader(io.StringIO(adoption_csv(SERIES))))
        assert [(r["snapshot_id"], r["accepts_fdis91"], r["total"]) for r in rows] == [
            ("1", "1", "4"),
            ("2", "3", "4"),
        ]
        assert rows[1]["fdis91_share"] == "0.75"

    def test_json_nests_groups_under_each_snapshot(self) -> None:
        data = adoption_json(SERIES)
        assert data["snapshots"][1]["groups"]["all"]["both"] == 1
        assert data["snapshots"][0]["snapshot"]["effective_date"] == "2026-11-02"

    def test_plot_refuses_other_file_types(self, tmp_path: Path) -> None:
        import pytest

        with pytest.raises(ValueError, match="png"):
            adoption_plot(SERIES, tmp_path / "a.pdf")
