"""The sandbox generator: layout, determinism, realism, and a manifest that tells the truth.

The files are read back here with lxml and csv directly (not with the project's parsers), and
every defect list in the manifest is recomputed from them independently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from soredi_sync.config import config_dir
from soredi_sync.domain.gln import has_valid_check_digit
from soredi_sync.domain.model import Gln, GlnMode, Unit, UnitKind, effective_gln
from soredi_sync.reference_data import CsvColumns
from soredi_sync.sandbox.generate import Manifest, expected_snapshot, generate
from soredi_sync.sandbox.snapshot import DEFECT_CODES

NS = "urn:oio:sundhedsstyrelsen:organisation:2.0.0"
DKCC2005 = "http://rep.oio.dk/ebxml/xml/schemas/dkcc/2005/03/15/"
REGION_CODES = {"1081", "1082", "1083", "1084", "1085"}
VANS = {"41000035001", "81000035007", "51000035003"}
TRUE_VALUES = {"true", "1", "ja"}


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


# --- an independent reader of the generated files ----------------------------------------------


@dataclass
class Parsed:
    snapshot_date: date
    units: dict[str, Unit]
    glns: dict[str, Gln]
    xml_glns: set[str]
    capabilities: dict[str, dict[str, str | None]]  # current rows only
    map_rows: list[dict[str, str]]
    edi_types: dict[str, dict[str, str]]
    xml_text: str


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _text(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    child = element.find(q(name))
    return child.text if child is not None and child.text is not None else None


def _gln_from_xml(entity: etree._Element, owner: str) -> Gln:
    status = entity.find(q("SorStatus"))
    return Gln(
        gln=_text(entity, "EanLocationCode") or "",
        active=_text(entity, "NonActiveIndicator") != "true",
        only_internal=_text(entity, "OnlyInternalIndicator") == "true",
        system_supplier=_text(entity, "SystemSupplierIdentifier"),
        system_type=_text(entity, "SystemTypeIdentifier"),
        vans=_text(entity, "CommunicationSupplierIdentifier"),
        region_code=_text(entity, "RegionCode"),
        edi_administrator=_text(entity, "EdiAdministrator"),
        owner_sor_id=owner,
        from_date=_date(_text(status, "FromDate")),
        to_date=_date(_text(status, "ToDate")),
    )


def _walk(
    entity: etree._Element,
    parent: str | None,
    owner: str | None,
    units: dict[str, Unit],
    glns: dict[str, Gln],
) -> None:
    record = entity[0]
    kind = {
        "InstitutionOwner": UnitKind.INSTITUTION_OWNER,
        "HealthInstitution": UnitKind.HEALTH_INSTITUTION,
        "OrganizationalUnit": UnitKind.ORGANISATIONAL_UNIT,
    }[etree.QName(record).localname]
    sor_id = _text(record, "SorIdentifier") or ""
    assert sor_id not in units, f"SOR-ID {sor_id} appears twice"
    owner = owner or sor_id
    if kind is UnitKind.INSTITUTION_OWNER:
        ean = record.find(q("EanLocationCodeEntity"))
        mode = GlnMode.OWN if ean is not None else GlnMode.NONE
    else:
        optional = record.find(q("OptionalEanLocationCode"))
        assert optional is not None
        ean = optional.find(q("EanLocationCodeEntity"))
        if ean is not None:
            mode = GlnMode.OWN
        else:
            inherited = _text(optional, "EntityInheritedIndicator")
            mode = GlnMode.INHERITED if inherited == "true" else GlnMode.NONE
    gln = None
    if ean is not None:
        gln_record = _gln_from_xml(ean, sor_id)
        assert gln_record.gln not in glns, f"GLN {gln_record.gln} owned twice"
        glns[gln_record.gln] = gln_record
        gln = gln_record.gln
    status = record.find(q("SorStatus"))
    postal = record.find(f".//{{{DKCC2005}}}PostCodeIdentifier")
    type_tag = {"institution_owner": "OwnerType", "health_institution": "InstitutionType"}.get(
        kind.value, "UnitType"
    )
    units[sor_id] = Unit(
        sor_id=sor_id,
        name=_text(record, "EntityName") or "",
        kind=kind,
        parent_sor_id=parent,
        owner_sor_id=owner,
        type_code=_text(record, type_tag),
        gln_mode=mode,
        gln=gln,
        from_date=_date(_text(status, "FromDate")),
        to_date=_date(_text(status, "ToDate")),
        shak=_text(record, "ShakIdentifier"),
        provider_number=_text(record, "ProviderIdentifier"),
        pharmacy_number=_text(record, "PharmacyIdentifier"),
        postal_code=postal.text if postal is not None else None,
    )
    for child in entity[1:]:
        _walk(child, sor_id, owner, units, glns)


def _csv(archive: zipfile.ZipFile, member: str, columns: CsvColumns) -> list[dict[str, str]]:
    text = archive.read(member).decode(columns.encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=columns.delimiter))


def read_day(
    day_dir: Path, columns: CsvColumns | None = None, files: Mapping[str, str] | None = None
) -> Parsed:
    columns = columns or CsvColumns.load(config_dir() / "csv-columns.toml")
    f = {
        "sor_xml": "sor.zip",
        "sor_csv": "Sor_complete.zip",
        "sor_xml_member": "Sor.xml",
        "edi_types_member": "EDITypes.csv",
        "gln_edi_types_member": "LocationsCodeEDITypeMap.csv",
        "glns_member": "LocationsCodes.csv",
        **(files or {}),
    }
    with zipfile.ZipFile(day_dir / f["sor_xml"]) as archive:
        raw = archive.read(f["sor_xml_member"])
    root = etree.fromstring(raw)
    snapshot_date = date.fromisoformat(_text(root, "SnapshotDate") or "")
    units: dict[str, Unit] = {}
    glns: dict[str, Gln] = {}
    for entity in root.iterfind(q("InstitutionOwnerEntity")):
        _walk(entity, None, None, units, glns)
    xml_glns = set(glns)
    e, m, g = columns.edi_types, columns.gln_edi_types, columns.glns
    with zipfile.ZipFile(day_dir / f["sor_csv"]) as archive:
        edi_rows = _csv(archive, f["edi_types_member"], columns)
        map_rows = _csv(archive, f["gln_edi_types_member"], columns)
        gln_rows = _csv(archive, f["glns_member"], columns)
    edi_types = {row[e["id"]]: row for row in edi_rows}
    for row in gln_rows:
        value = row[g["gln"]]
        if value in glns:  # the XML wins where both have a GLN
            continue
        glns[value] = Gln(
            gln=value,
            active=row[g["non_active"]] not in TRUE_VALUES,
            only_internal=row[g["only_internal"]] in TRUE_VALUES,
            system_supplier=row[g["system_supplier"]] or None,
            system_type=row[g["system_type"]] or None,
            vans=row[g["vans"]] or None,
            region_code=row[g["region_code"]] or None,
            edi_administrator=row[g["edi_administrator"]] or None,
            owner_sor_id=row[g["sor_id"]] or None,
            from_date=_date(row[g["from_date"]]),
            to_date=_date(row[g["to_date"]]),
        )
    capabilities: dict[str, dict[str, str | None]] = {}
    for row in map_rows:
        to_date = _date(row[m["to_date"]])
        if to_date is not None and to_date < snapshot_date:
            continue
        edi_type = edi_types[row[m["edi_type_id"]]]
        by_type = capabilities.setdefault(row[m["gln"]], {})
        assert edi_type[e["message_type"]] not in by_type, "two current rows for one type"
        by_type[edi_type[e["message_type"]]] = edi_type[e["version_code"]] or None
    return Parsed(
        snapshot_date, units, glns, xml_glns, capabilities, map_rows, edi_types, raw.decode()
    )


def defects_of(parsed: Parsed) -> dict[str, list[str]]:
    """The manifest's defect definitions, implemented again from the parsed files."""
    out: dict[str, set[str]] = {code: set() for code in DEFECT_CODES}
    for gln, types in parsed.capabilities.items():
        legacy = "DIS91" in types or "XDIS91" in types
        if "FDIS91" in types and legacy:
            out["FDIS91_WITH_LEGACY"].add(gln)
        if ("FDIS91" in types or "FDIS20" in types) and "FCTL" not in types:
            out["FHIR_WITHOUT_FCTL"].add(gln)
        if legacy and "BIN01" not in types and "XBIN01" not in types:
            out["LEGACY_WITHOUT_BIN"].add(gln)
        if types and not parsed.glns[gln].active:
            out["TYPES_ON_INACTIVE_GLN"].add(gln)
    for gln, record in parsed.glns.items():
        if not has_valid_check_digit(gln):
            out["BAD_CHECK_DIGIT"].add(gln)
        if not record.vans:
            out["GLN_WITHOUT_VANS"].add(gln)
    for sor_id in parsed.units:
        current: str | None = sor_id
        while current is not None and parsed.units[current].gln_mode is not GlnMode.OWN:
            current = parsed.units[current].parent_sor_id
        if current is None:
            out["UNIT_WITHOUT_GLN"].add(sor_id)
    users: dict[str, list[Unit]] = {}
    for sor_id, unit in parsed.units.items():
        found = effective_gln(parsed.units, sor_id).gln
        if found is not None:
            users.setdefault(found, []).append(unit)
    for gln, using in users.items():
        if all(u.to_date is not None and u.to_date < parsed.snapshot_date for u in using):
            out["ALL_UNITS_CLOSED"].add(gln)
    return {code: sorted(ids) for code, ids in out.items()}


