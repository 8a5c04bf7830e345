"""Day 0 of the sandbox world: regions with their hospitals, municipalities, private practices.

:func:`populate` draws the whole initial register from the world's ``init`` stream, in a fixed
order (regions, municipalities, practices, then what :mod:`soredi_sync.sandbox.planted` adds);
:func:`practice` also opens the new practices of a night (:mod:`soredi_sync.sandbox.churn`).
"""

from __future__ import annotations

import logging
import random
from datetime import date
from typing import TYPE_CHECKING

from soredi_sync.domain.model import GlnMode, UnitKind
from soredi_sync.sandbox import names, planted
from soredi_sync.sandbox.catalog import (
    EDI_ADMINISTRATORS,
    KIND_SYSTEMS,
    REGION_SYSTEM,
    SYSTEMS,
    VANS_KMD,
    System,
    vendor_administrator,
    weighted,
)
from soredi_sync.sandbox.mutable import MutableGln, MutableUnit

if TYPE_CHECKING:
    from soredi_sync.sandbox.world import World

logger = logging.getLogger(__name__)


def populate(world: World, rng: random.Random) -> None:
    """Build day 0 of ``world`` from ``rng`` (the world's ``init`` stream)."""
    spec = world.spec
    municipalities = list(names.MUNICIPALITIES)
    if spec.municipalities < len(municipalities):
        aalborg = next(m for m in municipalities if m.name == "Aalborg")
        others = [m for m in municipalities if m is not aalborg]
        chosen = [aalborg] + rng.sample(others, spec.municipalities - 1)
        municipalities = [m for m in names.MUNICIPALITIES if m in chosen]
    world.municipalities = municipalities
    for region in names.REGIONS:
        # Hospitals sit anywhere in their region, also in municipalities a small profile
        # leaves out.
        in_region = [m for m in names.MUNICIPALITIES if m.region_code == region.code]
        _region(world, rng, region, in_region)
    for municipality in municipalities:
        _municipality(world, rng, municipality)
    for kind, count in spec.practices.items():
        for _ in range(count):
            practice(world, rng, kind, rng.choice(municipalities))
    planted.reference_addresses(world, rng)
    planted.csv_only(world, rng)
    planted.plant_defects(world, rng)
    logger.debug(
        "Built sandbox world %s/%d: %d units, %d GLNs",
        spec.name,
        world.seed,
        len(world.units),
        len(world.glns),
    )


def _region(
    world: World, rng: random.Random, region: names.Region, municipalities: list[names.Municipality]
) -> None:
    seat = municipalities[0]
    system = SYSTEMS[REGION_SYSTEM[region.code]]
    admin = EDI_ADMINISTRATORS[region.code]
    owner = world.unit(
        rng, region.name, UnitKind.INSTITUTION_OWNER, "region", None, "owner:region", seat,
        from_date=date(2007, 1, 1), gap=True,
    )  # fmt: skip
    world.attach_gln(rng, owner, system, region.code, admin, "region")
    hospitals = names.HOSPITALS[region.code][: world.spec.hospitals_per_region]
    for index, hospital_name in enumerate(hospitals):
        where = rng.choice(municipalities)
        hospital = world.unit(
            rng, hospital_name, UnitKind.HEALTH_INSTITUTION, "hospital", owner,
            "institution:hospital", where,
        )  # fmt: skip
        hospital.shak = f"{region.shak_prefix}{index + 1:02d}"
        world.attach_gln(rng, hospital, system, region.code, admin, "hospital")
        psychiatry = "sykiatri" in hospital_name
        pool = names.PSYCHIATRY_DEPARTMENTS if psychiatry else names.DEPARTMENTS
        n_departments = min(rng.randint(*world.spec.departments), len(pool))
        for d_index, department_name in enumerate(rng.sample(pool, n_departments)):
            department = world.unit(
                rng, department_name, UnitKind.ORGANISATIONAL_UNIT, "hospital", hospital,
                "unit:department", where,
            )  # fmt: skip
            department.shak = f"{hospital.shak}{d_index + 10:02d}"
            _gln_choice(world, rng, department, system, region.code, admin, 0.45, 0.08)
            for s_index in range(rng.randint(*world.spec.sections)):
                section_kind = rng.choice(names.SECTIONS)
                section = world.unit(
                    rng, f"{department_name}, {section_kind} {s_index + 1}",
                    UnitKind.ORGANISATIONAL_UNIT, "hospital", department, "unit:section",
                    where,
                )  # fmt: skip
                section.shak = f"{department.shak}{s_index}"
                own = _gln_choice(world, rng, section, system, region.code, admin, 0.15, 0.05)
                if own is not None and rng.random() < 0.2:
                    own.only_internal = True
                if rng.random() < world.spec.team_share:
                    for t_index in range(rng.randint(1, 2)):
                        team = world.unit(
                            rng, f"{section.name}, team {t_index + 1}",
                            UnitKind.ORGANISATIONAL_UNIT, "hospital", section, "unit:team",
                            where,
                        )  # fmt: skip
                        if rng.random() < 0.03:
                            team.gln_mode = GlnMode.NONE


