from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from soredi_sync.cli import cli
from soredi_sync.demo import run_demo


class TestDemo:
    def test_the_demo_syncs_two_days_offline_and_shows_what_changed(self, tmp_path: Path) -> None:
        out = io.StringIO()
        code = run_demo(tmp_path / "demo", profile="tiny", console=Console(file=out, width=120))
        text = out.getvalue()
        assert code == 0, text
        assert "day 0: run 1 succeeded" in text
        assert "day 0 again: run 2 unchanged" in text
        assert "day 1: run 3 succeeded" in text
        assert "took up FDIS91" in text
        assert text.count("GLN 579") == 2

    def test_running_the_demo_twice_starts_from_a_fresh_database(self, tmp_path: Path) -> None:
        for _ in range(2):
            out = io.StringIO()
            assert run_demo(tmp_path / "demo", profile="tiny", console=Console(file=out)) == 0
            assert "day 0: run 1 succeeded" in out.getvalue()

    def test_the_demo_command_exits_zero(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(
            cli, ["demo", "--dir", str(tmp_path / "d"), "--profile", "tiny"]
        )
        assert result.exit_code == 0, result.output
