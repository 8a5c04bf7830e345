"""Renderers for audit reports and adoption series: rich table, CSV, JSON, XLSX, HTML, plots.

Every file written is self-contained: the HTML report carries its CSS, its sorting script and its
charts (inline SVG) so it reads offline and can be mailed as one attachment.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from soredi_sync.db.repository import SnapshotInfo
from soredi_sync.domain.audit import RULES, RULES_BY_CODE, Finding
from soredi_sync.errors import MissingExtra
from soredi_sync.services.audit import AdoptionSeries, AuditReport

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
ADOPTION_COLUMNS = (
    "snapshot_id",
    "effective_date",
    "group",
    "fhir_only",
    "legacy_only",
    "both",
    "accepts_fdis91",
    "total",
    "fdis91_share",
)


def _title(code: str) -> str:
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


def _rows(report: AuditReport, findings: Iterable[Finding]) -> list[dict[str, str]]:
    names = dict(report.vans_names)
    return [finding_row(f, names) for f in findings]


def _snapshot_json(snapshot: SnapshotInfo | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "id": snapshot.id,
        "source": snapshot.source,
        "taken_at": snapshot.taken_at.isoformat(),
        "effective_date": snapshot.effective_date.isoformat(),
    }


def _snapshot_label(snapshot: SnapshotInfo) -> str:
    return f"snapshot {snapshot.id} ({snapshot.effective_date.isoformat()})"


# -- audit: table, CSV, JSON ------------------------------------------------------------------


def render_table(console: Any, report: AuditReport) -> None:
    """Counts per rule, then every finding in scope (and what is new/resolved when comparing)."""
    from rich.table import Table

    head = f"Audit of {_snapshot_label(report.snapshot)}, scope: {report.scope.describe()}"
    if report.since is not None:
        head += f", compared with {_snapshot_label(report.since)}"
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
        for flat in _rows(report, findings):
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
    for row, finding in zip(_rows(report, report.findings), report.findings, strict=True):
        if report.comparing:
            row["change"] = "new" if finding.key in new_keys else "existing"
        writer.writerow(row)
    if report.comparing:
        for row in _rows(report, report.resolved or []):
            writer.writerow({"change": "resolved", **row})
    return out.getvalue()


def to_json(report: AuditReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "snapshot": _snapshot_json(report.snapshot),
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
        "findings": _rows(report, report.findings),
    }
    if report.comparing:
        data["since"] = _snapshot_json(report.since)
        data["new"] = _rows(report, report.new or [])
        data["resolved"] = _rows(report, report.resolved or [])
    return data


# -- audit: XLSX ------------------------------------------------------------------------------


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
        for row_values in _rows(report, findings):
            sheet.append([row_values[c] for c in FINDING_COLUMNS])
        sheet.freeze_panes = "A2"
        if findings:
            sheet.auto_filter.ref = sheet.dimensions
        widths = (24, 9, 15, 18, 18, 30, 13, 8, 8, 20, 18, 12, 90)
        for index, width in enumerate(widths):
            sheet.column_dimensions[chr(ord("A") + index)].width = width
    workbook.save(path)


# -- audit: HTML ------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eef;cursor:pointer;user-select:none;white-space:nowrap}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.num{text-align:right}.error{color:#b00020}.warning{color:#a05a00}.info{color:#225}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
svg text{font-size:12px;font-family:inherit}
"""

_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, index) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var asc = !th.classList.contains("sorted-asc");
      table.querySelectorAll("th").forEach(function (h) {
        h.classList.remove("sorted-asc", "sorted-desc");
      });
      th.classList.add(asc ? "sorted-asc" : "sorted-desc");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[index].textContent, y = b.cells[index].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (!isNaN(nx) && !isNaN(ny) && String(nx) === x.trim() && String(ny) === y.trim())
          ? nx - ny : x.localeCompare(y);
        return asc ? cmp : -cmp;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

