"""From the two downloaded zips to one validated :class:`~soredi_sync.domain.model.Registry`.

This is where ``docs/sources.md`` "How they combine" happens: units from ``Sor.xml``; GLNs from
the XML with CSV-only GLNs added; capabilities from the EDI map joined to the EDI types, without
rows closed before the snapshot date. Every check runs before anything is returned, and all
problems found are raised together, once (fail closed: nothing partial leaves this module).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from soredi_sync.config import GuardSettings, SourceSettings, config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Registry
from soredi_sync.errors import InvalidSourceData
from soredi_sync.memory import cyclic_gc_paused
from soredi_sync.parsing.archive import open_member
from soredi_sync.parsing.csv_columns import HeaderReport
from soredi_sync.parsing.problems import Problems
from soredi_sync.parsing.sor_csv import parse_edi_types, parse_gln_edi_types, parse_glns
from soredi_sync.parsing.sor_xml import parse_sor_xml
from soredi_sync.parsing.validate import merge_glns, validate_records
from soredi_sync.reference_data import CsvColumns

logger = logging.getLogger(__name__)


def load_registry(
    xml_zip: Path,
    csv_zip: Path,
    sources: SourceSettings,
    columns: CsvColumns,
    guards: GuardSettings,
    message_types: MessageTypeRegistry | None = None,
    csv_report: HeaderReport | None = None,
) -> Registry:
    """Read, combine and validate one SOR pull.

    :param xml_zip: the downloaded ``sor.zip`` (member ``sources.sor_xml_member``)
    :param csv_zip: the downloaded ``Sor_complete.zip`` (the three CSV members of ``sources``)
    :param message_types: resolves EDI types that give only a version code
    :param csv_report: filled per CSV file with the header used for each column (aliases in
        ``csv-columns.toml``) and how many values were unwrapped from Excel guards
    :returns: the registry, with ``source_date`` = the XML's ``SnapshotDate``
    :raises InvalidSourceData: any archive, XML or CSV fault, or any failed check; the
        exception's ``problems`` lists them all (capped)
    """
    with cyclic_gc_paused():
        return _load(xml_zip, csv_zip, sources, columns, guards, message_types, csv_report)


def _load(
    xml_zip: Path,
    csv_zip: Path,
    sources: SourceSettings,
    columns: CsvColumns,
    guards: GuardSettings,
    message_types: MessageTypeRegistry | None,
    csv_report: HeaderReport | None,
) -> Registry:
    started = time.perf_counter()
    problems = Problems()
    with open_member(xml_zip, sources.sor_xml_member, guards) as stream:
        sor = parse_sor_xml(stream, problems, label=sources.sor_xml_member)
    xml_done = time.perf_counter()
    as_of = sor.snapshot_date
    with open_member(csv_zip, sources.edi_types_member, guards) as stream:
        edi_types = parse_edi_types(
            stream,
            columns,
            message_types,
            problems=problems,
            label=sources.edi_types_member,
            headers=csv_report,
        )
    with open_member(csv_zip, sources.gln_edi_types_member, guards) as stream:
        capabilities = list(
            parse_gln_edi_types(
                stream,
                columns,
                edi_types,
                as_of,
                problems=problems,
                label=sources.gln_edi_types_member,
                headers=csv_report,
            )
        )
    with open_member(csv_zip, sources.glns_member, guards) as stream:
        csv_glns = list(
            parse_glns(
                stream,
                columns,
                problems=problems,
                label=sources.glns_member,
                as_of=as_of,
                headers=csv_report,
            )
        )
    csv_done = time.perf_counter()

    glns = merge_glns(sor.glns, csv_glns)
    validate_records(sor.units, sor.glns, glns, capabilities, problems)
    problems.raise_if_any(f"SOR pull from {xml_zip.name} and {csv_zip.name} refused")

    registry = Registry.build(sor.units, glns, capabilities, source_date=sor.snapshot_date)
    logger.info(
        "Loaded SOR snapshot %s: %d units, %d GLNs, %d capabilities "
        "(XML %.2fs, CSV %.2fs, combine %.2fs)",
        sor.snapshot_date,
        len(registry.units),
        len(registry.glns),
        registry.capability_count,
        xml_done - started,
        csv_done - xml_done,
        time.perf_counter() - csv_done,
    )
    return registry


def _find(directory: Path, relative: str) -> Path:
    # A downloader may keep the source's relative path or only its file name.
    candidate = directory / relative
    if candidate.is_file():
        return candidate
    by_name = directory / Path(relative).name
    if by_name.is_file():
        return by_name
    raise InvalidSourceData(f"{directory} has no {relative}")


def load_registry_from_dir(
    directory: Path,
    *,
    sources: SourceSettings | None = None,
    columns: CsvColumns | None = None,
    guards: GuardSettings | None = None,
    message_types: MessageTypeRegistry | None = None,
) -> Registry:
    """:func:`load_registry` on the two zips in ``directory``, named by ``sources`` paths.

    Settings left out are the defaults; ``columns`` then comes from ``config/csv-columns.toml``.

    :raises InvalidSourceData: as :func:`load_registry`, or a zip is not in ``directory``
    """
    sources = sources if sources is not None else SourceSettings()
    guards = guards if guards is not None else GuardSettings()
    if columns is None:
        columns = CsvColumns.load(config_dir() / "csv-columns.toml")
    return load_registry(
        _find(directory, sources.sor_xml_path),
        _find(directory, sources.sor_csv_path),
        sources,
        columns,
        guards,
        message_types,
    )
