"""The environment file example names only settings the application knows, loads as it
stands, and carries no real secret."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from soredi_sync.config import Settings
from tests.support.deploy import SYSTEMD, env_file_names, is_known_setting

EXAMPLE = SYSTEMD / "soredi-sync.env.example"


def test_the_known_settings_check_accepts_real_names_and_refuses_misspelt_ones() -> None:
    assert is_known_setting("SOREDI_DATABASE_URL")
    assert is_known_setting("SOREDI_DAEMON__LEASE_SECONDS")
    assert is_known_setting("SOREDI_SOAP__DGWS__PASSWORD")  # inside an optional section
    assert is_known_setting("SOREDI_CONFIG_FILE")  # read by config.py itself
    assert not is_known_setting("SOREDI_DAEMON__LEASE_SECS")
    assert not is_known_setting("SOREDI_DAEMON_LEASE_SECONDS")
    assert not is_known_setting("DATABASE_URL")


def test_every_variable_in_the_example_is_a_setting_the_application_reads() -> None:
    names = env_file_names(EXAMPLE)
    assert {"SOREDI_DATABASE_URL", "SOREDI_CONFIG_DIR", "SOREDI_API__PORT"} <= set(names)
    unknown = sorted(name for name in names if not is_known_setting(name))
    assert unknown == []


def test_the_example_as_it_stands_gives_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, values in env_file_names(EXAMPLE).items():
        for value, commented in values:
            if not commented:
                monkeypatch.setenv(name, value)
    settings = Settings()
    assert make_url(settings.database_url).get_backend_name() == "postgresql"
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8080)


def test_every_commented_example_value_is_valid_too(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, values in env_file_names(EXAMPLE).items():
        for value, commented in values:
            if commented and name not in ("SOREDI_CONFIG_DIR", "SOREDI_CONFIG_FILE"):
                monkeypatch.setenv(name, value)
    # [soap.dgws] needs more than a password: that line is only for a configured section.
    monkeypatch.delenv("SOREDI_SOAP__DGWS__PASSWORD", raising=False)
    settings = Settings()
    assert settings.daemon.incremental_interval_seconds == 900
    assert settings.webhooks.allow_hosts == ["gateway.internal.example"]


def test_the_example_holds_placeholders_not_secrets() -> None:
    for name, values in env_file_names(EXAMPLE).items():
        for value, _commented in values:
            if name == "SOREDI_DATABASE_URL":
                assert make_url(value).password in (None, "CHANGE-ME")
            if "PASSWORD" in name or "SECRET" in name or "TOKEN" in name:
                assert value == "CHANGE-ME", name
