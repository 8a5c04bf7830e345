"""One night in the sandbox world: closures, renames, new units, VANS changes, CareCommunication
adoption, then the accepted SORUS submissions that take effect that day.

:func:`night` draws from the day's own stream (``day-N``), and the submissions from another
(``sorus-N``), so a day's churn is the same with or without submissions.
"""

from __future__ import annotations

import logging
import random
from datetime import date, timedelta
from typing import TYPE_CHECKING

from soredi_sync.domain.model import GlnMode, UnitKind
from soredi_sync.sandbox import names
from soredi_sync.sandbox.build import practice
from soredi_sync.sandbox.capabilities import adoption_night, end_type
from soredi_sync.sandbox.catalog import VANS_NAMES
from soredi_sync.sandbox.mutable import MutableGln, MutableUnit

if TYPE_CHECKING:
    from soredi_sync.sandbox.world import World

logger = logging.getLogger(__name__)


def night(world: World) -> None:
    """The night before ``world.day``: removals, closures, renames, new units, VANS changes,
    adoption, then the SORUS submissions effective that day."""
    rng = world.rng_for(f"day-{world.day}")
    today = world.snapshot_date
    yesterday = today - timedelta(days=1)
    low, high = world.spec.churn

    # Units closed two nights ago leave the extract; a GLN they owned stays in the CSV only.
    fhir_lost = 0
    for unit in [u for u in world.units.values() if u.closed_day == world.day - 2]:
        fhir_lost += _remove_unit(world, unit, yesterday)

    open_units = [
        u
        for u in world.units.values()
        if not u.frozen and u.to_date is None and u.closed_day is None
    ]
    effective = _effective_gln_objects(world)

    # Closures: leaf units that have a working GLN (so no defect but ALL_UNITS_CLOSED can
    # arise, and only when the closed leaf was its GLN's only user).
    leaves = [
        u
        for u in open_units
        if u.parent is not None
        and not u.children
        and (g := effective.get(u.sor_id)) is not None
        and not g.non_active
        and g.types
        and not g.frozen
    ]
    for unit in rng.sample(leaves, min(len(leaves), rng.randint(low, high))):
        unit.to_date = yesterday
        unit.updated_at = today
        unit.closed_day = world.day

    # Renames.
    candidates = [u for u in open_units if u.closed_day is None]
    for unit in rng.sample(candidates, min(len(candidates), rng.randint(low, high))):
        unit.name = _renamed(rng, unit)
        unit.updated_at = today

    # New units: teams under open municipal/hospital units, and new practices.
    parents = [
        u
        for u in candidates
        if u.category in ("municipal", "hospital")
        and u.kind is not UnitKind.INSTITUTION_OWNER
        and u.closed_day is None
        and u.gln_mode is not GlnMode.NONE
    ]
    by_postal = {m.postal_code: m for m in names.MUNICIPALITIES}
    for _ in range(rng.randint(low, high)):
        if parents and rng.random() < 0.5:
            parent = rng.choice(parents)
            world.unit(
                rng, f"{parent.name}, nyt team", UnitKind.ORGANISATIONAL_UNIT,
                parent.category, parent, "unit:team", by_postal[parent.postal_code],
                from_date=today,
            )  # fmt: skip
        else:
            municipality = rng.choice(world.municipalities)
            record = practice(world, rng, "gp", municipality, from_date=today)
            for code, (edi_id, _since) in list(record.types.items()):
                record.types[code] = (edi_id, today)
            record.ended.clear()
            record.from_date = record.updated_at = today

    # VANS changes.
    movable = [
        g
        for g in world.glns.values()
        if g.owner is not None and not g.frozen and not g.non_active and g.vans
    ]
    for record in rng.sample(movable, min(len(movable), rng.randint(low, high))):
        record.vans = rng.choice([v for v in VANS_NAMES if v != record.vans])
        record.updated_at = today

    adoption_night(
        world.vocabulary, rng, world.glns.values(), today, yesterday, at_least=fhir_lost + 1
    )
    # After the night's own churn: SOR publishes what was submitted yesterday on top of it.
    _apply_submissions(world, today, yesterday)


