"""A tiny writer of SOR files from domain records, for tests only.

It writes what ``docs/sources.md`` describes (XML in the v1 element order, CSVs with the headers
from ``config/csv-columns.toml``), so a registry can be written and read back.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

from soredi_sync.domain.model import Capability, Gln, GlnMode, Unit, UnitKind
from soredi_sync.reference_data import CsvColumns

V1 = "urn:oio:sundhedsstyrelsen:organisation:1.0.0"
V2 = "urn:oio:sundhedsstyrelsen:organisation:2.0.0"
DKCC2005 = "http://rep.oio.dk/ebxml/xml/schemas/dkcc/2005/03/15/"

_RECORD = {
    UnitKind.INSTITUTION_OWNER: ("InstitutionOwnerEntity", "InstitutionOwner", "OwnerType"),
    UnitKind.HEALTH_INSTITUTION: (
        "HealthInstitutionEntity",
        "HealthInstitution",
        "InstitutionType",
    ),
    UnitKind.ORGANISATIONAL_UNIT: (
        "OrganizationalUnitEntity",
        "OrganizationalUnit",
        "UnitType",
    ),
}


def _b(value: bool) -> str:
    return "true" if value else "false"


def _status(from_date: date | None, to_date: date | None) -> str:
    parts = ["<SorStatus>"]
    if from_date is not None:
        parts.append(f"<FromDate>{from_date.isoformat()}</FromDate>")
    if to_date is not None:
        parts.append(f"<ToDate>{to_date.isoformat()}</ToDate>")
    parts.append("<FirstFromDate>1990-01-01</FirstFromDate></SorStatus>")
    return "".join(parts)


def _opt(tag: str, value: str | None) -> str:
    return "" if value is None else f"<{tag}>{escape(value)}</{tag}>"


def gln_entity_xml(gln: Gln, *, v2_spellings: bool = False) -> str:
    suffix = "Identifier" if v2_spellings else ""
    return (
        "<EanLocationCodeEntity>"
        f"<EanLocationCode>{escape(gln.gln)}</EanLocationCode>"
        f"<OnlyInternalIndicator>{_b(gln.only_internal)}</OnlyInternalIndicator>"
        f"<NonActiveIndicator>{_b(not gln.active)}</NonActiveIndicator>"
        + _opt(f"SystemSupplier{suffix}", gln.system_supplier)
        + _opt(f"SystemType{suffix}", gln.system_type)
        + _opt(f"CommunicationSupplier{suffix}", gln.vans)
        + _opt("RegionCode", gln.region_code)
        + _opt("EdiAdministrator", gln.edi_administrator)
        + (_status(gln.from_date, gln.to_date) if gln.from_date or gln.to_date else "")
        + "</EanLocationCodeEntity>"
    )


def unit_xml(unit: Unit, gln: Gln | None, *, v2_spellings: bool = False) -> str:
    """One unit record element (without its ``*Entity`` wrapper)."""
    _, record, type_tag = _RECORD[unit.kind]
    parts = [
        f"<{record}>",
        f"<SorIdentifier>{unit.sor_id}</SorIdentifier>",
        f"<EntityName>{escape(unit.name)}</EntityName>",
        _opt(type_tag, unit.type_code),
    ]
    if unit.kind is UnitKind.INSTITUTION_OWNER:
        if unit.gln_mode is GlnMode.OWN:
            assert gln is not None, unit
            parts.append(gln_entity_xml(gln, v2_spellings=v2_spellings))
    else:
        parts.append(_opt("PharmacyIdentifier", unit.pharmacy_number))
        parts.append(_opt("ShakIdentifier", unit.shak))
        if unit.kind is UnitKind.ORGANISATIONAL_UNIT:
            parts.append(_opt("ProviderIdentifier", unit.provider_number))
        elif unit.provider_number is not None:
            raise ValueError("only organisational units carry a ProviderIdentifier")
        parts.append("<OptionalEanLocationCode>")
        if unit.gln_mode is GlnMode.OWN:
            assert gln is not None, unit
            parts.append(gln_entity_xml(gln, v2_spellings=v2_spellings))
        else:
            inherited = _b(unit.gln_mode is GlnMode.INHERITED)
            parts.append(f"<EntityInheritedIndicator>{inherited}</EntityInheritedIndicator>")
        parts.append("</OptionalEanLocationCode>")
    if unit.postal_code is not None:
        parts.append(
            "<PostalAddressInformation><xkom-1:AddressPostal>"
            "<dkcc2005:StreetName>Vej</dkcc2005:StreetName>"
            f"<dkcc2005:PostCodeIdentifier>{escape(unit.postal_code)}"
            "</dkcc2005:PostCodeIdentifier>"
            "</xkom-1:AddressPostal></PostalAddressInformation>"
        )
    parts.append(_status(unit.from_date, unit.to_date))
    parts.append(f"</{record}>")
    return "".join(parts)


def sor_xml(
    units: Sequence[Unit],
    glns: Iterable[Gln] = (),
    *,
    namespace: str = V1,
    snapshot_date: date | None = date(2025, 6, 1),
    v2_spellings: bool = False,
    bom: bool = True,
) -> bytes:
    """A ``Sor.xml`` with ``units`` nested by ``parent_sor_id`` (children in list order)."""
    by_gln = {gln.gln: gln for gln in glns}
    children: dict[str | None, list[Unit]] = {}
    for unit in units:
        children.setdefault(unit.parent_sor_id, []).append(unit)
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        f'<SorTree xmlns="{namespace}" '
        'xmlns:xkom-1="http://rep.oio.dk/xkom.dk/xml/schemas/2006/01/06/" '
        f'xmlns:dkcc2005="{DKCC2005}">\n'
    )
    out.write("<CreatedAtTime>2025-06-01T02:00:00+02:00</CreatedAtTime>\n")
    if snapshot_date is not None:
        out.write(f"<SnapshotDate>{snapshot_date.isoformat()}</SnapshotDate>\n")

    def write(unit: Unit) -> None:
        entity = _RECORD[unit.kind][0]
        gln = by_gln.get(unit.gln) if unit.gln else None
        out.write(f"<{entity}>")
        out.write(unit_xml(unit, gln, v2_spellings=v2_spellings))
        for child in children.get(unit.sor_id, []):
            write(child)
        out.write(f"</{entity}>\n")

    for root in children.get(None, []):
        write(root)
    out.write("</SorTree>\n")
    data = out.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def csv_bytes(columns: CsvColumns, section: str, rows: Iterable[Mapping[str, object]]) -> bytes:
    """One CSV file: the headers of ``section`` in ``columns``, values by our column keys."""
    mapping: dict[str, str] = getattr(columns, section)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=columns.delimiter, lineterminator="\r\n")
    keys = list(mapping)
    writer.writerow([mapping[key] for key in keys])
    for row in rows:
        writer.writerow(["" if row.get(key) is None else _csv_value(row[key]) for key in keys])
    return out.getvalue().encode(columns.encoding)


def _csv_value(value: object) -> str:
    if isinstance(value, bool):
        return _b(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def gln_row(gln: Gln) -> dict[str, object]:
    return {
        "gln": gln.gln,
        "sor_id": gln.owner_sor_id,
        "non_active": not gln.active,
        "only_internal": gln.only_internal,
        "system_supplier": gln.system_supplier,
        "system_type": gln.system_type,
        "vans": gln.vans,
        "region_code": gln.region_code,
        "edi_administrator": gln.edi_administrator,
        "from_date": gln.from_date,
        "to_date": gln.to_date,
    }


def csv_members(
    columns: CsvColumns,
    glns: Iterable[Gln],
    capabilities: Iterable[Capability],
    *,
    closed: Iterable[tuple[Capability, date]] = (),
) -> dict[str, bytes]:
    """The three CSV members of ``Sor_complete.zip`` for these records.

    EDI type ids are numbered from the distinct (message type, version) pairs; ``closed`` adds
    map rows with a ``to_date``.
    """
    capabilities = list(capabilities)
    closed = list(closed)
    pairs = sorted(
        {(c.message_type, c.version_code or "") for c in capabilities}
        | {(c.message_type, c.version_code or "") for c, _ in closed}
    )
    type_ids = {pair: str(100 + n) for n, pair in enumerate(pairs)}
    edi_rows = [
        {"id": type_id, "message_type": code, "version_code": version, "name": f"{code} {version}"}
        for (code, version), type_id in type_ids.items()
    ]
    map_rows: list[dict[str, object]] = [
        {"gln": c.gln, "edi_type_id": type_ids[(c.message_type, c.version_code or "")]}
        for c in capabilities
    ]
    map_rows += [
        {
            "gln": c.gln,
            "edi_type_id": type_ids[(c.message_type, c.version_code or "")],
            "from_date": date(2001, 1, 1),
            "to_date": ended,
        }
        for c, ended in closed
    ]
    return {
        "EDITypes.csv": csv_bytes(columns, "edi_types", edi_rows),
        "LocationsCodeEDITypeMap.csv": csv_bytes(columns, "gln_edi_types", map_rows),
        "LocationsCodes.csv": csv_bytes(columns, "glns", [gln_row(g) for g in glns]),
    }


def write_zip(
    path: Path, members: Mapping[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# -- SOR XML written by hand, for the parser's edge cases ----------------------------------------


def wrap(body: str, *, namespace: str = V1, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<SorTree xmlns="{namespace}">'
        f"<CreatedAtTime>2025-06-01T00:00:00Z</CreatedAtTime><SnapshotDate>2025-06-01</SnapshotDate>"
        f"{body}</SorTree>"
    ).encode()


def owner(sor_id: str = "1001", inner: str = "", extra: str = "") -> str:
    return (
        "<InstitutionOwnerEntity><InstitutionOwner>"
        f"<SorIdentifier>{sor_id}</SorIdentifier><EntityName>Region</EntityName>"
        f"<OwnerType>1</OwnerType>{extra}"
        "<SorStatus><FromDate>2001-01-01</FromDate><FirstFromDate>2001-01-01</FirstFromDate>"
        f"</SorStatus></InstitutionOwner>{inner}</InstitutionOwnerEntity>"
    )


def institution(sor_id: str = "2001", inner: str = "", optional: str = "", extra: str = "") -> str:
    optional = optional or "<EntityInheritedIndicator>true</EntityInheritedIndicator>"
    return (
        "<HealthInstitutionEntity><HealthInstitution>"
        f"<SorIdentifier>{sor_id}</SorIdentifier><EntityName>Sygehus</EntityName>"
        f"<InstitutionType>2</InstitutionType>{extra}"
        f"<OptionalEanLocationCode>{optional}</OptionalEanLocationCode>"
        "<SorStatus><FromDate>2001-01-01</FromDate><FirstFromDate>2001-01-01</FirstFromDate>"
        f"</SorStatus></HealthInstitution>{inner}</HealthInstitutionEntity>"
    )
