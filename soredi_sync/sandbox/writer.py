"""Writes one day of the sandbox world as the sor-filer files: ``sor.zip`` and ``Sor_complete.zip``.

The XML is written as text, unit by unit, straight into the deflating zip stream, so the
national profile never holds a document tree (or the uncompressed file) in memory. Text values
are escaped here; every other value is a code or a date the generator made itself.

Zip members get a fixed timestamp (the snapshot's creation time) and fixed attributes, so the
same world state always gives byte-identical archives and therefore the same sha256/ETag.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import IO

from soredi_sync.domain.model import GlnMode, UnitKind
from soredi_sync.reference_data import CsvColumns
from soredi_sync.sandbox.mutable import MutableGln, MutableUnit
from soredi_sync.sandbox.world import World

logger = logging.getLogger(__name__)

NAMESPACE_V2 = "urn:oio:sundhedsstyrelsen:organisation:2.0.0"
_ROOT_OPEN = (
    '<SorTree xmlns:xkom-1="http://rep.oio.dk/xkom.dk/xml/schemas/2006/01/06/" '
    'xmlns:dkcc="http://rep.oio.dk/ebxml/xml/schemas/dkcc/2003/02/13/" '
    'xmlns:dkcc2005="http://rep.oio.dk/ebxml/xml/schemas/dkcc/2005/03/15/" '
    f'xmlns="{NAMESPACE_V2}">'
)
_EXTRACT_TIME = time(3, 15)  # sor-filer is rebuilt nightly between 01:00 and 04:30


@dataclass(frozen=True, slots=True)
class SourceFiles:
    """File and member names of one day's output (defaults: ``config/soredi-sync.toml``)."""

    xml_zip: str = "sor.zip"
    csv_zip: str = "Sor_complete.zip"
    xml_member: str = "Sor.xml"
    edi_types_member: str = "EDITypes.csv"
    gln_edi_types_member: str = "LocationsCodeEDITypeMap.csv"
    glns_member: str = "LocationsCodes.csv"


def _copenhagen() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Europe/Copenhagen")
    except Exception:  # no tz database on this machine: winter time is right for the base date
        return timezone(timedelta(hours=1))


def created_at(snapshot_date: date) -> datetime:
    """When the sandbox pretends the day's extract was built (local time, with offset)."""
    return datetime.combine(snapshot_date, _EXTRACT_TIME, tzinfo=_copenhagen())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _status(ind: str, from_date: date, to_date: date | None, updated: date) -> str:
    to_line = f"{ind}\t<ToDate>{to_date.isoformat()}</ToDate>\n" if to_date else ""
    return (
        f"{ind}<SorStatus>\n"
        f"{ind}\t<FromDate>{from_date.isoformat()}</FromDate>\n"
        f"{to_line}"
        f"{ind}\t<UpdatedAt>{updated.isoformat()}</UpdatedAt>\n"
        f"{ind}\t<FirstFromDate>{from_date.isoformat()}</FirstFromDate>\n"
        f"{ind}</SorStatus>\n"
    )


def _ean_entity(ind: str, record: MutableGln) -> str:
    # v2 spellings of the supplier/type/VANS fields ([assumed], see docs/sources.md).
    return (
        f"{ind}<EanLocationCodeEntity>\n"
        f"{ind}\t<EanLocationCode>{record.gln}</EanLocationCode>\n"
        f"{ind}\t<OnlyInternalIndicator>{_bool(record.only_internal)}</OnlyInternalIndicator>\n"
        f"{ind}\t<NonActiveIndicator>{_bool(record.non_active)}</NonActiveIndicator>\n"
        f"{ind}\t<SystemSupplierIdentifier>{record.system.supplier_code}"
        "</SystemSupplierIdentifier>\n"
        f"{ind}\t<SystemTypeIdentifier>{record.system.type_code}</SystemTypeIdentifier>\n"
        f"{ind}\t<CommunicationSupplierIdentifier>{record.vans or ''}"
        "</CommunicationSupplierIdentifier>\n"
        f"{ind}\t<RegionCode>{record.region_code}</RegionCode>\n"
        f"{ind}\t<EdiAdministrator>{record.edi_administrator}</EdiAdministrator>\n"
        + _status(ind + "\t", record.from_date, record.to_date, record.updated_at)
        + f"{ind}</EanLocationCodeEntity>\n"
    )


def _addresses(ind: str, unit: MutableUnit) -> str:
    return (
        f"{ind}<PostalAddressInformation>\n"
        f"{ind}\t<xkom-1:AddressPostal>\n"
        f"{ind}\t\t<dkcc2005:StreetName>{_escape(unit.street)}</dkcc2005:StreetName>\n"
        f"{ind}\t\t<dkcc:StreetBuildingIdentifier>{unit.number}"
        "</dkcc:StreetBuildingIdentifier>\n"
        f"{ind}\t\t<dkcc2005:PostCodeIdentifier>{unit.postal_code}"
        "</dkcc2005:PostCodeIdentifier>\n"
        f"{ind}\t\t<dkcc2005:DistrictName>{_escape(unit.town)}</dkcc2005:DistrictName>\n"
        f'{ind}\t\t<dkcc:CountryIdentificationCode scheme="iso3166-alpha2">DK'
        "</dkcc:CountryIdentificationCode>\n"
        f"{ind}\t</xkom-1:AddressPostal>\n"
        f"{ind}</PostalAddressInformation>\n"
        f"{ind}<VirtualAddressInformation>\n"
        f"{ind}\t<TelephoneNumberIdentifier>{unit.phone}</TelephoneNumberIdentifier>\n"
        f"{ind}</VirtualAddressInformation>\n"
    )