def _gln_choice(
    world: World,
    rng: random.Random,
    unit: MutableUnit,
    system: System,
    region_code: str,
    admin: str,
    own_share: float,
    none_share: float,
) -> MutableGln | None:
    roll = rng.random()
    if roll < own_share:
        return world.attach_gln(rng, unit, system, region_code, admin, unit.category)
    if roll < own_share + none_share:
        unit.gln_mode = GlnMode.NONE
    return None


def _municipality(world: World, rng: random.Random, municipality: names.Municipality) -> None:
    spec = world.spec
    system = SYSTEMS[
        "cura" if municipality.name == "Aalborg" else weighted(rng, KIND_SYSTEMS["municipal"])
    ]
    admin = EDI_ADMINISTRATORS["medcom"]  # MedCom maintains municipal SOR-EDI entries
    region = municipality.region_code
    owner = world.unit(
        rng, f"{municipality.name} Kommune", UnitKind.INSTITUTION_OWNER, "municipal", None,
        "owner:municipality", municipality, from_date=date(2007, 1, 1), gap=True,
    )  # fmt: skip
    if municipality.name == "Aalborg":
        record = world.attach_gln(
            rng, owner, system, region, admin, "municipal", gln="5790000121786", vans=VANS_KMD
        )
        planted.reference(
            world,
            rng,
            record,
            "Aalborg Kommune (Columna Cura via KMD)",
            types=None,
            freeze_tree=False,
        )
    else:
        world.attach_gln(rng, owner, system, region, admin, "municipal")
    institutions = [names.MUNICIPAL_INSTITUTIONS[0]] + rng.sample(
        names.MUNICIPAL_INSTITUTIONS[1:], spec.municipal_institutions - 1
    )
    for institution_name in institutions:
        institution = world.unit(
            rng, f"{institution_name}, {municipality.name} Kommune",
            UnitKind.HEALTH_INSTITUTION, "municipal", owner, "institution:municipal",
            municipality,
        )  # fmt: skip
        _gln_choice(world, rng, institution, system, region, admin, 0.3, 0.0)
        for index in range(rng.randint(*spec.municipal_units)):
            name, type_key = _municipal_unit_name(rng, institution_name, index)
            unit = world.unit(
                rng, name, UnitKind.ORGANISATIONAL_UNIT, "municipal", institution, type_key,
                municipality,
            )  # fmt: skip
            _gln_choice(world, rng, unit, system, region, admin, 0.5, 0.02)
            for team_index in range(rng.randint(*spec.municipal_teams)):
                world.unit(
                    rng, f"{name}, team {team_index + 1}", UnitKind.ORGANISATIONAL_UNIT,
                    "municipal", unit, "unit:team", municipality,
                )  # fmt: skip


def _municipal_unit_name(rng: random.Random, institution: str, index: int) -> tuple[str, str]:
    district = names.DISTRICTS[index % len(names.DISTRICTS)]
    suffix = "" if index < len(names.DISTRICTS) else f" {index // len(names.DISTRICTS) + 1}"
    if institution == "Plejecentre":
        return f"Plejecenter {rng.choice(names.CARE_HOME_NAMES)}", "unit:care_home"
    if institution == "Hjemmeplejen":
        return f"Hjemmeplejen {district}{suffix}", "unit:home_care"
    if institution == "Hjemmesygeplejen":
        return f"Sygeplejen {district}{suffix}", "unit:home_care"
    return f"{institution} {district}{suffix}", "unit:municipal"


def _person(rng: random.Random) -> str:
    return f"{rng.choice(names.FIRST_NAMES)} {rng.choice(names.LAST_NAMES)}"


