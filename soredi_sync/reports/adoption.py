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
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(_TITLE)}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left + plot_w / 2:.1f}" y="20" text-anchor="middle" font-size="15">'
        f"{escape(_TITLE)}</text>",
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{tick}</text>"
        )
    parts.append(
        f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(_Y_LABEL)}</text>'
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
                f"<title>{escape(group)}, snapshot {snapshot.id}: {share:.1f} %</title></circle>"
            )
        legend_y = top + 8 + number * 18
        parts.append(
            f'<rect x="{left + plot_w + 16}" y="{legend_y - 9}" width="12" height="12" '
            f'fill="{colour}"/><text x="{left + plot_w + 34}" y="{legend_y + 2}">'
            f"{escape(group)}</text>"
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
