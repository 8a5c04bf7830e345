"""The audit report as one self-contained HTML page: summary, an SVG bar chart per rule,
sortable tables of the findings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from soredi_sync.domain.audit import RULES, Finding
from soredi_sync.reports.audit import (
    FINDING_COLUMNS,
    FINDING_HEADINGS,
    finding_rows,
    rule_title,
    snapshot_label,
)
from soredi_sync.reports.html import escape, page
from soredi_sync.services.audit import AuditReport

_BAR_COLOURS = {"error": "#c62828", "warning": "#ef8f00", "info": "#3f51b5"}


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
            f"{escape(label)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{length}" height="{bar_height}" '
            f'fill="{escape(colour)}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{label_width + length + 4}" y="{y + bar_height - 5}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _findings_table(report: AuditReport, findings: list[Finding]) -> str:
    if not findings:
        return "<p>None.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in FINDING_HEADINGS)
    body = []
    for row in finding_rows(report, findings):
        cells = "".join(
            f'<td class="{escape(row["severity"])}">{escape(row[c])}</td>'
            if c == "severity"
            else f"<td>{escape(row[c])}</td>"
            for c in FINDING_COLUMNS
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def audit_html(report: AuditReport) -> str:
    """The HTML report as one string (see :func:`to_html`)."""
    title = f"SOR-EDI audit, {snapshot_label(report.snapshot)}"
    facts = [
        ("Snapshot", f"{report.snapshot.id} (taken {report.snapshot.taken_at:%Y-%m-%d %H:%M})"),
        ("Effective date", report.on.isoformat()),
        ("Scope", report.scope.describe()),
        ("Findings", str(len(report.findings))),
        ("By severity", ", ".join(f"{n} {s}" for s, n in report.severity_counts.items())),
    ]
    if report.since is not None:
        facts.append(("Compared with", snapshot_label(report.since)))
        facts.append(("New / resolved", f"{len(report.new or [])} / {len(report.resolved or [])}"))
    parts = [f"<h1>{escape(title)}</h1><dl>"]
    parts += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts]
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
            f'<td><a href="#rule-{escape(rule.code)}">{escape(rule.code)}</a></td>'
            f'<td class="{escape(rule.severity.value)}">{escape(rule.severity.value)}</td>'
            f'<td>{escape(rule.title)}</td><td class="num">{report.counts[rule.code]}</td>'
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
            f'<h2 id="rule-{escape(code)}">{escape(code)}: {escape(rule_title(code))} '
            f"({len(findings)})</h2>"
        )
        parts.append(_findings_table(report, findings))
    return page(title, "".join(parts))


def to_html(report: AuditReport, path: Path) -> None:
    """One self-contained HTML file: summary, SVG chart, sortable tables, no external assets."""
    path.write_text(audit_html(report), encoding="utf-8")
