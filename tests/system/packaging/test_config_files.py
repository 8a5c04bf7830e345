"""Where configuration is read from, ``config init`` and ``config show``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from soredi_sync.cli import cli
from soredi_sync.config import Settings, config_dir, default_config_files, packaged_dir
from soredi_sync.reference_data import ReferenceData
from tests.support.paths import REPO_ROOT

CHECKOUT = REPO_ROOT
SHIPPED = sorted(p.name for p in (CHECKOUT / "config").iterdir() if p.suffix in (".toml", ".tsv"))


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def show(*args: str) -> dict:
    code, out, err = invoke(*args, "config", "show", "--json")
    assert code == 0, err
    return json.loads(out)


class TestConfigDir:
    def test_in_a_checkout_the_package_defaults_are_the_top_level_folders(self) -> None:
        assert packaged_dir("config") == CHECKOUT / "config"
        assert packaged_dir("migrations") == CHECKOUT / "migrations"

    def test_without_soredi_config_dir_the_package_defaults_are_read(self) -> None:
        assert config_dir() == packaged_dir("config")
        assert Settings().config_dir == packaged_dir("config")

    def test_soredi_config_dir_points_at_an_operators_copy(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("SOREDI_CONFIG_DIR", str(tmp_path))
        assert config_dir() == tmp_path
        assert Settings().config_dir == tmp_path

    def test_the_shipped_files_are_every_toml_and_tsv_of_the_config_folder(self) -> None:
        assert [p.name for p in default_config_files()] == SHIPPED


class TestConfigInit:
    def test_it_writes_every_config_file_and_soredi_sync_reads_them(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        target = tmp_path / "etc" / "soredi-sync"
        code, out, _ = invoke("config", "init", str(target))
        assert code == 0
        assert sorted(p.name for p in target.iterdir()) == SHIPPED
        for name in SHIPPED:
            assert (target / name).read_bytes() == (CHECKOUT / "config" / name).read_bytes()
        assert f"SOREDI_CONFIG_DIR={target.resolve()}" in out

        monkeypatch.setenv("SOREDI_CONFIG_DIR", str(target))
        settings = Settings()
        assert settings.config_dir == target
        # every file loads, from the copy
        reference = ReferenceData.load(settings.config_dir)
        assert reference.csv_columns.delimiter == ";"
        assert reference.message_types.get("FDIS91") is not None
        assert reference.routing_policy.conversions
        assert reference.audit_context.region_names
        assert reference.category_names and reference.vans_names

    def test_an_edited_copy_changes_what_soredi_sync_reads(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        invoke("config", "init", str(tmp_path))
        toml = tmp_path / "soredi-sync.toml"
        toml.write_text(toml.read_text().replace("port = 8080", "port = 9090"))
        monkeypatch.setenv("SOREDI_CONFIG_DIR", str(tmp_path))
        assert Settings().api.port == 9090

    def test_it_refuses_to_overwrite_a_file_without_force(self, tmp_path: Path) -> None:
        (tmp_path / "routing.toml").write_text("# mine\n")
        code, _, err = invoke("config", "init", str(tmp_path))
        assert code == 1
        assert "routing.toml" in err and "--force" in err
        assert (tmp_path / "routing.toml").read_text() == "# mine\n"
        assert not (tmp_path / "soredi-sync.toml").exists()  # nothing written at all

    def test_with_force_it_overwrites(self, tmp_path: Path) -> None:
        (tmp_path / "routing.toml").write_text("# mine\n")
        code, _, _ = invoke("config", "init", "--force", str(tmp_path))
        assert code == 0
        shipped = (CHECKOUT / "config" / "routing.toml").read_text()
        assert (tmp_path / "routing.toml").read_text() == shipped


class TestConfigShowSources:
    def test_untouched_values_are_defaults_from_the_package(self) -> None:
        report = show()
        assert report["config_dir"] == {"path": str(packaged_dir("config")), "from": None}
        assert report["settings"]["api.port"] == {
            "value": 8080,
            "source": "default",
            "origin": str(packaged_dir("config") / "soredi-sync.toml"),
        }
        # not in the shipped file: the code's default
        assert report["settings"]["soap.timeout"] == {
            "value": 30.0,
            "source": "default",
            "origin": None,
        }
        assert all(f["exists"] for f in report["data_files"].values())

    def test_an_environment_variable_is_named_as_the_source(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOREDI_API__PORT", "9123")
        monkeypatch.setenv("SOREDI_DAEMON__LEASE_SECONDS", "30")
        settings = show()["settings"]
        assert settings["api.port"] == {
            "value": 9123,
            "source": "environment",
            "origin": "SOREDI_API__PORT",
        }
        assert settings["daemon.lease_seconds"]["origin"] == "SOREDI_DAEMON__LEASE_SECONDS"
        assert settings["api.host"]["source"] == "default"

    def test_a_section_given_whole_in_the_environment_is_named_for_each_key(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOREDI_HTTP", '{"connect_timeout": 3, "read_timeout": 4}')
        settings = show()["settings"]
        assert settings["http.connect_timeout"]["origin"] == "SOREDI_HTTP"
        assert settings["http.read_timeout"]["value"] == 4.0
        assert settings["http.user_agent"]["source"] == "default"

    def test_a_value_from_the_operators_file_says_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        (tmp_path / "soredi-sync.toml").write_text('[api]\nhost = "0.0.0.0"\n')
        monkeypatch.setenv("SOREDI_CONFIG_DIR", str(tmp_path))
        monkeypatch.setenv("SOREDI_API__PORT", "9000")
        report = show()
        assert report["config_dir"] == {"path": str(tmp_path), "from": "SOREDI_CONFIG_DIR"}
        settings = report["settings"]
        assert settings["api.host"] == {
            "value": "0.0.0.0",
            "source": "file",
            "origin": str(tmp_path / "soredi-sync.toml"),
        }
        assert settings["api.port"]["source"] == "environment"  # the environment wins
        # a copy without the other files: show says which are missing
        assert not any(f["exists"] for f in report["data_files"].values())

    def test_soredi_config_file_names_another_settings_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        toml = tmp_path / "site.toml"
        toml.write_text("[retry]\nattempts = 7\n")
        monkeypatch.setenv("SOREDI_CONFIG_FILE", str(toml))
        report = show()
        assert report["config_file"] == {"path": str(toml), "exists": True}
        assert report["settings"]["retry.attempts"]["source"] == "file"
        assert report["settings"]["api.port"]["source"] == "default"  # not in site.toml

    def test_the_database_url_option_is_the_command_line(self) -> None:
        settings = show("--database-url", "sqlite:///elsewhere.db")["settings"]
        assert settings["database_url"] == {
            "value": "sqlite:///elsewhere.db",
            "source": "command line",
            "origin": None,
        }

    def test_the_text_form_lists_each_setting_with_its_source(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOREDI_API__PORT", "9123")
        code, out, _ = invoke("config", "show")
        assert code == 0
        assert f"config dir:    {packaged_dir('config')} (the package's defaults)" in out
        lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[4:]}
        assert lines["api.port"] == ["9123", "environment", "SOREDI_API__PORT"]
        assert lines["api.host"] == ['"127.0.0.1"', "default"]

    def test_an_invalid_value_is_one_error_line(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOREDI_API__PORT", "eighty")
        code, _, err = invoke("config", "show")
        assert code == 1
        assert err.startswith("error: invalid configuration:") and "api.port" in err


SECRETS = ("db-pass-1", "sts-pass-2", "hook-pass-3", "whsec_secret4", "url-token-5")


class TestConfigShowMasksSecrets:
    @pytest.fixture
    def secrets_everywhere(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOREDI_DATABASE_URL", "postgresql://soredi:db-pass-1@db.example/soredi")
        monkeypatch.setenv(
            "SOREDI_SOAP__DGWS",
            json.dumps(
                {
                    "sts_url": "https://sts.example/sts",
                    "certificate": "/etc/soredi-sync/foces.p12",
                    "password": "sts-pass-2",
                    "care_provider_cvr": "12345678",
                    "care_provider_name": "Region",
                }
            ),
        )
        monkeypatch.setenv(
            "SOREDI_WEBHOOKS__SUBSCRIPTIONS",
            json.dumps(
                [
                    {
                        "name": "north",
                        "url": "https://gw:hook-pass-3@gateway.example/hook",
                        "secret": "whsec_secret4",
                    }
                ]
            ),
        )
        monkeypatch.setenv("SOREDI_SOURCES__BASE_URL", "https://mirror.example/?token=url-token-5")

    @pytest.mark.usefixtures("secrets_everywhere")
    @pytest.mark.parametrize("form", [["--json"], []], ids=["json", "text"])
    def test_no_secret_appears_in_the_output(self, form: list[str]) -> None:
        code, out, _ = invoke("config", "show", *form)
        assert code == 0
        assert not [secret for secret in SECRETS if secret in out]

    @pytest.mark.usefixtures("secrets_everywhere")
    def test_what_is_not_secret_stays_readable(self) -> None:
        settings = show()["settings"]
        assert (
            settings["database_url"]["value"] == "postgresql+psycopg://soredi:***@db.example/soredi"
        )
        assert settings["soap.dgws.password"]["value"] == "**********"
        # the path to the key file is where to look, not the key
        assert settings["soap.dgws.certificate"]["value"] == "/etc/soredi-sync/foces.p12"
        [subscription] = settings["webhooks.subscriptions"]["value"]
        assert subscription["url"] == "https://gw:***@gateway.example/hook"
        assert subscription["secret"] == "**********"
        assert settings["api.token_cache_seconds"]["value"] == 30.0  # named "token", not one

    def test_a_key_given_inline_is_masked_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----"
        monkeypatch.setenv("SOREDI_HTTP__USER_AGENT", pem)
        assert show()["settings"]["http.user_agent"]["value"] == "***"


def test_the_shipped_settings_file_parses_and_holds_no_secret() -> None:
    data = tomllib.loads((CHECKOUT / "config" / "soredi-sync.toml").read_text())
    assert "password" not in json.dumps(data).lower()
