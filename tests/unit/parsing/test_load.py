from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from soredi_sync.config import GuardSettings, SourceSettings
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Capability, Gln, GlnMode, Registry, effective_gln
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.load import load_registry, load_registry_from_dir
from soredi_sync.reference_data import CsvColumns
from tests.support.reference import sample
from tests.support.sor_writer import csv_bytes, csv_members, gln_row, write_zip

APOTEK_GLN, PRAKSIS_GLN = "5790000173624", "5790000141227"
CLOSED_GLN = "5790000120314"  # only in LocationsCodes.csv
KM_XDIS91 = Capability(APOTEK_GLN, "XDIS91", "XD9134L")


def national_xml(*names: str, replace: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The real sample records as one Sor.xml: their InstitutionOwnerEntity blocks in one tree.

    The first sample gives the prolog, so it must declare every prefix (ONE_SYGEHUS does).
    """
    first = sample(names[0]).decode("utf-8-sig")
    head = first[: first.index("<InstitutionOwnerEntity>")]
    blocks = [
        re.search(r"<InstitutionOwnerEntity>.*</InstitutionOwnerEntity>", sample(n).decode(), re.S)
        for n in names
    ]
    text = head + "".join(b.group(0) for b in blocks if b) + "</SorTree>"
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


class Pull:
    """A pull's two zips, written from parts that each test can change."""

    def __init__(self, tmp_path: Path, columns: CsvColumns) -> None:
        self.dir = tmp_path
        self.columns = columns
        self.xml = national_xml("ONE_SYGEHUS", "ONE_APOTEK", "ONE_PRAKSIS")
        self.glns = [
            Gln(APOTEK_GLN, vans="81000035007", owner_sor_id="306011000016003"),  # XML wins
            Gln(PRAKSIS_GLN, owner_sor_id="8321000016007"),
            Gln(CLOSED_GLN, active=False, vans="51000035003", to_date=date(2009, 1, 1)),
        ]
        self.capabilities = [
            KM_XDIS91,
            Capability(APOTEK_GLN, "XCTL03", "XC0330Q"),
            Capability(PRAKSIS_GLN, "FDIS91", None),
            Capability(PRAKSIS_GLN, "FCTL", None),
            Capability(CLOSED_GLN, "XDIS91", "XD9134L"),
        ]
        self.closed = [(Capability(APOTEK_GLN, "DIS91", "D9134L"), date(2009, 12, 31))]
        self.members: dict[str, bytes] = {}

    def write(self) -> tuple[Path, Path]:
        members = csv_members(self.columns, self.glns, self.capabilities, closed=self.closed)
        members.update(self.members)
        return (
            write_zip(self.dir / "sor.zip", {"Sor.xml": self.xml}),
            write_zip(self.dir / "Sor_complete.zip", members),
        )

    def load(self, message_types: MessageTypeRegistry | None = None) -> Registry:
        xml_zip, csv_zip = self.write()
        return load_registry(
            xml_zip, csv_zip, SourceSettings(), self.columns, GuardSettings(), message_types
        )

    def problems(self) -> list[str]:
        with pytest.raises(InvalidSourceData) as caught:
            self.load()
        assert "refused" in str(caught.value)
        return caught.value.problems


@pytest.fixture
def pull(tmp_path: Path, columns: CsvColumns) -> Pull:
    return Pull(tmp_path, columns)


class TestLoadRegistry:
    def test_real_samples_and_csv_make_one_registry(self, pull: Pull) -> None:
        registry = pull.load()
        assert len(registry.units) == 10
        assert set(registry.glns) == {APOTEK_GLN, PRAKSIS_GLN, CLOSED_GLN}
        assert registry.source_date == date(2010, 1, 26)
        assert registry.message_types(APOTEK_GLN) == ["XCTL03", "XDIS91"]
        assert registry.capabilities[APOTEK_GLN]["XDIS91"] == KM_XDIS91
        assert registry.message_types(PRAKSIS_GLN) == ["FCTL", "FDIS91"]

    def test_xml_attributes_win_over_the_csv(self, pull: Pull) -> None:
        gln = pull.load().glns[APOTEK_GLN]
        assert gln.vans == "41000035001"
        assert gln.owner_sor_id == "306011000016003"
        assert gln.edi_administrator == "106"

    def test_csv_only_glns_are_added_with_their_capabilities(self, pull: Pull) -> None:
        registry = pull.load()
        assert registry.glns[CLOSED_GLN] == pull.glns[2]
        assert registry.message_types(CLOSED_GLN) == ["XDIS91"]

    def test_capabilities_closed_before_the_snapshot_are_left_out(self, pull: Pull) -> None:
        assert "DIS91" not in pull.load().message_types(APOTEK_GLN)

    def test_inheritance_resolves_in_the_loaded_registry(self, pull: Pull) -> None:
        registry = pull.load()
        assert registry.units_using(APOTEK_GLN) == [
            "306011000016003",
            "306021000016007",
            "306031000016009",
        ]
        assert effective_gln(registry.units, "347831000016005").gln is None

    def test_a_bad_check_digit_is_not_a_pull_error(self, pull: Pull) -> None:
        bad = "5790000173625"
        pull.xml = pull.xml.replace(APOTEK_GLN.encode(), bad.encode())
        pull.glns[0] = Gln(bad, owner_sor_id="306011000016003")
        pull.capabilities[:2] = [Capability(bad, "XDIS91", "XD9134L")]
        registry = pull.load()
        assert registry.units["306011000016003"].gln == bad
        assert registry.message_types(bad) == ["XDIS91"]

    def test_version_only_edi_types_are_resolved_with_the_message_types(
        self, pull: Pull, columns: CsvColumns, message_types: MessageTypeRegistry
    ) -> None:
        rows = [{"id": "5", "message_type": "", "version_code": "XD9134L"}]
        pull.members["EDITypes.csv"] = csv_bytes(columns, "edi_types", rows)
        map_rows = [{"gln": APOTEK_GLN, "edi_type_id": "5"}]
        pull.members["LocationsCodeEDITypeMap.csv"] = csv_bytes(columns, "gln_edi_types", map_rows)
        registry = pull.load(message_types)
        assert registry.capabilities == {APOTEK_GLN: {"XDIS91": KM_XDIS91}}


class TestPullValidation:
    def test_duplicate_sor_id_names_the_id(self, pull: Pull) -> None:
        pull.xml = national_xml(
            "ONE_SYGEHUS", "ONE_APOTEK", replace=(("347831000016005", "347821000016008"),)
        )
        [problem] = pull.problems()
        assert "SOR-ID 347821000016008 is used twice" in problem

    def test_gln_owned_by_two_units_names_the_gln_and_units(self, pull: Pull) -> None:
        # The pharmacy's health institution claims the owner's GLN as its own too.
        ean = re.search(rb"<EanLocationCodeEntity>.*?</EanLocationCodeEntity>", pull.xml, re.S)
        assert ean is not None
        pull.xml = pull.xml.replace(
            b"<EntityInheritedIndicator>true</EntityInheritedIndicator>", ean.group(0), 1
        )
        [problem] = pull.problems()
        assert problem == (
            f"GLN {APOTEK_GLN} is owned by 2 units: 306011000016003, 306021000016007"
        )

    def test_malformed_gln_names_it(self, pull: Pull) -> None:
        pull.glns.append(Gln("579000012031", owner_sor_id=None))
        assert pull.problems() == ["GLN '579000012031' is not 13 digits"]

    def test_capability_of_an_unknown_gln_names_the_gln(self, pull: Pull) -> None:
        pull.capabilities.append(Capability("5790002759994", "FDIS91", None))
        [problem] = pull.problems()
        assert "GLN '5790002759994' has 1 message type(s)" in problem

    def test_unknown_edi_type_names_the_id(self, pull: Pull, columns: CsvColumns) -> None:
        map_rows = [{"gln": APOTEK_GLN, "edi_type_id": "4711"}]
        pull.members["LocationsCodeEDITypeMap.csv"] = csv_bytes(columns, "gln_edi_types", map_rows)
        [problem] = pull.problems()
        assert "EDI type id '4711' is not in EDITypes.csv" in problem

    def test_every_problem_of_the_pull_is_listed_at_once(
        self, pull: Pull, columns: CsvColumns
    ) -> None:
        pull.xml = national_xml(
            "ONE_SYGEHUS", "ONE_APOTEK", replace=(("347831000016005", "347821000016008"),)
        )
        pull.capabilities.append(Capability("5790002759994", "FDIS91", None))
        pull.members["LocationsCodes.csv"] = csv_bytes(
            columns, "glns", [gln_row(g) for g in pull.glns] + [{"gln": "5790000120314x"}]
        )
        problems = pull.problems()
        assert len(problems) == 3
        assert any("347821000016008" in p for p in problems)
        assert any("5790002759994" in p for p in problems)
        assert any("5790000120314x" in p for p in problems)

    def test_a_file_without_units_is_refused(self, pull: Pull) -> None:
        pull.xml = (
            b'<SorTree xmlns="urn:oio:sundhedsstyrelsen:organisation:2.0.0">'
            b"<SnapshotDate>2025-06-01</SnapshotDate></SorTree>"
        )
        assert "Sor.xml has no units" in pull.problems()

    def test_a_broken_archive_stops_the_pull(self, pull: Pull) -> None:
        xml_zip, csv_zip = pull.write()
        csv_zip.write_bytes(csv_zip.read_bytes()[:100])
        with pytest.raises(InvalidSourceData, match="not a readable zip"):
            load_registry(xml_zip, csv_zip, SourceSettings(), pull.columns, GuardSettings())


class TestLoadRegistryFromDir:
    def test_reads_the_two_zips_by_their_configured_names(
        self, pull: Pull, columns: CsvColumns
    ) -> None:
        pull.write()
        registry = load_registry_from_dir(pull.dir, columns=columns)
        assert len(registry.units) == 10

    def test_default_columns_come_from_the_config_folder(self, pull: Pull) -> None:
        pull.write()
        assert len(load_registry_from_dir(pull.dir).glns) == 3

    def test_a_missing_zip_is_refused(self, pull: Pull) -> None:
        pull.write()
        (pull.dir / "Sor_complete.zip").unlink()
        with pytest.raises(InvalidSourceData, match="has no Sor_complete.zip"):
            load_registry_from_dir(pull.dir)

    def test_inheritance_modes_survive_the_round_trip(self, pull: Pull) -> None:
        pull.write()
        units = load_registry_from_dir(pull.dir).units
        assert units["306021000016007"].gln_mode is GlnMode.INHERITED
        assert units["347811000016004"].gln_mode is GlnMode.NONE
