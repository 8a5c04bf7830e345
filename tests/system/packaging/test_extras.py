"""Optional parts say which extra to install; one version, from one place."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path

import pytest

import soredi_sync
from soredi_sync.cli import main
from soredi_sync.db.engine import make_engine
from soredi_sync.domain.audit import AdoptionCounts
from soredi_sync.errors import MissingExtra
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.reports.adoption import adoption_plot, adoption_svg
from tests.support.cli_runner import Cli


def _snapshot(snapshot_id: int, day: int) -> SnapshotInfo:
    return SnapshotInfo(
        id=snapshot_id,
        source="sor-filer",
        taken_at=datetime(2026, 11, day, 6, tzinfo=UTC),
        source_date=date(2026, 11, day),
        run_id=snapshot_id,
        content_hash="x",
        unit_count=1,
        gln_count=1,
        capability_count=1,
        change_count=0,
        baseline=snapshot_id == 1,
    )


SERIES = [
    (_snapshot(1, 2), {"region A": AdoptionCounts(1, 3, 0), "region B": AdoptionCounts(0, 0, 0)}),
    (_snapshot(2, 3), {"region A": AdoptionCounts(2, 1, 1), "region B": AdoptionCounts(1, 1, 0)}),
]


@pytest.fixture
def without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the [plot] extra were not installed: importing matplotlib fails."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


class TestPlotExtra:
    @pytest.mark.usefixtures("without_matplotlib")
    def test_a_png_plot_without_matplotlib_names_the_extra_to_install(self, tmp_path: Path) -> None:
        with pytest.raises(MissingExtra, match=r"pip install 'soredi-sync\[plot\]'") as caught:
            adoption_plot(SERIES, tmp_path / "adoption.png")
        assert "matplotlib" in str(caught.value)
        assert not (tmp_path / "adoption.png").exists()

    @pytest.mark.usefixtures("without_matplotlib")
    def test_the_html_plot_needs_no_plotting_library(self, tmp_path: Path) -> None:
        adoption_plot(SERIES, tmp_path / "adoption.html")
        page = (tmp_path / "adoption.html").read_text(encoding="utf-8")
        assert "<svg" in page and "<polyline" in page
        # a tooltip per point: region A's share on snapshot 2 is 3 of 4
        assert "region A, snapshot 2: 75.0 %" in page

    def test_a_group_without_glns_on_a_snapshot_leaves_a_gap(self) -> None:
        svg = adoption_svg(SERIES)
        assert "region B, snapshot 1" not in svg  # no GLN then: no point
        assert "region B, snapshot 2: 50.0 %" in svg
        assert svg.count("<polyline") == 1  # region B has one point only: no line


class TestPostgresExtra:
    @pytest.fixture
    def without_psycopg(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in [n for n in sys.modules if n == "psycopg" or n.startswith("psycopg.")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "psycopg", None)

    @pytest.mark.usefixtures("without_psycopg")
    def test_a_postgresql_url_without_the_driver_names_the_extra(self) -> None:
        with pytest.raises(MissingExtra, match=r"pip install 'soredi-sync\[postgres\]'"):
            make_engine("postgresql+psycopg://soredi@127.0.0.1:1/soredi")

    @pytest.mark.usefixtures("without_psycopg")
    def test_the_command_says_it_in_one_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        url = "postgresql://soredi@127.0.0.1:1/soredi"
        monkeypatch.setattr(sys, "argv", ["soredi-sync", "--database-url", url, "db", "current"])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 1
        err = capsys.readouterr().err
        assert err == (
            "error: a PostgreSQL database needs psycopg, which is not installed: "
            "pip install 'soredi-sync[postgres]'\n"
        )


class TestVersion:
    def test_version_prints_the_packages_version(self, cli: Cli) -> None:
        result = cli("--version")
        assert result.stdout == f"soredi-sync, version {soredi_sync.__version__}\n"

    def test_the_installed_metadata_carries_the_same_version(self) -> None:
        assert version("soredi-sync") == soredi_sync.__version__
