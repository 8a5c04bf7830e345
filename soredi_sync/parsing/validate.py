"""The pull checks of ``docs/sources.md``, as pure functions over parsed records.

No I/O here: the loader parses, these functions combine and check, and any problem refuses the
whole pull (fail closed: a half-valid file never replaces the last good snapshot). A wrong GLN
*check digit* is deliberately not a problem: such GLNs are real, stored, and reported by the
audit instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from soredi_sync.domain.gln import is_well_formed
from soredi_sync.domain.model import Capability, Gln, GlnMode, Unit, UnitKind
from soredi_sync.parsing.problems import Problems

logger = logging.getLogger(__name__)


def merge_glns(xml_glns: Iterable[Gln], csv_glns: Iterable[Gln]) -> list[Gln]:
    """GLN records from both sources: the XML's record wins; CSV-only GLNs are added.

    The CSV file also lists closed GLNs and GLNs not attached to a unit, which the XML lacks.
    """
    merged: dict[str, Gln] = {}
    for gln in csv_glns:
        merged[gln.gln] = gln
    from_csv = len(merged)
    for gln in xml_glns:
        merged[gln.gln] = gln
    logger.debug("Merged GLNs: %d in total, %d listed in the CSV", len(merged), from_csv)
    return list(merged.values())


def check_units(units: Sequence[Unit], problems: Problems) -> None:
    """At least one unit; unique SOR-IDs; parents and owners that exist; an acyclic tree."""
    if not units:
        problems.add("Sor.xml has no units")
        return
    by_id: dict[str, Unit] = {}
    for unit in units:
        if unit.sor_id in by_id:
            problems.add(
                f"SOR-ID {unit.sor_id} is used twice ({by_id[unit.sor_id].name!r} and "
                f"{unit.name!r}); a repeated SOR-ID would make the tree ambiguous"
            )
            continue
        by_id[unit.sor_id] = unit
    for unit in by_id.values():
        if unit.parent_sor_id is None:
            if unit.kind is not UnitKind.INSTITUTION_OWNER:
                problems.add(f"unit {unit.sor_id} ({unit.kind}) has no parent")
        elif unit.parent_sor_id not in by_id:
            problems.add(f"unit {unit.sor_id} names parent {unit.parent_sor_id}, which is unknown")
        owner = by_id.get(unit.owner_sor_id)
        if owner is None or owner.kind is not UnitKind.INSTITUTION_OWNER:
            problems.add(
                f"unit {unit.sor_id} names owner {unit.owner_sor_id}, which is not a known "
                "institution owner"
            )
        if unit.gln_mode is GlnMode.OWN and not unit.gln:
            problems.add(f"unit {unit.sor_id} owns a GLN but none is given")
    _check_acyclic(by_id, problems)


def _check_acyclic(by_id: dict[str, Unit], problems: Problems) -> None:
    # Each unit is walked once: ``done`` holds units whose path to a root is known to end.
    done: set[str] = set()
    for start in by_id:
        path: list[str] = []
        on_path: set[str] = set()
        current: str | None = start
        while current is not None and current not in done and current in by_id:
            if current in on_path:
                cycle = path[path.index(current) :]
                problems.add(f"units {' -> '.join([*cycle, current])} form a cycle")
                break
            on_path.add(current)
            path.append(current)
            current = by_id[current].parent_sor_id
        done.update(path)


def check_gln_owners(units: Iterable[Unit], xml_glns: Iterable[Gln], problems: Problems) -> None:
    """A GLN is owned (carried as an EanLocationCodeEntity) by at most one unit."""
    owners: dict[str, list[str]] = {}
    for unit in units:
        if unit.gln_mode is GlnMode.OWN and unit.gln:
            owners.setdefault(unit.gln, []).append(unit.sor_id)
    for gln in xml_glns:
        if gln.owner_sor_id is not None:
            holders = owners.setdefault(gln.gln, [])
            if gln.owner_sor_id not in holders:
                holders.append(gln.owner_sor_id)
    for gln_code, holders in owners.items():
        if len(holders) > 1:
            problems.add(f"GLN {gln_code} is owned by {len(holders)} units: {', '.join(holders)}")


def check_glns(glns: Iterable[Gln], problems: Problems) -> None:
    """Every GLN is 13 digits (the check digit is the audit's business, not ours)."""
    for gln in glns:
        if not is_well_formed(gln.gln):
            where = f" (unit {gln.owner_sor_id})" if gln.owner_sor_id else ""
            problems.add(f"GLN {gln.gln!r}{where} is not 13 digits")


def check_capabilities(
    capabilities: Sequence[Capability], known_glns: set[str] | frozenset[str], problems: Problems
) -> None:
    """Every capability names a GLN that is known (from the XML or LocationsCodes.csv)."""
    unknown = {capability.gln for capability in capabilities} - known_glns
    if not unknown:
        return
    rows: dict[str, int] = dict.fromkeys(sorted(unknown), 0)
    for capability in capabilities:
        if capability.gln in rows:
            rows[capability.gln] += 1
    for gln_code, count in rows.items():
        shape = "" if is_well_formed(gln_code) else ", and is not 13 digits"
        problems.add(
            f"GLN {gln_code!r} has {count} message type(s) in LocationsCodeEDITypeMap.csv "
            f"but is in neither Sor.xml nor LocationsCodes.csv{shape}"
        )


def validate_records(
    units: Sequence[Unit],
    xml_glns: Sequence[Gln],
    glns: Sequence[Gln],
    capabilities: Sequence[Capability],
    problems: Problems,
) -> None:
    """Run every pull check; problems are added to ``problems``.

    :param xml_glns: the GLN records as read from Sor.xml (for the one-owner check)
    :param glns: all GLN records after :func:`merge_glns`
    """
    check_units(units, problems)
    check_gln_owners(units, xml_glns, problems)
    check_glns(glns, problems)
    check_capabilities(capabilities, {gln.gln for gln in glns}, problems)