@pytest.fixture(scope="module")
def tiny_days(tiny: tuple[Path, Manifest]) -> list[Parsed]:
    out, manifest = tiny
    return [read_day(out / entry.directory) for entry in manifest.snapshots]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- tests ---------------------------------------------------------------------------------------


class TestGenerate:
    def test_writes_a_manifest_and_one_folder_per_day(self, tiny: tuple[Path, Manifest]) -> None:
        out, manifest = tiny
        assert (out / "manifest.json").is_file()
        assert [e.directory for e in manifest.snapshots] == [f"day-{d:03d}" for d in range(4)]
        for entry in manifest.snapshots:
            assert (out / entry.directory / "sor.zip").is_file()
            assert (out / entry.directory / "Sor_complete.zip").is_file()
        assert Manifest.load(out).snapshots == manifest.snapshots

    def test_zips_hold_the_configured_members(self, tiny: tuple[Path, Manifest]) -> None:
        out, _ = tiny
        with zipfile.ZipFile(out / "day-000" / "sor.zip") as archive:
            assert archive.namelist() == ["Sor.xml"]
            assert archive.getinfo("Sor.xml").compress_type == zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(out / "day-000" / "Sor_complete.zip") as archive:
            assert sorted(archive.namelist()) == [
                "EDITypes.csv",
                "LocationsCodeEDITypeMap.csv",
                "LocationsCodes.csv",
            ]

    def test_same_seed_gives_identical_files(
        self, tiny: tuple[Path, Manifest], tmp_path: Path
    ) -> None:
        out, _ = tiny
        again = generate(tmp_path / "again", "tiny", seed=0, days=3)
        for entry in again.snapshots:
            for name in ("sor.zip", "Sor_complete.zip"):
                assert _sha(tmp_path / "again" / entry.directory / name) == _sha(
                    out / entry.directory / name
                )
        assert (tmp_path / "again" / "manifest.json").read_bytes() == (
            out / "manifest.json"
        ).read_bytes()

    def test_another_seed_gives_another_register(
        self, tiny: tuple[Path, Manifest], tmp_path: Path
    ) -> None:
        _, manifest = tiny
        other = generate(tmp_path / "other", "tiny", seed=1, days=0)
        assert other.day(0).sha256("sor.zip") != manifest.day(0).sha256("sor.zip")

    def test_a_day_does_not_depend_on_how_many_days_follow(
        self, tiny: tuple[Path, Manifest], tmp_path: Path
    ) -> None:
        _, manifest = tiny
        shorter = generate(tmp_path / "short", "tiny", seed=0, days=1)
        assert shorter.day(1).files == manifest.day(1).files

    def test_an_unknown_profile_or_negative_days_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="profile"):
            generate(tmp_path, "huge")
        with pytest.raises(ValueError, match="days"):
            generate(tmp_path, "tiny", days=-1)

    def test_csv_headers_delimiter_and_encoding_come_from_the_column_config(
        self, tmp_path: Path
    ) -> None:
        base = CsvColumns.load(config_dir() / "csv-columns.toml")
        renamed = CsvColumns(
            delimiter=",",
            encoding="utf-8",
            edi_types={k: f"et_{k}" for k in base.edi_types},
            gln_edi_types={k: f"map_{k}" for k in base.gln_edi_types},
            glns={k: f"gln_{k}" for k in base.glns},
        )
        generate(tmp_path, "tiny", days=0, columns=renamed)
        with zipfile.ZipFile(tmp_path / "day-000" / "Sor_complete.zip") as archive:
            raw = archive.read("LocationsCodes.csv")
            header = archive.read("EDITypes.csv").decode("utf-8").splitlines()[0]
        assert not raw.startswith(b"\xef\xbb\xbf")  # plain utf-8: no byte-order mark
        assert raw.decode("utf-8").splitlines()[0] == ",".join(f"gln_{k}" for k in base.glns)
        assert header == ",".join(f"et_{k}" for k in base.edi_types)
        parsed = read_day(tmp_path / "day-000", renamed)
        assert parsed.capabilities

    def test_columns_may_be_given_in_the_toml_files_shape(self, tmp_path: Path) -> None:
        base = CsvColumns.load(config_dir() / "csv-columns.toml")
        generate(
            tmp_path,
            "tiny",
            days=0,
            columns={
                "dialect": {"delimiter": "|", "encoding": "utf-8"},
                "edi_types": base.edi_types,
                "gln_edi_types": base.gln_edi_types,
                "glns": base.glns,
            },
        )
        with zipfile.ZipFile(tmp_path / "day-000" / "Sor_complete.zip") as archive:
            assert "|" in archive.read("EDITypes.csv").decode("utf-8").splitlines()[0]

    def test_a_column_config_without_the_gln_column_is_refused(self, tmp_path: Path) -> None:
        base = CsvColumns.load(config_dir() / "csv-columns.toml")
        broken = base.model_copy(
            update={"glns": {k: v for k, v in base.glns.items() if k != "gln"}}
        )
        with pytest.raises(ValueError, match="gln"):
            generate(tmp_path, "tiny", days=0, columns=broken)

    def test_default_csv_uses_the_shipped_config(self, tiny: tuple[Path, Manifest]) -> None:
        out, manifest = tiny
        columns = CsvColumns.load(config_dir() / "csv-columns.toml")
        with zipfile.ZipFile(out / "day-000" / "Sor_complete.zip") as archive:
            raw = archive.read("LocationsCodeEDITypeMap.csv")
        first = raw.decode(columns.encoding).splitlines()[0]
        assert first == columns.delimiter.join(columns.gln_edi_types.values())
        assert manifest.csv_dialect == {
            "delimiter": columns.delimiter,
            "encoding": columns.encoding,
        }

    def test_file_and_member_names_can_be_changed(self, tmp_path: Path) -> None:
        manifest = generate(
            tmp_path,
            "tiny",
            days=0,
            xml_zip="x.zip",
            csv_zip="c.zip",
            xml_member="tree.xml",
            edi_types_member="types.csv",
            gln_edi_types_member="map.csv",
            glns_member="glns.csv",
        )
        assert set(manifest.day(0).files) == {"x.zip", "c.zip"}
        parsed = read_day(tmp_path / "day-000", files=manifest.files)
        assert parsed.units and parsed.capabilities


