"""Structured logs: JSON lines, the run id bound during a sync, secrets never written."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from soredi_sync.bootstrap import bootstrap
from soredi_sync.observability.logging import (
    RedactSecrets,
    bind_run,
    bound_run_id,
    configure_logging,
    redact,
)
from soredi_sync.services.incremental import sync_incremental
from soredi_sync.services.sync import sync_source
from tests.support.app import make_settings
from tests.support.cli_runner import Cli
from tests.support.observability import json_lines

log = logging.getLogger("soredi_sync.tests.observability")

TOKEN = "sst_AbCdEfGh1234_secret-part"
PASSWORD = "hunter2-Correct-Horse"


class TestJsonFormat:
    def test_every_line_is_one_json_object_with_time_level_logger_and_message(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("json", "INFO")
        log.info("Stored %d units", 12)
        log.debug("not at INFO")
        (line,) = json_lines(capsys.readouterr().err)
        assert line["level"] == "INFO"
        assert line["logger"] == "soredi_sync.tests.observability"
        assert line["message"] == "Stored 12 units"
        stamp = datetime.fromisoformat(line["time"])
        assert stamp.utcoffset() == timedelta(0)
        assert "run_id" not in line

    def test_uvicorns_coloured_copy_of_a_message_is_left_out(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("json", "INFO")
        # uvicorn's loggers pass it as an extra; other tests may have configured those loggers
        # themselves, so the record is logged through a plain one here.
        log.info("Started server process [%d]", 7, extra={"color_message": "\x1b[36m%d\x1b[0m"})
        (line,) = json_lines(capsys.readouterr().err)
        assert line["message"] == "Started server process [7]"
        assert "color_message" not in line

    def test_an_exception_is_one_field_of_the_same_line(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("json", "INFO")
        try:
            raise RuntimeError("the feed broke")
        except RuntimeError:
            log.exception("Sync failed")
        (line,) = json_lines(capsys.readouterr().err)
        assert line["message"] == "Sync failed" and line["level"] == "ERROR"
        assert "RuntimeError: the feed broke" in line["exception"]

    def test_inside_bind_run_lines_carry_the_run_id_and_source(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("json", "INFO")
        with bind_run(12, "sor-filer"):
            assert bound_run_id() == 12
            log.info("inside")
        log.info("after")
        inside, after = json_lines(capsys.readouterr().err)
        assert inside["run_id"] == 12 and inside["source"] == "sor-filer"
        assert "run_id" not in after and "source" not in after
        assert bound_run_id() is None

    def test_extra_fields_are_kept(self, capsys: pytest.CaptureFixture[str]) -> None:
        configure_logging("json", "INFO")
        log.info("page stored", extra={"page": 3})
        (line,) = json_lines(capsys.readouterr().err)
        assert line["page"] == 3


class TestTextFormat:
    def test_a_bound_run_shows_as_a_tag_before_the_message(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("text", "INFO")
        with bind_run(7):
            log.warning("inside")
        log.warning("after")
        inside, after = capsys.readouterr().err.splitlines()
        assert inside.endswith("WARNING soredi_sync.tests.observability [run 7]: inside")
        assert after.endswith("WARNING soredi_sync.tests.observability: after")


class TestConfiguration:
    def test_configuring_twice_replaces_the_handler_instead_of_adding_one(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("text", "INFO")
        configure_logging("json", "INFO")
        log.info("once")
        assert len(json_lines(capsys.readouterr().err)) == 1

    def test_verbose_lowers_the_level_one_step_at_a_time(self) -> None:
        configure_logging("text", "WARNING", verbose=1)
        assert logging.getLogger().level == logging.INFO
        configure_logging("text", "WARNING", verbose=5)
        assert logging.getLogger().level == logging.DEBUG

    def test_soap_envelope_and_signature_loggers_stay_at_info_even_at_debug(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("json", "DEBUG")
        logging.getLogger("zeep.transports").debug("<soap:Envelope>ID card</soap:Envelope>")
        logging.getLogger("signxml").debug("signature")
        log.debug("ours")
        assert [line["logger"] for line in json_lines(capsys.readouterr().err)] == [log.name]

    def test_an_unknown_format_or_level_is_refused(self) -> None:
        with pytest.raises(ValueError, match="format"):
            configure_logging("yaml", "INFO")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="level"):
            configure_logging("text", "LOUD")


class TestRedaction:
    @pytest.mark.parametrize("fmt", ["text", "json"])
    def test_tokens_and_passwords_never_reach_the_output(
        self, fmt: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging(fmt, "INFO")
        with bind_run(3):
            log.warning("GET /v1/route?t=%s", TOKEN)
            log.warning("connecting to postgresql://soredi:%s@db/soredi", PASSWORD)
            log.warning("retrying with password=%s and Authorization: Bearer %s", PASSWORD, TOKEN)
            log.warning("webhook", extra={"secret": PASSWORD, "url": f"https://x/?token={TOKEN}"})
            try:
                raise ConnectionError(f"login failed for password={PASSWORD}")
            except ConnectionError:
                log.exception("with a traceback")
        err = capsys.readouterr().err
        assert TOKEN not in err and TOKEN[4:20] not in err
        assert PASSWORD not in err
        assert "sst_***" in err and "soredi:***@db" in err
        if fmt == "json":
            assert len(json_lines(err)) == 5

    def test_other_handlers_of_the_root_logger_get_the_redacting_filter(self) -> None:
        foreign = logging.StreamHandler()
        logging.getLogger().addHandler(foreign)
        configure_logging("text", "INFO")
        assert any(isinstance(f, RedactSecrets) for f in foreign.filters)

    def test_ordinary_words_about_tokens_are_left_alone(self) -> None:
        message = "Created API token 4 (gateway-1) with scopes ['route:read']"
        assert redact(message) == message


class TestDuringASync:
    def test_every_line_of_a_full_sync_carries_its_run_id(
        self, database_url: str, sandbox_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with bootstrap(make_settings(database_url)) as app:
            configure_logging("json", "INFO")
            outcome = sync_source(
                app.uow_factory,
                app.files_client(from_dir=sandbox_dir / "day-000"),
                app.sync_config(),
            )
        assert outcome.ok, outcome.error
        lines = [
            line
            for line in json_lines(capsys.readouterr().err)
            if line["logger"] == "soredi_sync.services.sync"
        ]
        assert any("started" in line["message"] for line in lines)
        assert any("stored snapshot" in line["message"] for line in lines)
        assert {line.get("run_id") for line in lines} == {outcome.run_id}
        assert {line.get("source") for line in lines} == {"sor-filer"}
        assert bound_run_id() is None

    def test_a_failed_incremental_sync_logs_its_failure_under_its_run_id(
        self, database_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with bootstrap(make_settings(database_url)) as app:
            configure_logging("json", "INFO")
            # No base snapshot: refused before the feed is asked for anything.
            outcome = sync_incremental(app.uow_factory, client=None)  # type: ignore[arg-type]
        assert not outcome.ok
        errors = [line for line in json_lines(capsys.readouterr().err) if line["level"] == "ERROR"]
        assert errors and all(line["run_id"] == outcome.run_id for line in errors)
        assert errors[0]["source"] == "skrs"


def _sync_day0(cli: Cli, sandbox_dir: Path, *options: str) -> Result:
    """``soredi-sync [OPTIONS] -v sync`` of the sandbox's day 0; it must succeed."""
    return cli(*options, "-v", "sync", "--from-dir", str(sandbox_dir / "day-000"))


