"""The CLI as an operator uses it (click's CliRunner), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from soredi_sync.sandbox.generate import Manifest
from tests.support.cli_runner import Cli


def _day(sandbox_dir: Path, day: int) -> str:
    return str(sandbox_dir / f"day-{day:03d}")


def _synced(cli: Cli, sandbox_dir: Path) -> None:
    cli("sync", "--from-dir", _day(sandbox_dir, 0))
    cli("sync", "--from-dir", _day(sandbox_dir, 1))


@pytest.mark.usefixtures("database_url")
class TestDbCommands:
    def test_current_reports_the_head_revision_after_upgrade(self, cli) -> None:
        cli("db", "upgrade")
        data = json.loads(cli("db", "current", "--json").output)
        assert data["up_to_date"] and data["current"] == data["head"]

    def test_check_confirms_models_and_migrations_agree(self, cli) -> None:
        assert "agree" in cli("db", "check").output


@pytest.mark.usefixtures("database_url")
class TestSyncCommand:
    def test_sync_reports_the_snapshot_and_then_the_changes(self, cli, sandbox_dir: Path) -> None:
        first = cli("sync", "--from-dir", _day(sandbox_dir, 0))
        assert "succeeded" in first.output and "snapshot 1" in first.output
        second = cli("sync", "--from-dir", _day(sandbox_dir, 1), "--json")
        data = json.loads(second.output)
        assert data["status"] == "succeeded"
        assert data["counts"]["changes"]["capability"]["added"] > 0

    def test_a_failed_sync_exits_non_zero_and_says_why(self, cli, tmp_path: Path) -> None:
        result = cli("sync", "--from-dir", str(tmp_path), expect=1)
        assert "failed" in result.output and "does not exist" in result.output

    def test_a_refused_sync_has_its_own_exit_code(
        self, cli, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cli("sync", "--from-dir", _day(sandbox_dir, 0))
        monkeypatch.setenv("SOREDI_GUARDS__MAX_CAPABILITY_REMOVAL_RATIO", "0")
        result = cli("sync", "--from-dir", _day(sandbox_dir, 1), expect=3)
        assert "refused" in result.output and "--accept-mass-change" in result.output
        cli("sync", "--from-dir", _day(sandbox_dir, 1), "--accept-mass-change")

    def test_a_failed_follow_up_is_reported_and_the_snapshot_stands(
        self, cli: Cli, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("summary exploded")

        monkeypatch.setattr("soredi_sync.services.after_sync.record_summary", broken)
        result = cli("sync", "--from-dir", _day(sandbox_dir, 0), expect=1)
        assert "run 1: succeeded" in result.output
        assert "error: the audit summary after run 1 failed: summary exploded" in result.output
        assert json.loads(cli("status", "--json").output)["current"]["id"] == 1

    @pytest.mark.parametrize(
        ("make", "what"),
        [
            (lambda path: path.mkdir(), "is a directory, not a regular file"),
            (
                lambda path: path.symlink_to("/dev/zero"),
                "is a character device (through a symbolic link to /dev/zero), not a regular file",
            ),
            (lambda path: os.mkfifo(path), "is a FIFO (named pipe), not a regular file"),
        ],
        ids=["directory", "link-to-dev-zero", "fifo"],
    )
    def test_from_dir_names_what_stands_where_a_file_should_be(
        self, cli, sandbox_dir: Path, tmp_path: Path, make, what: str
    ) -> None:
        source = tmp_path / "files"
        shutil.copytree(sandbox_dir / "day-000", source)
        (source / "sor.zip").unlink()
        make(source / "sor.zip")
        result = cli("sync", "--from-dir", str(source), expect=1)
        assert f"run 1: failed: {source}/sor.zip {what}" in result.output

    def test_base_url_and_from_dir_together_are_a_usage_error(self, cli, tmp_path: Path) -> None:
        cli("sync", "--from-dir", str(tmp_path), "--base-url", "http://127.0.0.1:1/", expect=2)


@pytest.mark.usefixtures("database_url")
class TestReadCommands:
    def test_status_lists_runs_and_the_current_snapshot(self, cli, sandbox_dir: Path) -> None:
        _synced(cli, sandbox_dir)
        data = json.loads(cli("status", "--json").output)
        assert data["current"]["id"] == 2
        assert [r["status"] for r in data["runs"]] == ["succeeded", "succeeded"]
        assert data["data_age_seconds"] >= 0
        assert "Current snapshot 2" in cli("status").output

    def test_show_gln_now_and_on_the_previous_day(
        self, cli, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _synced(cli, sandbox_dir)
        gln = manifest.day(1).changes_from_previous_day["glns"]["ids"]["changed"][0]
        now = json.loads(cli("show", "gln", gln, "--json").output)
        then = json.loads(
            cli("show", "gln", gln, "--at", manifest.day(0).snapshot_date, "--json").output
        )
        assert now["snapshot"]["id"] == 2 and then["snapshot"]["id"] == 1
        assert now["gln"] != then["gln"]
        assert now["owners"], "a GLN in the XML has an owning unit"
        assert f"GLN {gln}" in cli("show", "gln", gln).output

    def test_show_unit_gives_the_effective_gln_and_its_inheritance_path(
        self, cli, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _synced(cli, sandbox_dir)
        vena = next(g for g, info in manifest.reference_glns.items() if "VENA" in info["label"])
        gln_view = json.loads(cli("show", "gln", vena, "--json").output)
        inheritor = gln_view["inheritors"][0]["sor_id"]
        unit = json.loads(cli("show", "unit", inheritor, "--json").output)
        assert unit["effective"]["gln"] == vena
        assert unit["effective"]["path"][0] == inheritor
        assert unit["effective"]["path"][-1] == gln_view["owners"][0]["sor_id"]
        assert "inherited from" in cli("show", "unit", inheritor).output

    def test_history_lists_every_version_of_a_gln(
        self, cli, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _synced(cli, sandbox_dir)
        gln = manifest.day(1).changes_from_previous_day["glns"]["ids"]["changed"][0]
        data = json.loads(cli("history", "gln", gln, "--json").output)
        assert [(v["valid_from"], v["valid_to"]) for v in data["versions"]] == [(1, 2), (2, None)]

    def test_changes_pages_through_the_feed_with_the_cursor(self, cli, sandbox_dir: Path) -> None:
        _synced(cli, sandbox_dir)
        first = json.loads(cli("changes", "--since", "0", "--limit", "5", "--json").output)
        assert len(first["changes"]) == 5
        rest = json.loads(
            cli(
                "changes", "--since", str(first["next_cursor"]), "--limit", "100000", "--json"
            ).output
        )
        cursors = [c["cursor"] for c in first["changes"] + rest["changes"]]
        assert cursors == list(range(1, len(cursors) + 1))

    def test_unknown_records_exit_with_not_found(self, cli, sandbox_dir: Path) -> None:
        _synced(cli, sandbox_dir)
        assert "no GLN" in cli("show", "gln", "5790000000000", expect=4).output
        cli("show", "unit", "1", expect=4)
        cli("history", "gln", "5790000000000", expect=4)

    def test_reads_before_any_sync_say_what_to_do(self, cli) -> None:
        cli("db", "upgrade")
        assert "soredi-sync sync" in cli("show", "gln", "5790000173624", expect=4).output


class TestUnmigratedDatabase:
    def test_reads_on_an_unmigrated_database_ask_for_db_upgrade(
        self, cli: Cli, tmp_path: Path
    ) -> None:
        result = cli.on(f"sqlite:///{tmp_path}/empty.db")("status", expect=5)
        assert "db upgrade" in result.output


class TestBrokenConfigFolder:
    def test_a_broken_reference_file_ends_a_command_with_one_line_naming_it(
        self, cli: Cli, tmp_path: Path
    ) -> None:
        import subprocess
        import sys

        folder = tmp_path / "config"
        cli("config", "init", str(folder))
        with (folder / "routing.toml").open("a") as routing:
            routing.write("unfinished = [\n")
        database = f"sqlite:///{tmp_path}/soredi.db"
        done = subprocess.run(
            [sys.executable, "-m", "soredi_sync", "--database-url", database, "status"],
            env={**os.environ, "SOREDI_CONFIG_DIR": str(folder)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: {folder / 'routing.toml'}: ")
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


class TestSandboxCommands:
    def test_generate_writes_the_days_and_a_manifest(self, cli: Cli, tmp_path: Path) -> None:
        result = cli(
            "sandbox", "generate", "--profile", "tiny", "--seed", "2", "--days", "1",
            "--out", str(tmp_path / "sb"),
        )  # fmt: skip
        assert "day 0:" in result.output and "units" in result.output
        assert Manifest.load(tmp_path / "sb").days == 1
        assert (tmp_path / "sb" / "day-001" / "sor.zip").is_file()

    def test_serve_answers_on_loopback_until_stopped(self, sandbox_dir: Path) -> None:
        import subprocess
        import sys

        import httpx

        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "soredi_sync",
                "sandbox",
                "serve",
                "--dir",
                str(sandbox_dir),
                "--port",
                "0",
                "--day",
                "1",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert "serving" in line, line
            base_url = line.split(" on ")[1].split()[0]
            response = httpx.get(base_url + "sor.zip", timeout=10)
            assert response.status_code == 200 and response.headers["ETag"]
            state = httpx.get(base_url + "_sandbox/state", timeout=10).json()
            assert state["day"] == 1
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()

    def test_serve_refuses_a_non_loopback_host(self, cli: Cli, sandbox_dir: Path) -> None:
        result = cli("sandbox", "serve", "--dir", str(sandbox_dir), "--host", "0.0.0.0", expect=2)
        assert "not a loopback address" in result.output
