"""What day 0 of the sandbox world holds on purpose: the real test addresses, GLNs only the CSV
still lists, and the defects the audit must find (:attr:`~soredi_sync.sandbox.world.World.planted`).

Each of these is frozen: the nightly churn leaves it as built.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from soredi_sync.domain.gln import gs1_check_digit, has_valid_check_digit
from soredi_sync.domain.model import GlnMode, UnitKind
from soredi_sync.sandbox import names
from soredi_sync.sandbox.capabilities import (
    add_type,
    drop_legacy,
    end_type,
    initial_types,
    make_clean_legacy,
)
from soredi_sync.sandbox.catalog import (
    FHIR_START,
    KIND_SYSTEMS,
    SYSTEMS,
    VANS_MULTIMED,
    VANS_TRUECOMMERCE,
    past_date,
    vendor_administrator,
    weighted,
)
from soredi_sync.sandbox.mutable import MutableGln
from soredi_sync.sandbox.snapshot import DEFECT_CODES

if TYPE_CHECKING:
    from soredi_sync.sandbox.world import World


def reference(
    world: World,
    rng: random.Random,
    record: MutableGln,
    label: str,
    types: Sequence[str] | None,
    freeze_tree: bool = True,
) -> None:
    """Freeze a real test address in a known state (it must be a valid GLN)."""
    voc = world.vocabulary
    if not has_valid_check_digit(record.gln):
        raise ValueError(f"reference GLN {record.gln} has a bad check digit")
    record.frozen = True
    if record.owner is not None:
        record.owner.frozen = True
        if freeze_tree:
            for unit in record.owner.root.walk():
                unit.frozen = True
    if types is not None:
        record.types.clear()
        record.ended.clear()
        for code in types:
            add_type(voc, rng, record, code, record.from_date)
    else:
        # The municipality keeps its drawn municipal types, on CareCommunication only.
        drop_legacy(voc, record, FHIR_START)
        for code in (voc.fhir_correspondence, voc.fhir_ack, voc.fhir_notification):
            add_type(voc, rng, record, code, FHIR_START)
    world.reference_glns[record.gln] = {
        "label": label,
        "vans": record.vans or "",
        "system": record.system.name,
    }


def reference_addresses(world: World, rng: random.Random) -> None:
    """The real test addresses MedCom names, each on a practice of its own (frozen)."""
    voc = world.vocabulary
    by_name = {m.name: m for m in names.MUNICIPALITIES}
    fhir = [voc.fhir_correspondence, voc.fhir_ack]
    specs = (
        # (GLN, label, kind, system, VANS, municipality, owner name, types)
        (
            "5790002759994", "VENA test (GP system, FHIR)", "gp", "vena", VANS_MULTIMED,
            "Aarhus", "VENA testpraksis",
            fhir + ["REF01", "RPT01", "RPT02", "REQ01", "CTL01"],
        ),
        (
            "5790002621635", "Nasure EDI-portalen test (dental)", "dentist", "ediportal",
            VANS_MULTIMED, "København", "EDI-portalen testklinik",
            fhir + ["RUC03", "REF06", "BIN02"],
        ),
        (
            "5790000120314", "MedCom XMO test system (DIS91/XDIS91)", "gp", "xmo",
            VANS_TRUECOMMERCE, "Odense", "MedCom XMO testsystem",
            list(voc.legacy_set("edifact") + voc.legacy_set("oioxml")),
        ),
    )  # fmt: skip
    for gln, label, kind, system_key, vans, town, owner_name, types in specs:
        municipality = by_name[town]
        system = SYSTEMS[system_key]
        owner = world.unit(
            rng, owner_name, UnitKind.INSTITUTION_OWNER, kind, None, "owner:organisation",
            municipality, gap=True,
        )  # fmt: skip
        record = world.attach_gln(
            rng, owner, system, municipality.region_code, vendor_administrator(system),
            kind, gln=gln, vans=vans, with_types=False,
        )  # fmt: skip
        institution = world.unit(
            rng, owner_name, UnitKind.HEALTH_INSTITUTION, kind, owner, f"institution:{kind}",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        clinic = world.unit(
            rng, owner_name, UnitKind.ORGANISATIONAL_UNIT, kind, institution, "unit:practice",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        clinic.provider = world.new_provider(rng)
        reference(world, rng, record, label, types)


def csv_only(world: World, rng: random.Random) -> None:
    """Closed GLNs no unit carries any more: only in LocationsCodes.csv, rows all ended."""
    for _ in range(world.spec.csv_only_glns):
        kind = rng.choice(("gp", "specialist", "dentist", "physio"))
        system = SYSTEMS[weighted(rng, KIND_SYSTEMS[kind])]
        municipality = rng.choice(world.municipalities)
        record = MutableGln(
            gln=world.new_gln(rng),
            system=system,
            vans=weighted(rng, system.vans),
            region_code=municipality.region_code,
            edi_administrator=vendor_administrator(system),
            owner=None,
            from_date=past_date(rng, date(2000, 1, 1), date(2015, 12, 31)),
            category=kind,
        )
        world.glns[record.gln] = record
        initial_types(world.vocabulary, rng, record, world.base_date, allow_fhir=False)
        closed = past_date(rng, date(2018, 1, 1), world.base_date - timedelta(days=30))
        record.types = {
            code: (edi_id, min(since, closed)) for code, (edi_id, since) in record.types.items()
        }
        record.non_active = True
        record.to_date = closed
        record.updated_at = closed
        for code in sorted(record.types):
            end_type(record, code, closed)
        record.frozen = True


def plant_defects(world: World, rng: random.Random) -> None:
    """``spec.planted`` GLNs per defect code, frozen in the state that shows it (listed in
    :attr:`~soredi_sync.sandbox.world.World.planted`), and as many clinics without a GLN."""
    n = world.spec.planted
    voc = world.vocabulary
    candidates = [
        record
        for record in world.glns.values()
        if record.owner is not None
        and record.owner.kind is UnitKind.INSTITUTION_OWNER
        and record.category in ("gp", "specialist", "dentist", "physio")
        and not record.frozen
        and not record.non_active
    ]
    rng.shuffle(candidates)
    codes = [c for c in DEFECT_CODES if c != "UNIT_WITHOUT_GLN"]
    if len(candidates) < n * len(codes):
        raise ValueError(f"profile {world.spec.name!r} is too small to plant its defects")
    for code in codes:
        for _ in range(n):
            record = candidates.pop()
            record.frozen = True
            assert record.owner is not None
            for unit in record.owner.root.walk():
                unit.frozen = True
            make_clean_legacy(voc, rng, record)
            legacy = voc.correspondence[record.system.legacy]
            if code == "FDIS91_WITH_LEGACY":
                add_type(voc, rng, record, voc.fhir_correspondence, world.base_date)
                add_type(voc, rng, record, voc.fhir_ack, world.base_date)
            elif code == "FHIR_WITHOUT_FCTL":
                add_type(voc, rng, record, voc.fhir_correspondence, world.base_date)
                drop_legacy(voc, record, world.base_date - timedelta(days=1))
                record.types.pop(voc.fhir_ack, None)
            elif code == "LEGACY_WITHOUT_BIN":
                add_type(voc, rng, record, legacy, record.from_date)
                for attachment in voc.attachments:
                    record.types.pop(attachment, None)
            elif code == "TYPES_ON_INACTIVE_GLN":
                record.non_active = True
            elif code == "BAD_CHECK_DIGIT":
                _break_check_digit(world, rng, record)
            elif code == "GLN_WITHOUT_VANS":
                record.vans = None
            elif code == "ALL_UNITS_CLOSED":
                closed = world.base_date - timedelta(days=rng.randint(20, 400))
                for unit in record.owner.root.walk():
                    unit.to_date = max(closed, unit.from_date)
                    unit.updated_at = closed
            world.planted[code].append(record.gln)
    for index in range(n):
        world.planted["UNIT_WITHOUT_GLN"].extend(_unaddressable_clinic(world, rng, index))
    for code in world.planted:
        world.planted[code].sort()


def _break_check_digit(world: World, rng: random.Random, record: MutableGln) -> None:
    body = record.gln[:-1]
    wrong = (gs1_check_digit(body) + rng.randint(1, 9)) % 10
    bad = body + str(wrong)
    del world.glns[record.gln]
    record.gln = bad
    world.glns[bad] = record
    assert record.owner is not None
    record.owner.gln = bad


def _unaddressable_clinic(world: World, rng: random.Random, index: int) -> list[str]:
    """A private clinic with no GLN anywhere on its tree, as some real ones are."""
    municipality = rng.choice(world.municipalities)
    name = f"{rng.choice(names.SPECIALTIES)}klinikken {municipality.town}"
    owner = world.unit(
        rng, name, UnitKind.INSTITUTION_OWNER, "clinic", None, "owner:private",
        municipality, gap=True,
    )  # fmt: skip
    institution = world.unit(
        rng, name, UnitKind.HEALTH_INSTITUTION, "clinic", owner, "institution:clinic",
        municipality, from_date=owner.from_date,
    )  # fmt: skip
    institution.gln_mode = GlnMode.NONE
    department = world.unit(
        rng, f"{name}, afdeling", UnitKind.ORGANISATIONAL_UNIT, "clinic", institution,
        "unit:department", municipality, from_date=owner.from_date,
    )  # fmt: skip
    # Alternate the two shapes: "false" all the way down, or inheriting up to a "false".
    department.gln_mode = GlnMode.NONE if index % 2 == 0 else GlnMode.INHERITED
    world.unit(
        rng, f"{name}, behandling", UnitKind.ORGANISATIONAL_UNIT, "clinic", department,
        "unit:section", municipality, from_date=owner.from_date,
    )  # fmt: skip
    ids = []
    for unit in owner.walk():
        unit.frozen = True
        ids.append(unit.sor_id)
    return ids