class TestSorXml:
    def test_uses_the_v2_namespace_and_field_spellings(self, tiny_days: list[Parsed]) -> None:
        text = tiny_days[0].xml_text
        assert f'xmlns="{NS}"' in text
        for v2 in ("SystemSupplierIdentifier", "SystemTypeIdentifier"):
            assert f"<{v2}>" in text
        assert "<CommunicationSupplierIdentifier>" in text
        assert "<SystemSupplier>" not in text and "<CommunicationSupplier>" not in text

    def test_snapshot_date_moves_one_day_per_day(
        self, tiny: tuple[Path, Manifest], tiny_days: list[Parsed]
    ) -> None:
        _, manifest = tiny
        base = date.fromisoformat(manifest.base_date)
        assert [p.snapshot_date.toordinal() - base.toordinal() for p in tiny_days] == [0, 1, 2, 3]
        assert [e.snapshot_date for e in manifest.snapshots] == [
            p.snapshot_date.isoformat() for p in tiny_days
        ]

    def test_sor_ids_are_unique_snomed_style_numbers(self, tiny_days: list[Parsed]) -> None:
        for parsed in tiny_days:  # uniqueness itself is asserted while parsing
            for sor_id in parsed.units:
                assert sor_id.isdigit()
                assert sor_id[-10:-3] == "1000016"

    def test_every_inheriting_unit_has_a_parent(self, tiny_days: list[Parsed]) -> None:
        for parsed in tiny_days:
            for unit in parsed.units.values():
                if unit.gln_mode is GlnMode.INHERITED:
                    assert unit.parent_sor_id in parsed.units
                if unit.kind is UnitKind.INSTITUTION_OWNER:
                    assert unit.gln_mode is not GlnMode.INHERITED

    def test_glns_have_valid_check_digits_except_the_planted_bad_ones(
        self, tiny: tuple[Path, Manifest], tiny_days: list[Parsed]
    ) -> None:
        _, manifest = tiny
        planted = set(manifest.planted["BAD_CHECK_DIGIT"])
        assert len(planted) >= 2
        for parsed in tiny_days:
            for gln in parsed.glns:
                assert len(gln) == 13 and gln.isdigit() and gln.startswith("579000")
                assert has_valid_check_digit(gln) == (gln not in planted)

    def test_files_match_the_generators_own_model(
        self, tiny: tuple[Path, Manifest], tiny_days: list[Parsed]
    ) -> None:
        for day in (0, 3):
            expected = expected_snapshot("tiny", 0, day)
            parsed = tiny_days[day]
            assert parsed.units == dict(expected.units)
            assert parsed.glns == dict(expected.glns)
            assert parsed.capabilities == {
                gln: dict(types) for gln, types in expected.capabilities.items()
            }
            registry = expected.registry()
            assert registry.capability_count == expected.capability_count


