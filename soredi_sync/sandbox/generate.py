"""Generate a synthetic, versioned SOR + SOR-EDI in the sor-filer layout, with a manifest.

Layout written under ``out_dir``::

    manifest.json
    day-000/sor.zip            (member Sor.xml, v2 namespace)
    day-000/Sor_complete.zip   (EDITypes.csv, LocationsCodeEDITypeMap.csv, LocationsCodes.csv)
    day-001/...

The output is a pure function of (profile, seed, days), the accepted SORUS submissions and the
configuration passed in (CSV columns, message types, names): running it twice gives
byte-identical files, and day *n* is the same whatever ``days`` is. The manifest lists, per day,
the sha256 of each zip, counts, every defect the audit should find (planted or arisen) and what
changed since the day before, all computed from the generator's own model so tests can check
parsers, sync and audit against it; with submissions it also lists them (``sorus``).

``write_from`` lets a running sandbox publish submissions: a submission only changes the days
from its ``effective_day`` on, so the days before are simulated again (the world needs their
state) but neither rewritten nor re-hashed, and the file being served stays untouched.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from soredi_sync.config import config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Registry
from soredi_sync.reference_data import CsvColumns
from soredi_sync.sandbox.catalog import (
    BASE_DATE,
    EDI_ADMINISTRATORS,
    PROFILES,
    SYSTEMS,
    TYPE_CODES,
    VANS_NAMES,
)
from soredi_sync.sandbox.journal import JOURNAL_NAME, JournalEntry
from soredi_sync.sandbox.snapshot import (
    DEFECT_CODES,
    DEFECT_DEFINITIONS,
    Snapshot,
    diff_snapshots,
)
from soredi_sync.sandbox.world import World
from soredi_sync.sandbox.writer import NAMESPACE_V2, SourceFiles, created_at, write_day

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def day_directory(day: int) -> str:
    """The folder name of one day's files (``day-000``)."""
    return f"day-{day:03d}"


@dataclass(frozen=True)
class DayEntry:
    """One day in the manifest."""

    day: int
    snapshot_date: str
    created_at: str
    directory: str
    files: dict[str, dict[str, Any]]  # zip name -> {sha256, size, members}
    counts: dict[str, int]
    defects: dict[str, list[str]]
    info: dict[str, list[str]]
    changes_from_previous_day: dict[str, Any] | None

    def sha256(self, file_name: str) -> str:
        return str(self.files[file_name]["sha256"])


