"""Audit reports as a rich table, CSV, JSON and an XLSX workbook (one row per finding)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soredi_sync.domain.audit import RULES, RULES_BY_CODE, Finding
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.services.audit import AuditReport

if TYPE_CHECKING:
    from rich.console import Console

FINDING_COLUMNS = (
    "code",
    "severity",
    "gln",
    "sor_id",
    "owner_sor_id",
    "owner_name",
    "owner_kind",
    "region_code",
    "vans",
    "vans_name",
    "system_supplier",
    "system_type",
    "text",
)
FINDING_HEADINGS = (
    "Code",
    "Severity",
    "GLN",
    "SOR-ID",
    "Owner SOR-ID",
    "Owner",
    "Owner kind",
    "Region",
    "VANS",
    "VANS name",
    "System supplier",
    "System type",
    "Text",
)


def rule_title(code: str) -> str:
    """The rule's title, or the code itself for a code no rule has."""
    rule = RULES_BY_CODE.get(code)
    return rule.title if rule else code


def finding_row(finding: Finding, vans_names: dict[str, str] | None = None) -> dict[str, str]:
    """One finding as flat strings (empty for missing values), keyed by FINDING_COLUMNS."""
    owner = finding.owner
    names = vans_names or {}
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "gln": finding.gln or "",
        "sor_id": finding.sor_id or "",
        "owner_sor_id": owner.sor_id if owner else "",
        "owner_name": owner.name if owner else "",
        "owner_kind": owner.kind.value if owner else "",
        "region_code": finding.region_code or "",
        "vans": finding.vans or "",
        "vans_name": names.get(finding.vans, "") if finding.vans else "",
        "system_supplier": finding.system_supplier or "",
        "system_type": finding.system_type or "",
        "text": finding.text,
    }


def finding_rows(report: AuditReport, findings: Iterable[Finding]) -> list[dict[str, str]]:
    """:func:`finding_row` of each finding, with the report's VANS names."""
    names = dict(report.vans_names)
    return [finding_row(f, names) for f in findings]


def snapshot_json(snapshot: SnapshotInfo | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "id": snapshot.id,
        "source": snapshot.source,
        "taken_at": snapshot.taken_at.isoformat(),
        "effective_date": snapshot.effective_date.isoformat(),
    }


def snapshot_label(snapshot: SnapshotInfo) -> str:
    return f"snapshot {snapshot.id} ({snapshot.effective_date.isoformat()})"


# -- table, CSV, JSON --------------------------------------------------------------------------


def render_table(console: Console, report: AuditReport) -> None:
    """Counts per rule, then every finding in scope (and what is new/resolved when comparing)."""
    from rich.table import Table

    head = f"Audit of {snapshot_label(report.snapshot)}, scope: {report.scope.describe()}"
    if report.since is not None:
        head += f", compared with {snapshot_label(report.since)}"
    console.print(head)
    changes = report.change_counts()
    summary = Table("rule", "severity", "title", "findings", title="Findings per rule")
    if changes:
        summary.add_column("new")
        summary.add_column("resolved")
    for rule in RULES:
        row = [rule.code, rule.severity.value, rule.title, str(report.counts[rule.code])]
        if changes:
            new, resolved = changes[rule.code]
            row += [str(new), str(resolved)]
        summary.add_row(*row)
    console.print(summary)
    severities = ", ".join(f"{n} {s}" for s, n in report.severity_counts.items())
    console.print(f"{len(report.findings)} findings ({severities})")
    sections: list[tuple[str, list[Finding]]] = [("Findings", report.findings)]
    if report.new is not None and report.resolved is not None:
        sections += [("New", report.new), ("Resolved", report.resolved)]
    for label, findings in sections:
        if not findings:
            continue
        table = Table("code", "severity", "GLN", "SOR-ID", "owner", "VANS", "text", title=label)
        for flat in finding_rows(report, findings):
            owner = f"{flat['owner_name']} ({flat['owner_sor_id']})" if flat["owner_sor_id"] else ""
            table.add_row(
                flat["code"],
                flat["severity"],
                flat["gln"],
                flat["sor_id"],
                owner,
                flat["vans"],
                flat["text"],
            )
        console.print(table)