def _optional_ean(ind: str, unit: MutableUnit, glns: Mapping[str, MutableGln]) -> str:
    if unit.gln_mode is GlnMode.OWN and unit.gln is not None:
        inner = _ean_entity(ind + "\t", glns[unit.gln])
    else:
        flag = _bool(unit.gln_mode is GlnMode.INHERITED)
        inner = f"{ind}\t<EntityInheritedIndicator>{flag}</EntityInheritedIndicator>\n"
    return f"{ind}<OptionalEanLocationCode>\n{inner}{ind}</OptionalEanLocationCode>\n"


def _unit_xml(
    out: list[str], unit: MutableUnit, depth: int, glns: Mapping[str, MutableGln]
) -> None:
    ind = "\t" * depth
    i1 = ind + "\t"
    i2 = i1 + "\t"
    head = f"{i2}<SorIdentifier>{unit.sor_id}</SorIdentifier>\n"
    head += f"{i2}<EntityName>{_escape(unit.name)}</EntityName>\n"
    status = _status(i2, unit.from_date, unit.to_date, unit.updated_at)
    if unit.kind is UnitKind.INSTITUTION_OWNER:
        out.append(f"{ind}<InstitutionOwnerEntity>\n{i1}<InstitutionOwner>\n")
        out.append(head + f"{i2}<OwnerType>{unit.type_code}</OwnerType>\n")
        if unit.gln_mode is GlnMode.OWN and unit.gln is not None:
            out.append(_ean_entity(i2, glns[unit.gln]))
        out.append(_addresses(i2, unit) + status + f"{i1}</InstitutionOwner>\n")
        for child in unit.children:
            _unit_xml(out, child, depth + 1, glns)
        out.append(f"{ind}</InstitutionOwnerEntity>\n")
        return
    if unit.kind is UnitKind.HEALTH_INSTITUTION:
        entity, element, type_tag, relation = (
            "HealthInstitutionEntity",
            "HealthInstitution",
            "InstitutionType",
            "1",
        )
    else:
        entity, element, type_tag, relation = (
            "OrganizationalUnitEntity",
            "OrganizationalUnit",
            "UnitType",
            "2",
        )
    parts = [f"{ind}<{entity}>\n{i1}<{element}>\n", head]
    parts.append(f"{i2}<{type_tag}>{unit.type_code}</{type_tag}>\n")
    if unit.pharmacy:
        parts.append(f"{i2}<PharmacyIdentifier>{unit.pharmacy}</PharmacyIdentifier>\n")
    if unit.shak:
        parts.append(f"{i2}<ShakIdentifier>{unit.shak}</ShakIdentifier>\n")
    if unit.provider and unit.kind is UnitKind.ORGANISATIONAL_UNIT:
        parts.append(f"{i2}<ProviderIdentifier>{unit.provider}</ProviderIdentifier>\n")
    parts.append(_optional_ean(i2, unit, glns))
    parts.append(
        f"{i2}<GeographicalParent>\n"
        f"{i2}\t<GeographicalParentRelation>{relation}</GeographicalParentRelation>\n"
        f"{i2}</GeographicalParent>\n"
    )
    parts.append(_addresses(i2, unit) + status + f"{i1}</{element}>\n")
    out.append("".join(parts))
    for child in unit.children:
        _unit_xml(out, child, depth + 1, glns)
    out.append(f"{ind}</{entity}>\n")