@dataclass(frozen=True)
class Manifest:
    """What :func:`generate` wrote; saved as ``manifest.json`` beside the day folders."""

    profile: str
    seed: int
    days: int
    base_date: str
    namespace: str
    files: dict[str, str]  # role -> file or member name (sor_xml, sor_csv, members...)
    csv_dialect: dict[str, str]
    definitions: dict[str, str]
    planted: dict[str, list[str]]
    reference_glns: dict[str, dict[str, str]]
    vans: dict[str, str]
    systems: list[dict[str, Any]]
    edi_administrators: dict[str, str]
    type_codes: dict[str, str]
    snapshots: list[DayEntry] = field(default_factory=list)
    format: int = MANIFEST_FORMAT
    generation_seconds: float | None = None
    # The SORUS journal entries the files were generated with, in journal order (those effective
    # after the last day are in no file yet). Left out of the JSON when empty.
    sorus: list[dict[str, Any]] = field(default_factory=list)

    def day(self, day: int) -> DayEntry:
        return self.snapshots[day]

    def submissions(self) -> tuple[JournalEntry, ...]:
        """:attr:`sorus` as journal entries."""
        return tuple(JournalEntry.from_dict(dict(item)) for item in self.sorus)

    def to_json(self) -> str:
        data = asdict(self)
        if not data["sorus"]:
            del data["sorus"]  # a register without submissions keeps its manifest unchanged
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["snapshots"] = [DayEntry(**entry) for entry in data.get("snapshots", [])]
        return cls(**data)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        """Read ``manifest.json`` from a generated directory."""
        return cls.from_json((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8"))


def load_message_types(path: Path | None = None) -> MessageTypeRegistry:
    """The message types from ``config/message-types.tsv`` (or ``path``)."""
    path = path or config_dir() / "message-types.tsv"
    with path.open(encoding="utf-8") as fh:
        return MessageTypeRegistry.from_tsv_lines(fh)


def _columns(columns: CsvColumns | Mapping[str, Any] | None) -> CsvColumns:
    if columns is None:
        return CsvColumns.load(config_dir() / "csv-columns.toml")
    if isinstance(columns, CsvColumns):
        return columns
    data = dict(columns)
    data.update(data.pop("dialect", {}) or {})  # accept the TOML file's shape too
    return CsvColumns.model_validate(data)


def generate(
    out_dir: Path,
    profile: str = "tiny",
    seed: int = 0,
    days: int = 1,
    *,
    columns: CsvColumns | Mapping[str, Any] | None = None,
    message_types: MessageTypeRegistry | None = None,
    base_date: date = BASE_DATE,
    xml_zip: str = "sor.zip",
    csv_zip: str = "Sor_complete.zip",
    xml_member: str = "Sor.xml",
    edi_types_member: str = "EDITypes.csv",
    gln_edi_types_member: str = "LocationsCodeEDITypeMap.csv",
    glns_member: str = "LocationsCodes.csv",
    submissions: Sequence[JournalEntry] = (),
    write_from: int = 0,
) -> Manifest:
    """Write days 0..``days`` (inclusive) of a synthetic register under ``out_dir``.

    :param profile: ``tiny`` (~300 units), ``small`` (~3,000) or ``national`` (>= 60,000).
    :param seed: varies the register; the same (profile, seed, days, submissions) gives
        identical files.
    :param days: the number of nights to simulate after day 0.
    :param columns: CSV headers, delimiter and encoding; default ``config/csv-columns.toml``.
    :param message_types: default ``config/message-types.tsv``.
    :param submissions: accepted SORUS changes (the journal's entries), applied on their
        ``effective_day`` after that night's churn.
    :param write_from: the first day to write. Earlier days keep their files and their entries
        of the existing ``manifest.json``, which must describe the same register (profile,
        seed, base date, file names) with the same submissions effective before ``write_from``.
    :returns: the manifest, also written to ``out_dir/manifest.json``.
    :raises ValueError: for an unknown profile, a negative ``days`` or ``write_from``, a
        configuration that lacks a column or message type the sandbox needs, or a
        ``write_from`` the existing manifest cannot support.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    if write_from < 0:
        raise ValueError(f"write_from must be >= 0, got {write_from}")
    started = time.perf_counter()
    submissions = tuple(submissions)
    csv_columns = _columns(columns)
    files = SourceFiles(
        xml_zip=xml_zip,
        csv_zip=csv_zip,
        xml_member=xml_member,
        edi_types_member=edi_types_member,
        gln_edi_types_member=gln_edi_types_member,
        glns_member=glns_member,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = (
        _kept_days(out_dir, write_from, days, profile, seed, base_date, files, submissions)
        if write_from
        else []
    )
    if not submissions and (out_dir / JOURNAL_NAME).is_file():
        logger.warning(
            "%s holds a SORUS journal these files do not include; `soredi-sync sandbox serve` "
            "applies it (delete the file to start without submissions)",
            out_dir / JOURNAL_NAME,
        )
    world = World(
        profile, seed, message_types or load_message_types(), base_date, submissions=submissions
    )
    entries: list[DayEntry] = list(kept)
    previous: Snapshot | None = None
    for day in range(days + 1):
        if day:
            world.advance()
        if day < write_from:
            # Only the day before the first written one is needed, for its changes.
            previous = world.snapshot() if day == write_from - 1 else None
            continue
        snapshot = world.snapshot()
        directory = day_directory(day)
        xml_file, csv_file, map_rows = write_day(world, out_dir / directory, csv_columns, files)
        if map_rows != snapshot.capability_rows:  # the writer and the model must agree
            raise AssertionError(f"wrote {map_rows} map rows, model has {snapshot.capability_rows}")
        defects = snapshot.defects()
        effective = snapshot.effective_glns()
        entries.append(
            DayEntry(
                day=day,
                snapshot_date=snapshot.snapshot_date.isoformat(),
                created_at=created_at(snapshot.snapshot_date).isoformat(),
                directory=directory,
                files={
                    f.name: {"sha256": f.sha256, "size": f.size, "members": list(f.members)}
                    for f in (xml_file, csv_file)
                },
                counts=snapshot.counts(),
                defects=defects,
                info={
                    # The strict reading of EntityInheritedIndicator (the domain model's
                    # effective_gln): units that neither own nor inherit a GLN.
                    "units_without_effective_gln": sorted(
                        sor_id for sor_id, gln in effective.items() if gln is None
                    ),
                },
                changes_from_previous_day=(
                    diff_snapshots(previous, snapshot) if previous is not None else None
                ),
            )
        )
        logger.info(
            "Sandbox %s day %d: %d units, %d GLNs, %d map rows",
            profile,
            day,
            len(snapshot.units),
            len(snapshot.glns),
            map_rows,
        )
        previous = snapshot
    manifest = Manifest(
        profile=profile,
        seed=seed,
        days=days,
        base_date=base_date.isoformat(),
        namespace=NAMESPACE_V2,
        files={
            "sor_xml": files.xml_zip,
            "sor_csv": files.csv_zip,
            "sor_xml_member": files.xml_member,
            "edi_types_member": files.edi_types_member,
            "gln_edi_types_member": files.gln_edi_types_member,
            "glns_member": files.glns_member,
        },
        csv_dialect={"delimiter": csv_columns.delimiter, "encoding": csv_columns.encoding},
        definitions=dict(DEFECT_DEFINITIONS),
        planted={code: list(world.planted[code]) for code in DEFECT_CODES},
        reference_glns=world.reference_glns,
        vans=dict(VANS_NAMES),
        systems=[
            {
                "name": s.name,
                "vendor": s.vendor,
                "system_supplier": s.supplier_code,
                "system_type": s.type_code,
                "legacy_syntax": s.legacy,
                "fhir_correspondence": s.certified_fhir,
            }
            for s in SYSTEMS.values()
        ],
        edi_administrators=dict(EDI_ADMINISTRATORS),
        type_codes=dict(TYPE_CODES),
        snapshots=entries,
        sorus=[entry.to_dict() for entry in submissions],
    )
    stale = sorted(
        child.name
        for child in out_dir.glob("day-*")
        if child.is_dir() and child.name[4:].isdigit() and int(child.name[4:]) > days
    )
    if stale:
        # Left from an earlier, longer run; not deleted (it is the caller's directory), and
        # the server only serves the days this manifest lists.
        logger.warning("Sandbox directory %s still holds older folders %s", out_dir, stale)
    # Timing is kept out of the file so that the manifest, too, is byte-identical per input.
    (out_dir / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    elapsed = time.perf_counter() - started
    logger.info("Generated sandbox %s/%d with %d days in %.1f s", profile, seed, days, elapsed)
    return Manifest(**{**manifest.__dict__, "generation_seconds": round(elapsed, 3)})


def _kept_days(
    out_dir: Path,
    write_from: int,
    days: int,
    profile: str,
    seed: int,
    base_date: date,
    files: SourceFiles,
    submissions: Sequence[JournalEntry],
) -> list[DayEntry]:
    """The existing manifest's entries for the days before ``write_from``, after checking that
    they describe what this run would have written (else the manifest would lie)."""
    try:
        existing = Manifest.load(out_dir)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"write_from={write_from} needs the existing manifest: {exc}") from exc
    expected_files = {
        "sor_xml": files.xml_zip,
        "sor_csv": files.csv_zip,
        "sor_xml_member": files.xml_member,
        "edi_types_member": files.edi_types_member,
        "gln_edi_types_member": files.gln_edi_types_member,
        "glns_member": files.glns_member,
    }
    if (existing.profile, existing.seed, existing.base_date, existing.files) != (
        profile,
        seed,
        base_date.isoformat(),
        expected_files,
    ):
        raise ValueError(
            f"write_from={write_from}: {out_dir} holds another register "
            f"({existing.profile}/{existing.seed} from {existing.base_date})"
        )
    last = min(write_from, days + 1)
    if len(existing.snapshots) < last:
        raise ValueError(
            f"write_from={write_from}: the existing manifest has only days "
            f"0..{len(existing.snapshots) - 1}"
        )
    before = [e for e in existing.submissions() if e.effective_day < write_from]
    if before != [e for e in submissions if e.effective_day < write_from]:
        raise ValueError(
            f"write_from={write_from}: the submissions effective before day {write_from} differ "
            "from those the existing files were generated with"
        )
    return list(existing.snapshots[:last])


def expected_snapshot(
    profile: str,
    seed: int,
    day: int,
    *,
    message_types: MessageTypeRegistry | None = None,
    base_date: date = BASE_DATE,
    submissions: Sequence[JournalEntry] = (),
) -> Snapshot:
    """The generator's own model of one day, as domain records (no files written).

    Sync and parser tests compare what they read from the files with ``.registry()``.
    """
    world = World(
        profile, seed, message_types or load_message_types(), base_date, submissions=submissions
    )
    for _ in range(day):
        world.advance()
    return world.snapshot()


def expected_registry(
    profile: str,
    seed: int,
    day: int,
    *,
    message_types: MessageTypeRegistry | None = None,
    base_date: date = BASE_DATE,
    submissions: Sequence[JournalEntry] = (),
) -> Registry:
    """:func:`expected_snapshot` as a :class:`~soredi_sync.domain.model.Registry`."""
    return expected_snapshot(
        profile,
        seed,
        day,
        message_types=message_types,
        base_date=base_date,
        submissions=submissions,
    ).registry()


__all__ = [
    "MANIFEST_NAME",
    "PROFILES",
    "DayEntry",
    "Manifest",
    "day_directory",
    "expected_registry",
    "expected_snapshot",
    "generate",
    "load_message_types",
]