_BAR_COLOURS = {"error": "#c62828", "warning": "#ef8f00", "info": "#3f51b5"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def bar_chart_svg(bars: Sequence[tuple[str, int, str]], width: int = 720) -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour) per bar."""
    label_width, bar_height, gap = 230, 18, 6
    height = max(1, len(bars)) * (bar_height + gap) + gap
    top = max((value for _, value, _ in bars), default=0) or 1
    room = width - label_width - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="findings per rule">'
    ]
    for index, (label, value, colour) in enumerate(bars):
        y = gap + index * (bar_height + gap)
        length = round(room * value / top)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 5}" text-anchor="end">'
            f"{_e(label)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{length}" height="{bar_height}" '
            f'fill="{_e(colour)}"><title>{_e(label)}: {value}</title></rect>'
            f'<text x="{label_width + length + 4}" y="{y + bar_height - 5}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _findings_table(report: AuditReport, findings: list[Finding]) -> str:
    if not findings:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in FINDING_HEADINGS)
    body = []
    for row in _rows(report, findings):
        cells = "".join(
            f'<td class="{_e(row["severity"])}">{_e(row[c])}</td>'
            if c == "severity"
            else f"<td>{_e(row[c])}</td>"
            for c in FINDING_COLUMNS
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}<script>{_JS}</script></body></html>\n"
    )


def audit_html(report: AuditReport) -> str:
    """The HTML report as one string (see :func:`to_html`)."""
    title = f"SOR-EDI audit, {_snapshot_label(report.snapshot)}"
    facts = [
        ("Snapshot", f"{report.snapshot.id} (taken {report.snapshot.taken_at:%Y-%m-%d %H:%M})"),
        ("Effective date", report.on.isoformat()),
        ("Scope", report.scope.describe()),
        ("Findings", str(len(report.findings))),
        ("By severity", ", ".join(f"{n} {s}" for s, n in report.severity_counts.items())),
    ]
    if report.since is not None:
        facts.append(("Compared with", _snapshot_label(report.since)))
        facts.append(("New / resolved", f"{len(report.new or [])} / {len(report.resolved or [])}"))
    parts = [f"<h1>{_e(title)}</h1><dl>"]
    parts += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts]
    parts.append("</dl><h2>Findings per rule</h2>")
    bars = [
        (rule.code, report.counts[rule.code], _BAR_COLOURS.get(rule.severity.value, "#666"))
        for rule in RULES
    ]
    parts.append(bar_chart_svg(bars))
    changes = report.change_counts()
    extra = "<th>New</th><th>Resolved</th>" if changes else ""
    parts.append(
        '<table class="sortable"><thead><tr><th>Code</th><th>Severity</th><th>Title</th>'
        f"<th>Findings</th>{extra}</tr></thead><tbody>"
    )
    for rule in RULES:
        cells = (
            f'<td><a href="#rule-{_e(rule.code)}">{_e(rule.code)}</a></td>'
            f'<td class="{_e(rule.severity.value)}">{_e(rule.severity.value)}</td>'
            f'<td>{_e(rule.title)}</td><td class="num">{report.counts[rule.code]}</td>'
        )
        if changes:
            new, resolved = changes[rule.code]
            cells += f'<td class="num">{new}</td><td class="num">{resolved}</td>'
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    if report.new is not None and report.resolved is not None:
        parts.append('<h2 id="new">New findings</h2>' + _findings_table(report, report.new))
        parts.append(
            '<h2 id="resolved">Resolved findings</h2>' + _findings_table(report, report.resolved)
        )
    for code, findings in report.by_code().items():
        parts.append(
            f'<h2 id="rule-{_e(code)}">{_e(code)}: {_e(_title(code))} ({len(findings)})</h2>'
        )
        parts.append(_findings_table(report, findings))
    return _page(title, "".join(parts))


def to_html(report: AuditReport, path: Path) -> None:
    """One self-contained HTML file: summary, SVG chart, sortable tables, no external assets."""
    path.write_text(audit_html(report), encoding="utf-8")


# -- adoption ---------------------------------------------------------------------------------


def adoption_rows(series: AdoptionSeries) -> list[dict[str, Any]]:
    rows = []
    for snapshot, groups in series:
        for group, counts in groups.items():
            share = counts.accepts_fdis91 / counts.total if counts.total else 0.0
            rows.append(
                {
                    "snapshot_id": snapshot.id,
                    "effective_date": snapshot.effective_date.isoformat(),
                    "group": group,
                    "fhir_only": counts.fhir_only,
                    "legacy_only": counts.legacy_only,
                    "both": counts.both,
                    "accepts_fdis91": counts.accepts_fdis91,
                    "total": counts.total,
                    "fdis91_share": round(share, 4),
                }
            )
    return rows


def adoption_csv(series: AdoptionSeries) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(ADOPTION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(adoption_rows(series))
    return out.getvalue()


def adoption_json(series: AdoptionSeries) -> dict[str, Any]:
    return {
        "snapshots": [
            {
                "snapshot": _snapshot_json(snapshot),
                "groups": {
                    group: {
                        "fhir_only": counts.fhir_only,
                        "legacy_only": counts.legacy_only,
                        "both": counts.both,
                        "accepts_fdis91": counts.accepts_fdis91,
                        "total": counts.total,
                    }
                    for group, counts in groups.items()
                },
            }
            for snapshot, groups in series
        ]
    }


_TITLE = "CareCommunication (FDIS91) adoption"
_Y_LABEL = "% of correspondence GLNs accepting FDIS91"
# One colour per group, distinguishable in print and for the common colour-vision deficiencies
# (Okabe-Ito); a ninth group starts over.
_LINE_COLOURS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
)


def _shares(series: AdoptionSeries) -> dict[str, list[float | None]]:
    """Per group, the FDIS91 share (0-100) on each snapshot; None where the group had no GLN."""
    groups = sorted({group for _, counts in series for group in counts})
    shares: dict[str, list[float | None]] = {}
    for group in groups:
        row: list[float | None] = []
        for _, counts in series:
            c = counts.get(group)
            row.append(100 * c.accepts_fdis91 / c.total if c and c.total else None)
        shares[group] = row
    return shares


def _adoption_png(series: AdoptionSeries, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError as exc:
        what = "the PNG plot (an .html plot needs nothing)"
        raise MissingExtra(what, "matplotlib", "plot") from exc
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.add_subplot()
    labels = [f"{s.id}\n{s.effective_date.isoformat()}" for s, _ in series]
    positions = list(range(len(series)))
    shares = _shares(series)
    for group, row in shares.items():
        values = [float("nan") if v is None else v for v in row]
        axes.plot(positions, values, marker="o", label=group)
    axes.set_xticks(positions, labels)
    axes.set_ylim(0, 100)
    axes.set_ylabel(_Y_LABEL)
    axes.set_xlabel("snapshot")
    axes.set_title(_TITLE)
    axes.grid(True, alpha=0.3)
    if shares:
        axes.legend(loc="best", fontsize="small")
    figure.savefig(path, format="png", dpi=110)


def adoption_svg(series: AdoptionSeries, width: int = 900) -> str:
    """The adoption lines as inline SVG (no plotting library): the FDIS91 share of each group
    on each snapshot, 0-100 %, a gap where a group had no GLN, a tooltip on every point."""
    left, right, top, bottom = 64, 200, 36, 56
    height = 380
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(series)

    def x(index: int) -> float:
        return left + (plot_w * (index + 0.5) / count if count else 0)

    def y(share: float) -> float:
        return top + plot_h * (1 - share / 100)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(_TITLE)}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left + plot_w / 2:.1f}" y="20" text-anchor="middle" font-size="15">'
        f"{_e(_TITLE)}</text>",
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{tick}</text>"
        )
    parts.append(
        f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{_e(_Y_LABEL)}</text>'
    )
    for index, (snapshot, _) in enumerate(series):
        parts.append(
            f'<text x="{x(index):.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
            f"{snapshot.id}</text>"
            f'<text x="{x(index):.1f}" y="{top + plot_h + 34}" text-anchor="middle">'
            f"{snapshot.effective_date.isoformat()}</text>"
        )
    for number, (group, row) in enumerate(_shares(series).items()):
        colour = _LINE_COLOURS[number % len(_LINE_COLOURS)]
        run: list[str] = []
        for index, share in enumerate([*row, None]):  # None at the end closes the last run
            if share is None:
                if len(run) > 1:
                    parts.append(
                        f'<polyline points="{" ".join(run)}" fill="none" '
                        f'stroke="{colour}" stroke-width="2"/>'
                    )
                run = []
                continue
            run.append(f"{x(index):.1f},{y(share):.1f}")
            snapshot = series[index][0]
            parts.append(
                f'<circle cx="{x(index):.1f}" cy="{y(share):.1f}" r="4" fill="{colour}">'
                f"<title>{_e(group)}, snapshot {snapshot.id}: {share:.1f} %</title></circle>"
            )
        legend_y = top + 8 + number * 18
        parts.append(
            f'<rect x="{left + plot_w + 16}" y="{legend_y - 9}" width="12" height="12" '
            f'fill="{colour}"/><text x="{left + plot_w + 34}" y="{legend_y + 2}">'
            f"{_e(group)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def adoption_plot(series: AdoptionSeries, path: Path) -> None:
    """Plot FDIS91 adoption over the snapshots: ``.png`` as PNG (needs the ``plot`` extra,
    matplotlib), ``.html`` as a page with an inline SVG chart and the counts (needs nothing).

    :raises MissingExtra: a PNG without matplotlib installed
    """
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise ValueError(f"cannot plot to {path.name!r}: use a .png or .html file")
    if suffix == ".png":
        _adoption_png(series, path)
        return
    svg = adoption_svg(series)
    rows = adoption_rows(series)
    head = "".join(f"<th>{_e(c)}</th>" for c in ADOPTION_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(row[c])}</td>" for c in ADOPTION_COLUMNS) + "</tr>"
        for row in rows
    )
    page = _page(
        "CareCommunication (FDIS91) adoption",
        "<h1>CareCommunication (FDIS91) adoption</h1>"
        f"{svg}<h2>Counts</h2>"
        f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
    )
    path.write_text(page, encoding="utf-8")