def _apply_submissions(world: World, today: date, yesterday: date) -> None:
    """Publish the SORUS changes effective on ``world.day``, in journal order."""
    entries = world.submissions_on(world.day)
    if not entries:
        return
    # Its own stream, so the churn above draws the same numbers with or without submissions.
    rng = world.rng_for(f"sorus-{world.day}")
    voc = world.vocabulary
    for entry in entries:
        record = world.glns.get(entry.gln)
        if record is None or record.non_active:
            # Closed overnight (or never there): SOR would not publish types on it.
            logger.info(
                "SORUS %s change %s: GLN %s is gone on day %d; skipped",
                entry.ticket,
                entry.change_id,
                entry.gln,
                world.day,
            )
            continue
        code = entry.message_type
        if entry.action == "add":
            if code not in voc:
                logger.info("SORUS %s: unknown message type %r; skipped", entry.ticket, code)
                continue
            edi_id = voc.id_for(code, entry.version_code) if entry.version_code else None
            current = record.types.get(code)
            if current is not None and (edi_id is None or current[0] == edi_id):
                continue  # already advertised as asked
            # Another version replaces the current row (one row per GLN and type, as in
            # add_type), and a re-registration replaces an ended one.
            record.types[code] = (edi_id or voc.pick_version(code, rng), today)
            record.ended = [row for row in record.ended if row[0] != code]
        else:
            if code not in record.types:
                continue  # already absent, as asked
            end_type(record, code, yesterday)
        record.updated_at = today


def _renamed(rng: random.Random, unit: MutableUnit) -> str:
    """A plausible new name: a swapped prefix, another district, or an address note."""
    name = unit.name
    swaps = (
        ("Lægerne ", "Lægehuset "),
        ("Lægehuset ", "Lægerne "),
        ("Plejecenter ", "Plejecentret "),
        ("Plejecentret ", "Plejecenter "),
        ("Tandlægerne ", "Tandklinikken "),
        ("Tandklinikken ", "Tandlægerne "),
    )
    for old, new in swaps:
        if name.startswith(old):
            return new + name[len(old) :]
    for district in names.DISTRICTS:
        if name.endswith(" " + district):
            other = rng.choice([d for d in names.DISTRICTS if d != district])
            return name[: -len(district)] + other
    if name.endswith(" (ny adresse)"):
        return name[: -len(" (ny adresse)")]
    return name + " (ny adresse)"


def _effective_gln_objects(world: World) -> dict[str, MutableGln | None]:
    """SOR-ID -> the GLN a unit uses (its own or inherited), None when it has none."""
    result: dict[str, MutableGln | None] = {}
    for owner in world.owners:
        stack: list[tuple[MutableUnit, MutableGln | None]] = [(owner, None)]
        while stack:
            unit, inherited = stack.pop()
            if unit.gln_mode is GlnMode.OWN and unit.gln is not None:
                mine: MutableGln | None = world.glns.get(unit.gln)
            elif unit.gln_mode is GlnMode.INHERITED and unit.parent is not None:
                mine = inherited
            else:
                mine = None
            result[unit.sor_id] = mine
            stack.extend((child, mine) for child in unit.children)
    return result


def _remove_unit(world: World, unit: MutableUnit, last_day: date) -> int:
    """Drop a closed leaf from the extract; returns 1 when it took an FDIS91 GLN along."""
    if unit.children:
        return 0  # only leaves are ever closed, but never orphan a child
    if unit.parent is not None:
        unit.parent.children.remove(unit)
    else:
        world.owners.remove(unit)
    del world.units[unit.sor_id]
    if unit.gln_mode is GlnMode.OWN and unit.gln is not None:
        record = world.glns[unit.gln]
        record.owner = None
        record.non_active = True
        record.to_date = last_day
        record.updated_at = world.snapshot_date
        had_fhir = world.vocabulary.fhir_correspondence in record.types
        for code in sorted(record.types):
            end_type(record, code, last_day)
        record.frozen = True
        return int(had_fhir)
    return 0
