"""Properties: any registry written as SOR files reads back the same; bad bytes fail cleanly."""

from __future__ import annotations

import io
import tempfile
import zipfile
from datetime import date
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soredi_sync.config import GuardSettings, SourceSettings, config_dir
from soredi_sync.domain.model import Capability, Gln, GlnMode, Registry, Unit, UnitKind
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.archive import open_member
from soredi_sync.parsing.load import load_registry
from soredi_sync.parsing.sor_csv import parse_glns
from soredi_sync.parsing.sor_xml import parse_sor_xml
from soredi_sync.reference_data import CsvColumns
from tests.support.reference import sample
from tests.support.sor_writer import csv_members, sor_xml, write_zip

SNAPSHOT = date(2025, 6, 1)
MESSAGE_TYPES = [
    ("FDIS91", None),
    ("XDIS91", "XD9134L"),
    ("DIS91", "D9134L"),
    ("FCTL", None),
    ("XCTL03", "XC0330Q"),
    ("XBIN01", "XB0131X"),
]
VANS = ["41000035001", "81000035007", "51000035003"]
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@cache
def columns() -> CsvColumns:
    return CsvColumns.load(config_dir() / "csv-columns.toml")


names = (
    st.text(
        alphabet=st.sampled_from("abcæøåÆØÅé XYZ0123&<>'\"-,."),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
digits = st.text(alphabet="0123456789", min_size=1, max_size=8)
optional_digits = st.none() | digits
optional_dates = st.none() | st.dates(date(1990, 1, 1), date(2035, 12, 31))


class _Builder:
    """Hands out unique SOR-IDs and GLNs while a registry is drawn."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.next_id = draw(st.integers(1, 10**12))
        self.next_gln = draw(st.integers(0, 10**8))
        self.units: list[Unit] = []
        self.glns: list[Gln] = []

    def new_gln(self, owner: str | None) -> Gln:
        self.next_gln += 1
        # Any 13 digits: a wrong check digit is valid data.
        code = f"579{self.next_gln:010d}"
        gln = Gln(
            gln=code,
            active=self.draw(st.booleans()),
            only_internal=self.draw(st.booleans()),
            system_supplier=self.draw(optional_digits),
            system_type=self.draw(optional_digits),
            vans=self.draw(st.none() | st.sampled_from(VANS)),
            region_code=self.draw(st.none() | st.sampled_from(["1081", "1084", "1085"])),
            edi_administrator=self.draw(optional_digits),
            owner_sor_id=owner,
            from_date=self.draw(optional_dates),
            to_date=self.draw(optional_dates),
        )
        self.glns.append(gln)
        return gln

    def add(self, kind: UnitKind, parent: Unit | None, depth: int = 0) -> None:
        self.next_id += 1
        sor_id = str(self.next_id)
        modes = [GlnMode.OWN, GlnMode.NONE]
        if kind is not UnitKind.INSTITUTION_OWNER:
            modes.append(GlnMode.INHERITED)
        mode = self.draw(st.sampled_from(modes))
        gln = self.new_gln(sor_id).gln if mode is GlnMode.OWN else None
        ou = kind is UnitKind.ORGANISATIONAL_UNIT
        ie = kind is UnitKind.INSTITUTION_OWNER
        unit = Unit(
            sor_id=sor_id,
            name=self.draw(names),
            kind=kind,
            parent_sor_id=parent.sor_id if parent else None,
            owner_sor_id=parent.owner_sor_id if parent else sor_id,
            type_code=self.draw(optional_digits),
            gln_mode=mode,
            gln=gln,
            from_date=self.draw(optional_dates),
            to_date=self.draw(optional_dates),
            shak=None if ie else self.draw(optional_digits),
            provider_number=self.draw(optional_digits) if ou else None,
            pharmacy_number=None if ie else self.draw(st.none() | st.just("362,1")),
            postal_code=self.draw(st.none() | st.sampled_from(["3500", "8000", "9220"])),
        )
        self.units.append(unit)
        if ie:
            children = [UnitKind.HEALTH_INSTITUTION] * self.draw(st.integers(0, 2))
        elif depth < 3:
            children = [UnitKind.ORGANISATIONAL_UNIT] * self.draw(st.integers(0, 2))
        else:
            children = []
        for child in children:
            self.add(child, unit, depth + 1)


@st.composite
def pulls(draw: st.DrawFn) -> tuple[Registry, list[Gln], list[tuple[Capability, date]]]:
    """A registry and what its CSV says differently (XML-owned GLNs) or adds (closed rows)."""
    builder = _Builder(draw)
    for _ in range(draw(st.integers(1, 3))):
        builder.add(UnitKind.INSTITUTION_OWNER, None)
    for _ in range(draw(st.integers(0, 3))):
        builder.new_gln(draw(st.none() | st.sampled_from([u.sor_id for u in builder.units])))
    xml_owned = {u.gln for u in builder.units if u.gln}
    capabilities: list[Capability] = []
    closed: list[tuple[Capability, date]] = []
    for gln in builder.glns:
        chosen = draw(st.lists(st.sampled_from(MESSAGE_TYPES), unique=True, max_size=4))
        capabilities += [Capability(gln.gln, code, version) for code, version in chosen]
        for code, version in draw(st.lists(st.sampled_from(MESSAGE_TYPES), max_size=2)):
            if (code, version) not in chosen:
                ended = draw(st.dates(date(2000, 1, 1), date(2025, 5, 31)))
                closed.append((Capability(gln.gln, code, version), ended))
    # The CSV's copy of an XML-owned GLN differs: the XML must win.
    csv_glns = [
        Gln(g.gln, vans="99999999999", active=not g.active) if g.gln in xml_owned else g
        for g in builder.glns
    ]
    registry = Registry.build(builder.units, builder.glns, capabilities, source_date=SNAPSHOT)
    return registry, csv_glns, closed


def _write_pull(
    directory: Path,
    registry: Registry,
    csv_glns: list[Gln],
    closed: list[tuple[Capability, date]],
) -> tuple[Path, Path]:
    xml = sor_xml(list(registry.units.values()), registry.glns.values(), snapshot_date=SNAPSHOT)
    members = csv_members(columns(), csv_glns, registry.iter_capabilities(), closed=closed)
    return (
        write_zip(directory / "sor.zip", {"Sor.xml": xml}),
        write_zip(directory / "Sor_complete.zip", members),
    )


class TestRoundTrip:
    @PROPERTY_SETTINGS
    @given(pulls())
    def test_any_registry_written_as_sor_files_reads_back_the_same(
        self, pull: tuple[Registry, list[Gln], list[tuple[Capability, date]]]
    ) -> None:
        registry, csv_glns, closed = pull
        with tempfile.TemporaryDirectory() as tmp:
            xml_zip, csv_zip = _write_pull(Path(tmp), registry, csv_glns, closed)
            loaded = load_registry(xml_zip, csv_zip, SourceSettings(), columns(), GuardSettings())
        assert loaded.source_date == SNAPSHOT
        assert dict(loaded.units) == dict(registry.units)
        assert dict(loaded.glns) == dict(registry.glns)
        assert {g: dict(c) for g, c in loaded.capabilities.items()} == {
            g: dict(c) for g, c in registry.capabilities.items()
        }


class TestGarbageIn:
    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=400))
    def test_arbitrary_bytes_as_xml_fail_only_with_invalid_source_data(self, data: bytes) -> None:
        try:
            parse_sor_xml(io.BytesIO(data))
        except InvalidSourceData:
            pass

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_a_damaged_real_record_fails_only_with_invalid_source_data(
        self, data: st.DataObject
    ) -> None:
        original = bytearray(sample("ONE_SYGEHUS"))
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(original) - 1))
            original[position] = data.draw(st.integers(0, 255))
        try:
            parse_sor_xml(io.BytesIO(bytes(original)))
        except InvalidSourceData:
            pass

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=400))
    def test_arbitrary_bytes_as_csv_fail_only_with_invalid_source_data(self, data: bytes) -> None:
        try:
            list(parse_glns(io.BytesIO(data), columns()))
        except InvalidSourceData:
            pass

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def test_a_damaged_zip_gives_the_original_bytes_or_invalid_source_data(
        self, data: st.DataObject
    ) -> None:
        content = sample("ONE_APOTEK")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sor.zip"
            write_zip(path, {"Sor.xml": content}, compression=zipfile.ZIP_DEFLATED)
            damaged = bytearray(path.read_bytes())
            for _ in range(data.draw(st.integers(1, 3))):
                position = data.draw(st.integers(0, len(damaged) - 1))
                damaged[position] ^= data.draw(st.integers(1, 255))
            path.write_bytes(bytes(damaged))
            try:
                with open_member(path, "Sor.xml", GuardSettings()) as stream:
                    read = stream.read()
            except InvalidSourceData:
                return
        assert read == content
