from __future__ import annotations

import pytest

from soredi_sync.config import Settings
from soredi_sync.db.engine import safe_database_url
from soredi_sync.reference_data import ReferenceData


class TestSettings:
    def test_defaults_come_from_the_toml_file(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("SOREDI_DATABASE_URL", raising=False)
        settings = Settings()
        assert settings.database_url.startswith("sqlite:///")
        assert settings.sources.base_url == "https://sor-filer.sundhedsdata.dk/"
        assert settings.guards.max_gln_removal_ratio == 0.05

    def test_environment_variables_override_top_level_and_nested_keys(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOREDI_DATABASE_URL", "postgresql://u:secret@db.example/soredi")
        monkeypatch.setenv("SOREDI_GUARDS__MAX_GLN_REMOVAL_RATIO", "0.2")
        monkeypatch.setenv("SOREDI_SOURCES__BASE_URL", "http://127.0.0.1:8765")
        settings = Settings()
        assert settings.database_url == "postgresql+psycopg://u:secret@db.example/soredi"
        assert settings.guards.max_gln_removal_ratio == 0.2
        assert settings.sources.url("sor.zip") == "http://127.0.0.1:8765/sor.zip"

    def test_the_printable_database_url_hides_the_password(self) -> None:
        settings = Settings(database_url="postgresql://u:secret@db.example/soredi")
        assert "secret" not in safe_database_url(settings.database_url)

    def test_csv_column_names_are_configuration(self) -> None:
        columns = ReferenceData.load(Settings().config_dir).csv_columns
        assert columns.delimiter == ";"
        assert {"gln", "edi_type_id"} <= set(columns.gln_edi_types)

    def test_an_out_of_range_guard_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOREDI_GUARDS__MAX_GLN_REMOVAL_RATIO", "1.5")
        with pytest.raises(ValueError, match="max_gln_removal_ratio"):
            Settings()