class TestProfiles:
    def test_tiny_has_about_300_units_and_100_glns(self, tiny: tuple[Path, Manifest]) -> None:
        counts = tiny[1].day(0).counts
        assert 250 <= counts["units"] <= 400
        assert 80 <= counts["glns"] <= 130

    def test_tiny_is_fast(self, tiny: tuple[Path, Manifest], tmp_path: Path) -> None:
        manifest = generate(tmp_path, "tiny", days=0)
        assert manifest.generation_seconds is not None and manifest.generation_seconds < 1.0

    def test_small_has_about_3000_units_and_1000_glns(self, tmp_path: Path) -> None:
        manifest = generate(tmp_path, "small", days=0)
        counts = manifest.day(0).counts
        assert 2500 <= counts["units"] <= 4000
        assert 800 <= counts["glns"] <= 1300
        parsed = read_day(tmp_path / "day-000")
        assert len(parsed.units) == counts["units"]
        assert defects_of(parsed) == manifest.day(0).defects
        # all 98 municipalities, each an owner with its own GLN
        municipalities = [
            u
            for u in parsed.units.values()
            if u.kind is UnitKind.INSTITUTION_OWNER and u.name.endswith(" Kommune")
        ]
        assert len(municipalities) == 98
        assert all(u.gln_mode is GlnMode.OWN for u in municipalities)

    @pytest.mark.slow
    def test_national_reaches_the_documented_scale(self, tmp_path: Path) -> None:
        manifest = generate(tmp_path, "national", days=1)
        counts = manifest.day(0).counts
        assert counts["units"] >= 60_000
        assert counts["glns"] >= 20_000
        assert counts["capability_rows"] >= 400_000
        assert counts["capabilities"] >= 400_000
        assert manifest.generation_seconds is not None and manifest.generation_seconds < 60