def write_sor_xml(stream: IO[str], world: World) -> None:
    """Write the world's current state as ``Sor.xml`` (v2 namespace) to a text stream."""
    stamp = created_at(world.snapshot_date)
    stream.write('\ufeff<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(_ROOT_OPEN + "\n")
    stream.write(f"\t<CreatedAtTime>{stamp.isoformat()}</CreatedAtTime>\n")
    stream.write(f"\t<SnapshotDate>{world.snapshot_date.isoformat()}</SnapshotDate>\n")
    buffer: list[str] = []
    for owner in world.owners:
        _unit_xml(buffer, owner, 1, world.glns)
        if len(buffer) > 2000:  # flush in chunks: few large writes beat many small ones
            stream.write("".join(buffer))
            buffer.clear()
    stream.write("".join(buffer))
    stream.write("</SorTree>\n")


# --- CSV -----------------------------------------------------------------------------------------


def _require(section: Mapping[str, str], required: Iterable[str], file: str) -> None:
    missing = [key for key in required if key not in section]
    if missing:
        raise ValueError(f"csv-columns has no column for {missing} in {file}")


def _row_writer(
    stream: IO[str], section: Mapping[str, str], columns: CsvColumns, known: Iterable[str]
) -> Callable[[Mapping[str, str]], None]:
    """A writer for rows given as {our key: value}; headers and order come from the config."""
    keys = list(section)
    known_keys = set(known)
    unknown = [key for key in keys if key not in known_keys]
    if unknown:
        logger.warning("csv-columns names columns the sandbox cannot fill: %s", unknown)
    writer = csv.writer(stream, delimiter=columns.delimiter, lineterminator="\r\n")
    writer.writerow([section[key] for key in keys])

    def write(values: Mapping[str, str]) -> None:
        writer.writerow([values.get(key, "") for key in keys])

    return write


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def write_edi_types(stream: IO[str], world: World, columns: CsvColumns) -> int:
    section = columns.edi_types
    _require(section, ("id", "message_type"), "EDITypes.csv")
    write = _row_writer(stream, section, columns, ("id", "message_type", "version_code", "name"))
    for row in world.vocabulary.edi_types:
        write(
            {
                "id": row.id,
                "message_type": row.message_type,
                "version_code": row.version_code,
                "name": row.name,
            }
        )
    return len(world.vocabulary.edi_types)


def write_gln_edi_types(stream: IO[str], world: World, columns: CsvColumns) -> int:
    section = columns.gln_edi_types
    _require(section, ("gln", "edi_type_id"), "LocationsCodeEDITypeMap.csv")
    write = _row_writer(stream, section, columns, ("gln", "edi_type_id", "from_date", "to_date"))
    rows = 0
    for record in world.glns.values():
        for _code, (edi_id, since) in sorted(record.types.items()):
            write({"gln": record.gln, "edi_type_id": edi_id, "from_date": _iso(since)})
            rows += 1
        for _code, edi_id, since, until in record.ended:
            write(
                {
                    "gln": record.gln,
                    "edi_type_id": edi_id,
                    "from_date": _iso(since),
                    "to_date": _iso(until),
                }
            )
            rows += 1
    return rows


_GLN_KEYS = (
    "gln",
    "sor_id",
    "non_active",
    "only_internal",
    "system_supplier",
    "system_type",
    "vans",
    "region_code",
    "edi_administrator",
    "from_date",
    "to_date",
)


def write_glns(stream: IO[str], world: World, columns: CsvColumns) -> int:
    section = columns.glns
    _require(section, ("gln",), "LocationsCodes.csv")
    write = _row_writer(stream, section, columns, _GLN_KEYS)
    for record in world.glns.values():
        write(
            {
                "gln": record.gln,
                "sor_id": record.owner.sor_id if record.owner is not None else "",
                "non_active": _bool(record.non_active),
                "only_internal": _bool(record.only_internal),
                "system_supplier": record.system.supplier_code,
                "system_type": record.system.type_code,
                "vans": record.vans or "",
                "region_code": record.region_code,
                "edi_administrator": record.edi_administrator,
                "from_date": _iso(record.from_date),
                "to_date": _iso(record.to_date),
            }
        )
    return len(world.glns)


# --- zip -----------------------------------------------------------------------------------------


def _member(name: str, stamp: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # fixed, so archives are byte-identical on every platform
    info.external_attr = 0o644 << 16
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class WrittenFile:
    name: str
    sha256: str
    size: int
    members: tuple[str, ...]


def write_day(
    world: World, day_dir: Path, columns: CsvColumns, files: SourceFiles
) -> tuple[WrittenFile, WrittenFile, int]:
    """Write the world's current day into ``day_dir``; returns both zips and the map row count."""
    day_dir.mkdir(parents=True, exist_ok=True)
    stamp = created_at(world.snapshot_date)
    xml_path = day_dir / files.xml_zip
    with zipfile.ZipFile(xml_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with io.TextIOWrapper(
            archive.open(_member(files.xml_member, stamp), "w"), encoding="utf-8", newline=""
        ) as text:
            write_sor_xml(text, world)
    csv_path = day_dir / files.csv_zip
    map_rows = 0
    with zipfile.ZipFile(csv_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, writer in (
            (files.edi_types_member, write_edi_types),
            (files.gln_edi_types_member, write_gln_edi_types),
            (files.glns_member, write_glns),
        ):
            with io.TextIOWrapper(
                archive.open(_member(member, stamp), "w"), encoding=columns.encoding, newline=""
            ) as text:
                count = writer(text, world, columns)
            if member == files.gln_edi_types_member:
                map_rows = count
    written = (
        WrittenFile(files.xml_zip, _sha256(xml_path), xml_path.stat().st_size, (files.xml_member,)),
        WrittenFile(
            files.csv_zip,
            _sha256(csv_path),
            csv_path.stat().st_size,
            (files.edi_types_member, files.gln_edi_types_member, files.glns_member),
        ),
    )
    return written[0], written[1], map_rows