@pytest.mark.usefixtures("database_url")
class TestCommandLine:
    def test_log_format_json_makes_the_cli_write_json_lines(
        self, cli: Cli, sandbox_dir: Path
    ) -> None:
        result = _sync_day0(cli, sandbox_dir, "--log-format", "json")
        lines = json_lines(result.stderr)
        assert lines, "sync logs at INFO with -v"
        started = next(line for line in lines if "started" in line["message"])
        assert started["logger"] == "soredi_sync.services.sync" and started["run_id"] >= 1

    def test_the_configured_format_applies_when_the_option_is_not_given(
        self, cli: Cli, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOREDI_LOGGING__FORMAT", "json")
        result = _sync_day0(cli, sandbox_dir)
        assert json_lines(result.stderr)

    def test_text_is_the_default_format(self, cli: Cli, sandbox_dir: Path) -> None:
        result = _sync_day0(cli, sandbox_dir)
        assert " INFO soredi_sync.services.sync [run " in result.stderr


class TestRedactionKeepsTheRecordsShape:
    def test_a_secret_in_an_argument_is_masked_in_place_and_the_arguments_keep_their_count(
        self,
    ) -> None:
        args = ("127.0.0.1:5000", "GET", f"/healthz?t={TOKEN}", "1.1", 200)
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
        )
        assert RedactSecrets().filter(record)
        assert isinstance(record.args, tuple) and len(record.args) == 5
        assert record.args[2] == "/healthz?t=sst_***"
        assert record.getMessage() == '127.0.0.1:5000 - "GET /healthz?t=sst_*** HTTP/1.1" 200'

    def test_a_secret_split_over_the_format_and_an_argument_is_still_masked(self) -> None:
        record = logging.LogRecord(
            "x", logging.INFO, __file__, 1, "login with password=%s", (PASSWORD,), None
        )
        assert RedactSecrets().filter(record)
        assert PASSWORD not in record.getMessage()
        assert record.getMessage() == "login with password=***"