class TestContent:
    def test_five_regions_own_the_hospitals(self, tiny_days: list[Parsed]) -> None:
        parsed = tiny_days[0]
        regions = {u.name for u in parsed.units.values() if u.name.startswith("Region ")}
        assert len(regions) == 5
        assert {g.region_code for g in parsed.glns.values()} <= REGION_CODES

    def test_three_vans_are_used(self, tiny_days: list[Parsed]) -> None:
        used = {g.vans for g in tiny_days[0].glns.values() if g.vans}
        assert used == VANS

    def test_real_test_addresses_are_present(self, tiny_days: list[Parsed]) -> None:
        parsed = tiny_days[-1]
        vena = parsed.glns["5790002759994"]
        assert vena.vans == "81000035007" and vena.active
        assert "FDIS91" in parsed.capabilities["5790002759994"]
        assert "DIS91" not in parsed.capabilities["5790002759994"]
        xmo = parsed.capabilities["5790000120314"]
        assert parsed.glns["5790000120314"].vans == "51000035003"
        assert {"DIS91", "XDIS91"} <= set(xmo) and "FDIS91" not in xmo
        aalborg = parsed.glns["5790000121786"]
        assert aalborg.vans == "41000035001"
        assert parsed.units[aalborg.owner_sor_id or ""].name == "Aalborg Kommune"
        assert all(has_valid_check_digit(g) for g in ("5790002759994", "5790000120314"))

    def test_glns_carry_between_5_and_60_types(self, tiny_days: list[Parsed]) -> None:
        parsed = tiny_days[0]
        sizes = [len(types) for types in parsed.capabilities.values()]
        assert min(sizes) >= 3  # a planted FHIR-only GLN may carry few
        assert max(sizes) <= 60
        assert sum(5 <= s for s in sizes) / len(sizes) > 0.95

    def test_every_map_row_names_a_known_type_and_gln(self, tiny_days: list[Parsed]) -> None:
        columns = CsvColumns.load(config_dir() / "csv-columns.toml")
        m = columns.gln_edi_types
        for parsed in tiny_days:
            for row in parsed.map_rows:
                assert row[m["edi_type_id"]] in parsed.edi_types
                assert row[m["gln"]] in parsed.glns

    def test_edi_types_list_each_version_once_and_fhir_without_version(
        self, tiny_days: list[Parsed]
    ) -> None:
        e = CsvColumns.load(config_dir() / "csv-columns.toml").edi_types
        rows = tiny_days[0].edi_types.values()
        pairs = [(r[e["message_type"]], r[e["version_code"]]) for r in rows]
        assert len(pairs) == len(set(pairs))
        versions = dict(pairs)
        assert versions["FDIS91"] == versions["FCTL"] == versions["FDIS20"] == ""
        assert ("XDIS91", "XD9134L") in pairs and ("DIS91", "D9134L") in pairs

    def test_hospitals_mix_owned_inherited_and_missing_glns(self, tiny_days: list[Parsed]) -> None:
        parsed = tiny_days[0]
        modes = {
            u.gln_mode
            for u in parsed.units.values()
            if u.kind is UnitKind.ORGANISATIONAL_UNIT and u.shak
        }
        assert modes == {GlnMode.OWN, GlnMode.INHERITED, GlnMode.NONE}

    def test_gp_practices_inherit_the_owners_gln_and_carry_a_provider_number(
        self, tiny_days: list[Parsed]
    ) -> None:
        parsed = tiny_days[0]
        practices = [u for u in parsed.units.values() if u.provider_number]
        assert practices
        for unit in practices:
            assert unit.gln_mode is GlnMode.INHERITED
            assert effective_gln(parsed.units, unit.sor_id).inherited_from == unit.owner_sor_id

    def test_some_glns_exist_only_in_the_csv(self, tiny_days: list[Parsed]) -> None:
        parsed = tiny_days[0]
        only_csv = set(parsed.glns) - parsed.xml_glns
        assert only_csv
        for gln in only_csv:
            assert not parsed.glns[gln].active and parsed.glns[gln].to_date is not None
            assert gln not in parsed.capabilities  # their rows have all ended