def to_csv(report: AuditReport) -> str:
    """One row per finding; when comparing, a ``change`` column (new/existing/resolved)."""
    out = io.StringIO()
    columns = list(FINDING_COLUMNS)
    if report.comparing:
        columns.insert(0, "change")
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    new_keys = {f.key for f in report.new or []}
    for row, finding in zip(finding_rows(report, report.findings), report.findings, strict=True):
        if report.comparing:
            row["change"] = "new" if finding.key in new_keys else "existing"
        writer.writerow(row)
    if report.comparing:
        for row in finding_rows(report, report.resolved or []):
            writer.writerow({"change": "resolved", **row})
    return out.getvalue()


def to_json(report: AuditReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "snapshot": snapshot_json(report.snapshot),
        "on": report.on.isoformat(),
        "scope": {
            "owners": list(report.scope.owners) if report.scope.owners else None,
            "owner_name": report.scope.owner_name,
            "region": report.scope.region,
            "vans": report.scope.vans,
            "description": report.scope.describe(),
        },
        "rules": [
            {
                "code": rule.code,
                "severity": rule.severity.value,
                "title": rule.title,
                "count": report.counts[rule.code],
            }
            for rule in RULES
        ],
        "counts": dict(report.counts),
        "severity_counts": dict(report.severity_counts),
        "total": len(report.findings),
        "findings": finding_rows(report, report.findings),
    }
    if report.comparing:
        data["since"] = snapshot_json(report.since)
        data["new"] = finding_rows(report, report.new or [])
        data["resolved"] = finding_rows(report, report.resolved or [])
    return data


# -- XLSX --------------------------------------------------------------------------------------


def to_xlsx(report: AuditReport, path: Path) -> None:
    """A workbook: "Summary", one sheet per rule code, and "New"/"Resolved" when comparing."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    summary.title = "Summary"
    summary.append(["Snapshot", report.snapshot.id])
    summary.append(["Effective date", report.on.isoformat()])
    summary.append(["Taken at", report.snapshot.taken_at.isoformat()])
    summary.append(["Scope", report.scope.describe()])
    if report.since is not None:
        summary.append(["Compared with snapshot", report.since.id])
    summary.append(["Findings", len(report.findings)])
    for severity, count in report.severity_counts.items():
        summary.append([f"  {severity}", count])
    summary.append([])
    header = ["Code", "Severity", "Title", "Findings"]
    if report.comparing:
        header += ["New", "Resolved"]
    summary.append(header)
    for cell in summary[summary.max_row]:
        cell.font = bold
    changes = report.change_counts()
    for rule in RULES:
        row: list[Any] = [rule.code, rule.severity.value, rule.title, report.counts[rule.code]]
        if changes:
            row += list(changes[rule.code])
        summary.append(row)
    for column, width in zip("ABCDEF", (28, 12, 52, 10, 8, 10), strict=True):
        summary.column_dimensions[column].width = width

    sheets: list[tuple[str, list[Finding]]] = list(report.by_code().items())
    if report.new is not None and report.resolved is not None:
        sheets += [("New", report.new), ("Resolved", report.resolved)]
    for name, findings in sheets:
        sheet = workbook.create_sheet(name[:31])
        sheet.append(list(FINDING_HEADINGS))
        for cell in sheet[1]:
            cell.font = bold
        for row_values in finding_rows(report, findings):
            sheet.append([row_values[c] for c in FINDING_COLUMNS])
        sheet.freeze_panes = "A2"
        if findings:
            sheet.auto_filter.ref = sheet.dimensions
        widths = (24, 9, 15, 18, 18, 30, 13, 8, 8, 20, 18, 12, 90)
        for index, width in enumerate(widths):
            sheet.column_dimensions[chr(ord("A") + index)].width = width
    workbook.save(path)
