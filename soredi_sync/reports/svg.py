"""Charts as inline SVG, drawn without a plotting library: shared by the HTML reports and the
web console, so both draw a series the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from soredi_sync.reports.html import escape

# One colour per line, distinguishable in print and for the common colour-vision deficiencies
# (Okabe-Ito); a ninth line starts over.
LINE_COLOURS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
)


def line_chart_svg(
    columns: Sequence[tuple[str, str]],
    lines: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str,
    point_title: Callable[[str, int, float], str],
    width: int = 900,
) -> str:
    """Percentages (0-100) over columns as inline SVG: a line per entry of ``lines`` (one value
    per column, a gap where it is None), a legend, a tooltip on every point.

    :param columns: the two label lines under each column (e.g. snapshot id and date)
    :param point_title: the tooltip of a point, from (line name, column index, value)
    """
    left, right, top, bottom = 64, 200, 36, 56
    height = 380
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(columns)

    def x(index: int) -> float:
        return left + (plot_w * (index + 0.5) / count if count else 0)

    def y(share: float) -> float:
        return top + plot_h * (1 - share / 100)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left + plot_w / 2:.1f}" y="20" text-anchor="middle" font-size="15">'
        f"{escape(title)}</text>",
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{tick}</text>"
        )
    parts.append(
        f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for index, (upper, lower) in enumerate(columns):
        parts.append(
            f'<text x="{x(index):.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
            f"{escape(upper)}</text>"
            f'<text x="{x(index):.1f}" y="{top + plot_h + 34}" text-anchor="middle">'
            f"{escape(lower)}</text>"
        )
    for number, (name, row) in enumerate(lines.items()):
        colour = LINE_COLOURS[number % len(LINE_COLOURS)]
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
            parts.append(
                f'<circle cx="{x(index):.1f}" cy="{y(share):.1f}" r="4" fill="{colour}">'
                f"<title>{escape(point_title(name, index, share))}</title></circle>"
            )
        legend_y = top + 8 + number * 18
        parts.append(
            f'<rect x="{left + plot_w + 16}" y="{legend_y - 9}" width="12" height="12" '
            f'fill="{colour}"/><text x="{left + plot_w + 34}" y="{legend_y + 2}">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