class TestAdoption:
    def test_fdis91_adoption_grows_every_day(self, tiny_days: list[Parsed]) -> None:
        adopters = [sum("FDIS91" in t for t in p.capabilities.values()) for p in tiny_days]
        assert all(b > a for a, b in zip(adopters, adopters[1:], strict=False)), adopters

    def test_some_adopters_keep_legacy_types_and_others_drop_them(
        self, tiny_days: list[Parsed]
    ) -> None:
        for parsed in tiny_days:
            adopters = [t for t in parsed.capabilities.values() if "FDIS91" in t]
            assert any("DIS91" in t or "XDIS91" in t for t in adopters)
            assert any("DIS91" not in t and "XDIS91" not in t for t in adopters)

    def test_dropped_types_stay_in_the_map_as_ended_rows(self, tiny_days: list[Parsed]) -> None:
        m = CsvColumns.load(config_dir() / "csv-columns.toml").gln_edi_types
        for parsed in tiny_days:
            ended = [r for r in parsed.map_rows if r[m["to_date"]]]
            assert ended
            assert all(date.fromisoformat(r[m["to_date"]]) < parsed.snapshot_date for r in ended)


class TestManifest:
    def test_defect_lists_match_the_files(
        self, tiny: tuple[Path, Manifest], tiny_days: list[Parsed]
    ) -> None:
        _, manifest = tiny
        for entry, parsed in zip(manifest.snapshots, tiny_days, strict=True):
            assert entry.defects == defects_of(parsed), f"day {entry.day}"

    def test_every_planted_defect_is_listed_every_day(self, tiny: tuple[Path, Manifest]) -> None:
        _, manifest = tiny
        assert set(manifest.planted) == set(DEFECT_CODES)
        for code, ids in manifest.planted.items():
            assert len(ids) >= 2, code
            for entry in manifest.snapshots:
                assert set(ids) <= set(entry.defects[code]), (code, entry.day)

    def test_defects_leave_no_room_for_interpretation(self, tiny_days: list[Parsed]) -> None:
        for parsed in tiny_days:
            defects = defects_of(parsed)
            for sor_id in defects["UNIT_WITHOUT_GLN"]:
                unit = parsed.units[sor_id]
                assert unit.to_date is None or unit.to_date >= parsed.snapshot_date
            for gln in defects["ALL_UNITS_CLOSED"]:
                assert parsed.glns[gln].active and parsed.capabilities.get(gln)
            for gln in defects["LEGACY_WITHOUT_BIN"]:
                assert "FDIS91" not in parsed.capabilities[gln]

    def test_counts_match_the_files(
        self, tiny: tuple[Path, Manifest], tiny_days: list[Parsed]
    ) -> None:
        _, manifest = tiny
        for entry, parsed in zip(manifest.snapshots, tiny_days, strict=True):
            counts = entry.counts
            assert counts["units"] == len(parsed.units)
            assert counts["glns"] == len(parsed.glns)
            assert counts["glns_in_xml"] == len(parsed.xml_glns)
            assert counts["capability_rows"] == len(parsed.map_rows)
            assert counts["capabilities"] == sum(len(t) for t in parsed.capabilities.values())
            assert counts["glns_with_fdis91"] == sum(
                "FDIS91" in t for t in parsed.capabilities.values()
            )

    def test_sha256_matches_the_files(self, tiny: tuple[Path, Manifest]) -> None:
        out, manifest = tiny
        for entry in manifest.snapshots:
            for name, info in entry.files.items():
                path = out / entry.directory / name
                assert info["sha256"] == _sha(path)
                assert info["size"] == path.stat().st_size

    def test_changes_from_previous_day_match_a_diff_of_the_files(
        self, tiny: tuple[Path, Manifest], tiny_days: list[Parsed]
    ) -> None:
        _, manifest = tiny
        assert manifest.day(0).changes_from_previous_day is None
        for day in range(1, len(tiny_days)):
            before, after = tiny_days[day - 1], tiny_days[day]
            changes = manifest.day(day).changes_from_previous_day
            assert changes is not None
            for key, old, new in (
                ("units", before.units, after.units),
                ("glns", before.glns, after.glns),
            ):
                ids = changes[key]["ids"]
                assert ids["added"] == sorted(set(new) - set(old))
                assert ids["removed"] == sorted(set(old) - set(new))
                assert ids["changed"] == sorted(k for k in new if k in old and new[k] != old[k])
                assert changes[key]["added"] == len(ids["added"])
            old_caps = {(g, t) for g, ts in before.capabilities.items() for t in ts}
            new_caps = {(g, t) for g, ts in after.capabilities.items() for t in ts}
            cap_ids = changes["capabilities"]["ids"]
            assert cap_ids["added"] == sorted(f"{g}:{t}" for g, t in new_caps - old_caps)
            assert cap_ids["removed"] == sorted(f"{g}:{t}" for g, t in old_caps - new_caps)

    def test_each_night_brings_realistic_churn(self, tiny: tuple[Path, Manifest]) -> None:
        _, manifest = tiny
        totals: dict[str, int] = {}
        for entry in manifest.snapshots[1:]:
            changes = entry.changes_from_previous_day or {}
            for key in ("units", "glns", "capabilities"):
                for kind in ("added", "removed", "changed"):
                    totals[f"{key}.{kind}"] = totals.get(f"{key}.{kind}", 0) + changes[key][kind]
        for needed in (
            "units.added",
            "units.changed",
            "units.removed",
            "glns.added",
            "glns.changed",
            "capabilities.added",
            "capabilities.removed",
        ):
            assert totals[needed] > 0, needed

    def test_manifest_is_plain_json_with_definitions(self, tiny: tuple[Path, Manifest]) -> None:
        out, manifest = tiny
        data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert data["profile"] == "tiny" and data["seed"] == 0 and data["days"] == 3
        assert set(data["definitions"]) == set(DEFECT_CODES)
        assert set(data["reference_glns"]) >= {"5790002759994", "5790000120314"}
        assert len(data["snapshots"]) == 4
