"""FDIS91 adoption over the snapshots: CSV, JSON, and a plot (PNG with matplotlib, or an HTML
page with an inline SVG chart that needs nothing)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from soredi_sync.errors import MissingExtra
from soredi_sync.reports.audit import snapshot_json
from soredi_sync.reports.html import escape, page
from soredi_sync.reports.svg import line_chart_svg
from soredi_sync.services.audit import AdoptionSeries

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
                "snapshot": snapshot_json(snapshot),
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


def fdis91_shares(series: AdoptionSeries) -> dict[str, list[float | None]]:
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
    shares = fdis91_shares(series)
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
    return line_chart_svg(
        [(str(s.id), s.effective_date.isoformat()) for s, _ in series],
        fdis91_shares(series),
        title=_TITLE,
        y_label=_Y_LABEL,
        point_title=lambda group, i, share: f"{group}, snapshot {series[i][0].id}: {share:.1f} %",
        width=width,
    )


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
    head = "".join(f"<th>{escape(c)}</th>" for c in ADOPTION_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(row[c])}</td>" for c in ADOPTION_COLUMNS) + "</tr>"
        for row in rows
    )
    document = page(
        "CareCommunication (FDIS91) adoption",
        "<h1>CareCommunication (FDIS91) adoption</h1>"
        f"{svg}<h2>Counts</h2>"
        f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
    )
    path.write_text(document, encoding="utf-8")
