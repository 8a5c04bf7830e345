"""The reference tables and routing policy of the config folder, read once per App."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from soredi_sync.bootstrap import bootstrap
from soredi_sync.config import Settings, config_dir
from soredi_sync.domain.audit import OwnerKind
from soredi_sync.errors import ReferenceDataError
from soredi_sync.reference_data import ReferenceData, load_routing_policy


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped config folder, to break."""
    for path in config_dir().iterdir():
        if path.is_file():
            shutil.copyfile(path, tmp_path / path.name)
    return tmp_path


class TestTheShippedFolder:
    def test_every_table_loads(self) -> None:
        reference = ReferenceData.load(config_dir())
        assert reference.csv_columns.names("glns", "gln") == ("LocationCode", "EanLocationCode")
        assert reference.message_types.get("FDIS91").business_message == "correspondence"
        assert reference.vans_names["41000035001"] == "KMD"
        assert reference.audit_context.region_names["1081"] == "Region Nordjylland"
        assert reference.audit_context.message_types is reference.message_types
        assert OwnerKind.REGION in reference.audit_context.owner_kinds.values()
        assert reference.audit_context.certified_system_types
        assert reference.category_names["assistive-devices"] == "Hjælpemidler"
        assert reference.routing_policy == load_routing_policy(config_dir() / "routing.toml")

    def test_bootstrap_reads_it_once_for_the_app(self) -> None:
        with bootstrap(Settings(database_url="sqlite://")) as app:
            assert app.sync_config().message_types is app.reference.message_types
            assert app.sync_config().columns is app.reference.csv_columns


class TestAnOlderConfigFolder:
    def test_a_folder_made_before_the_ehmi_table_uses_the_shipped_one_and_says_so(
        self, folder: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        (folder / "ehmi-message-definitions.tsv").unlink()
        loaded = ReferenceData.load(folder)
        shipped = ReferenceData.load(config_dir())
        assert loaded.directory_context.ehmi_uris == shipped.directory_context.ehmi_uris
        assert "ehmi-message-definitions.tsv is not in the config folder" in caplog.text


class TestABrokenFileIsNamed:
    def test_a_missing_file(self, folder: Path) -> None:
        (folder / "vans.tsv").unlink()
        with pytest.raises(ReferenceDataError, match=r"vans\.tsv: no such file"):
            ReferenceData.load(folder)

    def test_a_bad_row_names_its_line_and_column(self, folder: Path) -> None:
        (folder / "owner-types.tsv").write_text("# owners\ncode\tkind\n1\tregion\n2\tplanet\n")
        with pytest.raises(ReferenceDataError, match=r"owner-types\.tsv: line 4: kind: "):
            ReferenceData.load(folder)

    def test_a_missing_column(self, folder: Path) -> None:
        (folder / "message-types.tsv").write_text("code\tsyntax\nFDIS91\tfhir\n")
        with pytest.raises(ReferenceDataError, match="message-types.tsv: no column 'business"):
            ReferenceData.load(folder)

    def test_a_routing_policy_error_keeps_its_message(self, folder: Path) -> None:
        (folder / "routing.toml").write_text('[limits]\non_long_text = "ignore"\n')
        with pytest.raises(ReferenceDataError) as raised:
            ReferenceData.load(folder)
        assert str(raised.value) == (
            f"{folder / 'routing.toml'}: [limits] on_long_text must be 'warn' or 'reject', "
            "not 'ignore'"
        )

    def test_a_wrong_type_says_where(self, folder: Path) -> None:
        (folder / "routing.toml").write_text('[limits]\nmax_attachments = "ten"\n')
        with pytest.raises(ReferenceDataError, match=r"routing\.toml: limits\.max_attachments: "):
            ReferenceData.load(folder)

    def test_bad_toml(self, folder: Path) -> None:
        (folder / "csv-columns.toml").write_text("[glns\n")
        with pytest.raises(ReferenceDataError, match=r"csv-columns\.toml: "):
            ReferenceData.load(folder)

    def test_bootstrap_refuses_a_broken_folder(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (folder / "regions.tsv").write_text("code\n1081\n")
        monkeypatch.setenv("SOREDI_CONFIG_DIR", str(folder))
        with pytest.raises(ReferenceDataError, match=r"regions\.tsv: line 2: name: "):
            bootstrap(Settings(database_url="sqlite://"))