def _practice_names(
    rng: random.Random, kind: str, municipality: names.Municipality
) -> tuple[str, str]:
    """Owner name and clinic name for a private practice."""
    person = _person(rng)
    street = rng.choice(names.STREETS)
    town = municipality.town
    if kind == "gp":
        if rng.random() < 0.55:
            return f"Lægerne {street}", f"Lægerne {street}, {town}"
        return f"Læge {person}", f"Læge {person}"
    if kind == "specialist":
        specialty = rng.choice(names.SPECIALTIES)
        if rng.random() < 0.3:
            return f"{specialty}klinikken {town}", f"{specialty}klinikken {town}"
        return f"Speciallæge {person}", f"{specialty} {person}"
    if kind == "dentist":
        if rng.random() < 0.5:
            return f"Tandlægerne {street}", f"Tandlægerne {street}, {town}"
        return f"Tandlæge {person}", f"Tandlæge {person}"
    if kind == "physio":
        return f"Fysioterapi {town} v/ {person}", f"Fysioterapi {town}"
    if kind == "chiro":
        return f"Kiropraktisk Klinik {town}", f"Kiropraktisk Klinik {town}"
    if kind == "psychologist":
        return f"Psykolog {person}", f"Psykolog {person}"
    if kind == "podiatrist":
        return f"Fodterapeut {person}", f"Fodterapeut {person}"
    raise ValueError(kind)


def practice(
    world: World,
    rng: random.Random,
    kind: str,
    municipality: names.Municipality,
    from_date: date | None = None,
    system: System | None = None,
) -> MutableGln:
    """A private practice: owner (owns the GLN) -> institution -> unit, all inheriting."""
    if kind == "pharmacy":
        return _pharmacy(world, rng, municipality, from_date)
    system = system or SYSTEMS[weighted(rng, KIND_SYSTEMS[kind])]
    owner_name, clinic_name = _practice_names(rng, kind, municipality)
    owner = world.unit(
        rng, owner_name, UnitKind.INSTITUTION_OWNER, kind, None, "owner:private",
        municipality, from_date=from_date, gap=True,
    )  # fmt: skip
    record = world.attach_gln(
        rng, owner, system, municipality.region_code, vendor_administrator(system), kind
    )
    institution = world.unit(
        rng, clinic_name, UnitKind.HEALTH_INSTITUTION, kind, owner, f"institution:{kind}",
        municipality, from_date=owner.from_date,
    )  # fmt: skip
    clinic = world.unit(
        rng, clinic_name, UnitKind.ORGANISATIONAL_UNIT, kind, institution, "unit:practice",
        municipality, from_date=owner.from_date,
    )  # fmt: skip
    clinic.provider = world.new_provider(rng)
    if kind == "gp":
        for _ in range(rng.choices((0, 1, 2, 3), weights=(20, 30, 30, 20))[0]):
            world.unit(
                rng, f"Læge {_person(rng)}", UnitKind.ORGANISATIONAL_UNIT, kind, clinic,
                "unit:practice", municipality,
            )  # fmt: skip
    if rng.random() < world.spec.inactive_share:
        # A practice whose GLN was switched off but is still attached: no types, no defect.
        record.non_active = True
        record.types.clear()
        record.ended.clear()
    return record


def _pharmacy(
    world: World, rng: random.Random, municipality: names.Municipality, from_date: date | None
) -> MutableGln:
    system = SYSTEMS[weighted(rng, KIND_SYSTEMS["pharmacy"])]
    admin = vendor_administrator(system)
    name = f"{municipality.town} {rng.choice(names.PHARMACY_SUFFIXES)}"
    owner = world.unit(
        rng, name, UnitKind.INSTITUTION_OWNER, "pharmacy", None, "owner:private",
        municipality, from_date=from_date, gap=True,
    )  # fmt: skip
    record = world.attach_gln(rng, owner, system, municipality.region_code, admin, "pharmacy")
    institution = world.unit(
        rng, name, UnitKind.HEALTH_INSTITUTION, "pharmacy", owner, "institution:pharmacy",
        municipality, from_date=owner.from_date,
    )  # fmt: skip
    number = world.new_pharmacy(rng)
    main = world.unit(
        rng, name, UnitKind.ORGANISATIONAL_UNIT, "pharmacy", institution, "unit:pharmacy",
        municipality, from_date=owner.from_date,
    )  # fmt: skip
    main.pharmacy = f"{number},1"
    for branch in range(rng.choices((0, 1, 2), weights=(40, 40, 20))[0]):
        unit = world.unit(
            rng, f"{name}, filial {names.DISTRICTS[branch]}", UnitKind.ORGANISATIONAL_UNIT,
            "pharmacy", institution, "unit:pharmacy", municipality,
        )  # fmt: skip
        unit.pharmacy = f"{number},{branch + 2}"
        if rng.random() < 0.3:
            world.attach_gln(rng, unit, system, municipality.region_code, admin, "pharmacy")
    return record
