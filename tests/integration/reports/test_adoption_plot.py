"""The adoption plot drawn by matplotlib, which asks the system for its fonts (``fc-list``, a
process) the first time it draws text on a machine: an integration test, not a unit test."""

from __future__ import annotations

from pathlib import Path

from soredi_sync.domain.audit import AdoptionCounts
from soredi_sync.reports.adoption import adoption_plot
from tests.support.factories import snapshot_info

SERIES = [
    (snapshot_info(1, 2), {"all": AdoptionCounts(fhir_only=1, legacy_only=3, both=0)}),
    (snapshot_info(2, 3), {"all": AdoptionCounts(fhir_only=2, legacy_only=1, both=1)}),
]


def test_the_plot_writes_a_png_or_an_html_page_with_inline_svg(tmp_path: Path) -> None:
    png, page = tmp_path / "a.png", tmp_path / "a.html"
    adoption_plot(SERIES, png)
    adoption_plot(SERIES, page)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "<?xml" not in text
