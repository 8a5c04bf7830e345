"""The sandbox's synthetic SOR world: units, GLNs and their message types, evolving day by day.

:class:`World` builds a deterministic register for a profile and seed, then :meth:`World.advance`
applies one night's worth of changes (CareCommunication adoption, renames, new and closed units,
VANS changes) and then the accepted SORUS submissions that take effect that day (see
:mod:`soredi_sync.sandbox.journal`). :meth:`World.snapshot` turns the current state into domain
records (:class:`~soredi_sync.domain.model.Unit`, :class:`~soredi_sync.domain.model.Gln`,
capabilities) so the generator's own view of "what the files say" uses the same vocabulary as
the parsers, and from that snapshot the expected audit defects and the day-to-day changes are
computed.

Determinism: every random choice comes from a :class:`random.Random` seeded with a string built
from (profile, seed, day) (string seeds are hashed with SHA-512, independent of
``PYTHONHASHSEED``), and nothing iterates over a ``set`` of strings, whose order would vary
between processes. Day *n* therefore depends only on (profile, seed, n) and the submissions
effective on day *n* or earlier, never on how many days are generated.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from soredi_sync.domain.gln import gs1_check_digit, has_valid_check_digit, with_check_digit
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln, GlnMode, Unit, UnitKind
from soredi_sync.sandbox import names
from soredi_sync.sandbox.catalog import (
    BASE_DATE,
    EDI_ADMINISTRATORS,
    KIND_SYSTEMS,
    PROFILES,
    REFERENCE_GLNS,
    REGION_SYSTEM,
    SOR_NAMESPACE,
    SYSTEMS,
    TYPE_CODES,
    TYPE_POOLS,
    VANS_KMD,
    VANS_MULTIMED,
    VANS_NAMES,
    VANS_TRUECOMMERCE,
    System,
    sctid,
    vendor_administrator,
)
from soredi_sync.sandbox.journal import JournalEntry
from soredi_sync.sandbox.snapshot import DEFECT_CODES, Snapshot
from soredi_sync.sandbox.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

# --- the mutable model ---------------------------------------------------------------------------


class MutableUnit:
    """A unit as the generator keeps it between nights (the domain's :class:`Unit` is frozen)."""

    __slots__ = (
        "sor_id",
        "name",
        "kind",
        "category",
        "parent",
        "children",
        "type_code",
        "gln_mode",
        "gln",
        "from_date",
        "to_date",
        "updated_at",
        "shak",
        "provider",
        "pharmacy",
        "street",
        "number",
        "postal_code",
        "town",
        "phone",
        "frozen",
        "closed_day",
        "root",
    )

    def __init__(
        self,
        sor_id: str,
        name: str,
        kind: UnitKind,
        category: str,
        parent: MutableUnit | None,
        type_code: str,
        place: tuple[str, str, str, str],
        phone: str,
        from_date: date,
        updated_at: date,
    ) -> None:
        self.sor_id = sor_id
        self.name = name
        self.kind = kind
        self.category = category  # gp, hospital, municipal, ... (drives names and types)
        self.parent = parent
        self.children: list[MutableUnit] = []
        self.type_code = type_code
        self.gln_mode = GlnMode.INHERITED if parent is not None else GlnMode.NONE
        self.gln: str | None = None
        self.from_date = from_date
        self.to_date: date | None = None
        self.updated_at = updated_at
        self.shak: str | None = None
        self.provider: str | None = None
        self.pharmacy: str | None = None
        self.street, self.number, self.postal_code, self.town = place
        self.phone = phone
        self.frozen = False  # planted defects and reference addresses: no churn
        self.closed_day: int | None = None
        self.root: MutableUnit = parent.root if parent is not None else self
        if parent is not None:
            parent.children.append(self)

    def walk(self) -> Iterable[MutableUnit]:
        yield self
        for child in self.children:
            yield from child.walk()


class MutableGln:
    """A GLN with its attributes and SOR-EDI rows, current and ended."""

    __slots__ = (
        "gln",
        "non_active",
        "only_internal",
        "system",
        "vans",
        "region_code",
        "edi_administrator",
        "owner",
        "from_date",
        "to_date",
        "updated_at",
        "types",
        "ended",
        "frozen",
        "category",
    )

    def __init__(
        self,
        gln: str,
        system: System,
        vans: str | None,
        region_code: str,
        edi_administrator: str,
        owner: MutableUnit | None,
        from_date: date,
        category: str,
    ) -> None:
        self.gln = gln
        self.non_active = False
        self.only_internal = False
        self.system = system
        self.vans = vans
        self.region_code = region_code
        self.edi_administrator = edi_administrator
        self.owner = owner
        self.from_date = from_date
        self.to_date: date | None = None
        self.updated_at = from_date
        # message type -> (EDI type id, from date); insertion order is irrelevant, rows are
        # written sorted by message type.
        self.types: dict[str, tuple[str, date]] = {}
        # capability rows that ended: (message type, EDI type id, from date, to date)
        self.ended: list[tuple[str, str, date, date]] = []
        self.frozen = False
        self.category = category


# --- the world -----------------------------------------------------------------------------------


def _weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _past_date(rng: random.Random, start: date, end: date) -> date:
    span = (end - start).days
    return start + timedelta(days=rng.randint(0, max(span, 0)))


_FHIR_START = date(2025, 5, 31)  # CareCommunication went live


class World:
    """The synthetic register for one profile and seed, at :attr:`day`.

    :param submissions: accepted SORUS changes (:class:`~soredi_sync.sandbox.journal.JournalEntry`);
        :meth:`advance` applies those whose ``effective_day`` is the new day, in the given order.
    """

    def __init__(
        self,
        profile: str,
        seed: int,
        message_types: MessageTypeRegistry,
        base_date: date = BASE_DATE,
        *,
        submissions: Iterable[JournalEntry] = (),
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown sandbox profile {profile!r}; known: {sorted(PROFILES)}")
        self.spec = PROFILES[profile]
        self.seed = seed
        self.base_date = base_date
        self.day = 0
        self.vocabulary = Vocabulary(message_types)
        self.owners: list[MutableUnit] = []
        self.units: dict[str, MutableUnit] = {}
        self.glns: dict[str, MutableGln] = {}
        self.planted: dict[str, list[str]] = {code: [] for code in DEFECT_CODES}
        self.reference_glns: dict[str, dict[str, str]] = {}
        # Reserve the real test addresses so no synthetic GLN collides with them.
        self._used_bodies: set[str] = {gln[:-1] for gln in REFERENCE_GLNS}
        self._rng = self._rng_for("init")
        self._next_item = 30_000
        self._next_body = 579_000_010_000
        self._next_provider = 10_000
        self._next_pharmacy = 100
        self._submissions: dict[int, list[JournalEntry]] = {}
        for entry in submissions:
            self._submissions.setdefault(entry.effective_day, []).append(entry)
        self._build()

    # -- helpers --

    def _rng_for(self, label: str) -> random.Random:
        return random.Random(f"soredi-sandbox:{self.spec.name}:{self.seed}:{label}")

    @property
    def snapshot_date(self) -> date:
        return self.base_date + timedelta(days=self.day)

    def _new_sor_id(self, rng: random.Random, gap: bool = False) -> str:
        # Units of one tree get consecutive items, as in real extracts; trees are spaced apart.
        self._next_item += rng.randint(2, 12) if gap else 1
        return sctid(self._next_item, SOR_NAMESPACE)

    def _new_gln(self, rng: random.Random) -> str:
        while True:
            self._next_body += rng.randint(1, self.spec.gln_step)
            body = str(self._next_body)
            if body not in self._used_bodies:
                self._used_bodies.add(body)
                return with_check_digit(body)

    def _new_provider(self, rng: random.Random) -> str:
        self._next_provider += rng.randint(1, 9)
        return f"{self._next_provider:06d}"

    def _phone(self, rng: random.Random) -> str:
        return str(rng.randint(20_000_000, 99_999_999))

    def _place(
        self, rng: random.Random, municipality: names.Municipality
    ) -> tuple[str, str, str, str]:
        return (
            rng.choice(names.STREETS),
            str(rng.randint(1, 150)),
            municipality.postal_code,
            municipality.town,
        )

    def _unit(
        self,
        rng: random.Random,
        name: str,
        kind: UnitKind,
        category: str,
        parent: MutableUnit | None,
        type_key: str,
        municipality: names.Municipality,
        from_date: date | None = None,
        gap: bool = False,
    ) -> MutableUnit:
        if from_date is None:
            start = parent.from_date if parent is not None else date(1995, 1, 1)
            from_date = (
                start
                if parent is not None and rng.random() < 0.6
                else _past_date(rng, start, self.base_date - timedelta(days=400))
            )
        updated = _past_date(rng, from_date, self.base_date - timedelta(days=1))
        unit = MutableUnit(
            sor_id=self._new_sor_id(rng, gap=gap),
            name=name,
            kind=kind,
            category=category,
            parent=parent,
            type_code=TYPE_CODES[type_key],
            place=self._place(rng, municipality),
            phone=self._phone(rng),
            from_date=from_date,
            updated_at=updated,
        )
        self.units[unit.sor_id] = unit
        if parent is None:
            self.owners.append(unit)
        return unit

    def _attach_gln(
        self,
        rng: random.Random,
        unit: MutableUnit,
        system: System,
        region_code: str,
        administrator: str,
        category: str,
        gln: str | None = None,
        vans: str | None = None,
        with_types: bool = True,
    ) -> MutableGln:
        value = gln or self._new_gln(rng)
        if gln is not None:
            self._used_bodies.add(gln[:-1])
        record = MutableGln(
            gln=value,
            system=system,
            vans=vans or _weighted(rng, system.vans),
            region_code=region_code,
            edi_administrator=administrator,
            owner=unit,
            from_date=_past_date(rng, unit.from_date, self.base_date - timedelta(days=30)),
            category=category,
        )
        record.updated_at = _past_date(rng, record.from_date, self.base_date - timedelta(days=1))
        unit.gln_mode = GlnMode.OWN
        unit.gln = value
        self.glns[value] = record
        if with_types:
            self._initial_types(rng, record)
        return record

    def _add_type(self, rng: random.Random, record: MutableGln, code: str, since: date) -> None:
        if code in self.vocabulary and code not in record.types:
            record.types[code] = (self.vocabulary.pick_version(code, rng), since)
            if record.ended:
                # A re-registration replaces the old ended row: one row per GLN and type keeps
                # the map unambiguous for parsers.
                record.ended = [row for row in record.ended if row[0] != code]

    def _end_type(self, record: MutableGln, code: str, last_day: date) -> None:
        entry = record.types.pop(code, None)
        if entry is not None:
            edi_id, since = entry
            # A type removed on the day it was added never counted: it leaves no row, since a
            # row ending before it starts (or on the snapshot date) would read as current.
            if last_day >= since:
                record.ended.append((code, edi_id, since, last_day))

    def _initial_types(
        self, rng: random.Random, record: MutableGln, allow_fhir: bool = True
    ) -> None:
        voc = self.vocabulary
        system = record.system
        primary, secondary, (low, high) = TYPE_POOLS[record.category]
        count = rng.randint(low, high)
        since = record.from_date
        core = list(voc.legacy_set(system.legacy))
        other = "oioxml" if system.legacy == "edifact" else "edifact"
        # Some receivers take both legacy syntaxes (a system change left the old ones behind).
        if rng.random() < (0.2 if system.legacy == "edifact" else 0.1):
            core += voc.legacy_set(other)
        for code in core:
            self._add_type(rng, record, code, since)
        picks = [c for c in primary if c in voc]
        rng.shuffle(picks)
        extra = [c for c in secondary if c in voc]
        rng.shuffle(extra)
        for code in picks + extra:
            if len(record.types) >= count:
                break
            self._add_type(rng, record, code, _past_date(rng, since, self.base_date))
        if allow_fhir and rng.random() < system.initial_fhir:
            adopted = _past_date(rng, _FHIR_START, self.base_date - timedelta(days=1))
            self._adopt(rng, record, max(adopted, since), drop_share=0.6)

    def _adopt(
        self, rng: random.Random, record: MutableGln, since: date, drop_share: float
    ) -> None:
        """Advertise CareCommunication; with ``drop_share`` also remove the obsolete types."""
        voc = self.vocabulary
        self._add_type(rng, record, voc.fhir_correspondence, since)
        self._add_type(rng, record, voc.fhir_ack, since)
        if record.category in ("municipal", "hospital") and rng.random() < 0.5:
            self._add_type(rng, record, voc.fhir_notification, since)
        if rng.random() < drop_share:
            self._drop_legacy(record, since - timedelta(days=1))

    def _drop_legacy(self, record: MutableGln, last_day: date) -> None:
        # Attachments go together with the legacy correspondence types: a GLN never keeps a
        # legacy correspondence type without its BIN type once it has FDIS91.
        for code in self.vocabulary.legacy_correspondence + self.vocabulary.attachments:
            self._end_type(record, code, last_day)

    def _make_clean_legacy(self, rng: random.Random, record: MutableGln) -> None:
        """Only legacy correspondence with attachments and receipts: no capability defect."""
        voc = self.vocabulary
        for code in voc.fhir_types:
            record.types.pop(code, None)
        for code in voc.legacy_set(record.system.legacy):
            self._add_type(rng, record, code, record.from_date)

    # -- the initial register --

    def _build(self) -> None:
        rng = self._rng
        spec = self.spec
        municipalities = list(names.MUNICIPALITIES)
        if spec.municipalities < len(municipalities):
            aalborg = next(m for m in municipalities if m.name == "Aalborg")
            others = [m for m in municipalities if m is not aalborg]
            chosen = [aalborg] + rng.sample(others, spec.municipalities - 1)
            municipalities = [m for m in names.MUNICIPALITIES if m in chosen]
        self.municipalities = municipalities
        for region in names.REGIONS:
            # Hospitals sit anywhere in their region, also in municipalities a small profile
            # leaves out.
            in_region = [m for m in names.MUNICIPALITIES if m.region_code == region.code]
            self._build_region(rng, region, in_region)
        for municipality in municipalities:
            self._build_municipality(rng, municipality)
        for kind, count in spec.practices.items():
            for _ in range(count):
                self._build_practice(rng, kind, rng.choice(municipalities))
        self._build_reference_addresses(rng)
        self._build_csv_only(rng)
        self._plant_defects(rng)
        logger.debug(
            "Built sandbox world %s/%d: %d units, %d GLNs",
            spec.name,
            self.seed,
            len(self.units),
            len(self.glns),
        )

    def _build_region(
        self, rng: random.Random, region: names.Region, municipalities: list[names.Municipality]
    ) -> None:
        seat = municipalities[0]
        system = SYSTEMS[REGION_SYSTEM[region.code]]
        admin = EDI_ADMINISTRATORS[region.code]
        owner = self._unit(
            rng, region.name, UnitKind.INSTITUTION_OWNER, "region", None, "owner:region", seat,
            from_date=date(2007, 1, 1), gap=True,
        )  # fmt: skip
        self._attach_gln(rng, owner, system, region.code, admin, "region")
        hospitals = names.HOSPITALS[region.code][: self.spec.hospitals_per_region]
        for index, hospital_name in enumerate(hospitals):
            where = rng.choice(municipalities)
            hospital = self._unit(
                rng, hospital_name, UnitKind.HEALTH_INSTITUTION, "hospital", owner,
                "institution:hospital", where,
            )  # fmt: skip
            hospital.shak = f"{region.shak_prefix}{index + 1:02d}"
            self._attach_gln(rng, hospital, system, region.code, admin, "hospital")
            psychiatry = "sykiatri" in hospital_name
            pool = names.PSYCHIATRY_DEPARTMENTS if psychiatry else names.DEPARTMENTS
            n_departments = min(rng.randint(*self.spec.departments), len(pool))
            for d_index, department_name in enumerate(rng.sample(pool, n_departments)):
                department = self._unit(
                    rng, department_name, UnitKind.ORGANISATIONAL_UNIT, "hospital", hospital,
                    "unit:department", where,
                )  # fmt: skip
                department.shak = f"{hospital.shak}{d_index + 10:02d}"
                self._gln_choice(rng, department, system, region.code, admin, 0.45, 0.08)
                for s_index in range(rng.randint(*self.spec.sections)):
                    section_kind = rng.choice(names.SECTIONS)
                    section = self._unit(
                        rng, f"{department_name}, {section_kind} {s_index + 1}",
                        UnitKind.ORGANISATIONAL_UNIT, "hospital", department, "unit:section",
                        where,
                    )  # fmt: skip
                    section.shak = f"{department.shak}{s_index}"
                    own = self._gln_choice(rng, section, system, region.code, admin, 0.15, 0.05)
                    if own is not None and rng.random() < 0.2:
                        own.only_internal = True
                    if rng.random() < self.spec.team_share:
                        for t_index in range(rng.randint(1, 2)):
                            team = self._unit(
                                rng, f"{section.name}, team {t_index + 1}",
                                UnitKind.ORGANISATIONAL_UNIT, "hospital", section, "unit:team",
                                where,
                            )  # fmt: skip
                            if rng.random() < 0.03:
                                team.gln_mode = GlnMode.NONE

    def _gln_choice(
        self,
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
            return self._attach_gln(rng, unit, system, region_code, admin, unit.category)
        if roll < own_share + none_share:
            unit.gln_mode = GlnMode.NONE
        return None

    def _build_municipality(self, rng: random.Random, municipality: names.Municipality) -> None:
        spec = self.spec
        system = SYSTEMS[
            "cura" if municipality.name == "Aalborg" else _weighted(rng, KIND_SYSTEMS["municipal"])
        ]
        admin = EDI_ADMINISTRATORS["medcom"]  # MedCom maintains municipal SOR-EDI entries
        region = municipality.region_code
        owner = self._unit(
            rng, f"{municipality.name} Kommune", UnitKind.INSTITUTION_OWNER, "municipal", None,
            "owner:municipality", municipality, from_date=date(2007, 1, 1), gap=True,
        )  # fmt: skip
        if municipality.name == "Aalborg":
            record = self._attach_gln(
                rng, owner, system, region, admin, "municipal", gln="5790000121786", vans=VANS_KMD
            )
            self._reference(
                record, "Aalborg Kommune (Columna Cura via KMD)", types=None, freeze_tree=False
            )
        else:
            self._attach_gln(rng, owner, system, region, admin, "municipal")
        institutions = [names.MUNICIPAL_INSTITUTIONS[0]] + rng.sample(
            names.MUNICIPAL_INSTITUTIONS[1:], spec.municipal_institutions - 1
        )
        for institution_name in institutions:
            institution = self._unit(
                rng, f"{institution_name}, {municipality.name} Kommune",
                UnitKind.HEALTH_INSTITUTION, "municipal", owner, "institution:municipal",
                municipality,
            )  # fmt: skip
            self._gln_choice(rng, institution, system, region, admin, 0.3, 0.0)
            for index in range(rng.randint(*spec.municipal_units)):
                name, type_key = self._municipal_unit_name(rng, institution_name, index)
                unit = self._unit(
                    rng, name, UnitKind.ORGANISATIONAL_UNIT, "municipal", institution, type_key,
                    municipality,
                )  # fmt: skip
                self._gln_choice(rng, unit, system, region, admin, 0.5, 0.02)
                for team_index in range(rng.randint(*spec.municipal_teams)):
                    self._unit(
                        rng, f"{name}, team {team_index + 1}", UnitKind.ORGANISATIONAL_UNIT,
                        "municipal", unit, "unit:team", municipality,
                    )  # fmt: skip

    def _municipal_unit_name(
        self, rng: random.Random, institution: str, index: int
    ) -> tuple[str, str]:
        district = names.DISTRICTS[index % len(names.DISTRICTS)]
        suffix = "" if index < len(names.DISTRICTS) else f" {index // len(names.DISTRICTS) + 1}"
        if institution == "Plejecentre":
            return f"Plejecenter {rng.choice(names.CARE_HOME_NAMES)}", "unit:care_home"
        if institution == "Hjemmeplejen":
            return f"Hjemmeplejen {district}{suffix}", "unit:home_care"
        if institution == "Hjemmesygeplejen":
            return f"Sygeplejen {district}{suffix}", "unit:home_care"
        return f"{institution} {district}{suffix}", "unit:municipal"

    def _person(self, rng: random.Random) -> str:
        return f"{rng.choice(names.FIRST_NAMES)} {rng.choice(names.LAST_NAMES)}"

    def _practice_names(
        self, rng: random.Random, kind: str, municipality: names.Municipality
    ) -> tuple[str, str]:
        """Owner name and clinic name for a private practice."""
        person = self._person(rng)
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

    def _build_practice(
        self,
        rng: random.Random,
        kind: str,
        municipality: names.Municipality,
        from_date: date | None = None,
        system: System | None = None,
    ) -> MutableGln:
        """A private practice: owner (owns the GLN) -> institution -> unit, all inheriting."""
        if kind == "pharmacy":
            return self._build_pharmacy(rng, municipality, from_date)
        system = system or SYSTEMS[_weighted(rng, KIND_SYSTEMS[kind])]
        owner_name, clinic_name = self._practice_names(rng, kind, municipality)
        owner = self._unit(
            rng, owner_name, UnitKind.INSTITUTION_OWNER, kind, None, "owner:private",
            municipality, from_date=from_date, gap=True,
        )  # fmt: skip
        record = self._attach_gln(
            rng, owner, system, municipality.region_code, vendor_administrator(system), kind
        )
        institution = self._unit(
            rng, clinic_name, UnitKind.HEALTH_INSTITUTION, kind, owner, f"institution:{kind}",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        clinic = self._unit(
            rng, clinic_name, UnitKind.ORGANISATIONAL_UNIT, kind, institution, "unit:practice",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        clinic.provider = self._new_provider(rng)
        if kind == "gp":
            for _ in range(rng.choices((0, 1, 2, 3), weights=(20, 30, 30, 20))[0]):
                self._unit(
                    rng, f"Læge {self._person(rng)}", UnitKind.ORGANISATIONAL_UNIT, kind, clinic,
                    "unit:practice", municipality,
                )  # fmt: skip
        if rng.random() < self.spec.inactive_share:
            # A practice whose GLN was switched off but is still attached: no types, no defect.
            record.non_active = True
            record.types.clear()
            record.ended.clear()
        return record

    def _build_pharmacy(
        self, rng: random.Random, municipality: names.Municipality, from_date: date | None
    ) -> MutableGln:
        system = SYSTEMS[_weighted(rng, KIND_SYSTEMS["pharmacy"])]
        admin = vendor_administrator(system)
        name = f"{municipality.town} {rng.choice(names.PHARMACY_SUFFIXES)}"
        owner = self._unit(
            rng, name, UnitKind.INSTITUTION_OWNER, "pharmacy", None, "owner:private",
            municipality, from_date=from_date, gap=True,
        )  # fmt: skip
        record = self._attach_gln(rng, owner, system, municipality.region_code, admin, "pharmacy")
        institution = self._unit(
            rng, name, UnitKind.HEALTH_INSTITUTION, "pharmacy", owner, "institution:pharmacy",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        self._next_pharmacy += rng.randint(1, 3)
        number = self._next_pharmacy
        main = self._unit(
            rng, name, UnitKind.ORGANISATIONAL_UNIT, "pharmacy", institution, "unit:pharmacy",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        main.pharmacy = f"{number},1"
        for branch in range(rng.choices((0, 1, 2), weights=(40, 40, 20))[0]):
            unit = self._unit(
                rng, f"{name}, filial {names.DISTRICTS[branch]}", UnitKind.ORGANISATIONAL_UNIT,
                "pharmacy", institution, "unit:pharmacy", municipality,
            )  # fmt: skip
            unit.pharmacy = f"{number},{branch + 2}"
            if rng.random() < 0.3:
                self._attach_gln(rng, unit, system, municipality.region_code, admin, "pharmacy")
        return record

    def _reference(
        self, record: MutableGln, label: str, types: Sequence[str] | None, freeze_tree: bool = True
    ) -> None:
        """Freeze a real test address in a known state (it must be a valid GLN)."""
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
                self._add_type(self._rng, record, code, record.from_date)
        else:
            # The municipality keeps its drawn municipal types, on CareCommunication only.
            voc = self.vocabulary
            self._drop_legacy(record, _FHIR_START)
            for code in (voc.fhir_correspondence, voc.fhir_ack, voc.fhir_notification):
                self._add_type(self._rng, record, code, _FHIR_START)
        self.reference_glns[record.gln] = {
            "label": label,
            "vans": record.vans or "",
            "system": record.system.name,
        }

    def _build_reference_addresses(self, rng: random.Random) -> None:
        voc = self.vocabulary
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
            owner = self._unit(
                rng, owner_name, UnitKind.INSTITUTION_OWNER, kind, None, "owner:organisation",
                municipality, gap=True,
            )  # fmt: skip
            record = self._attach_gln(
                rng, owner, system, municipality.region_code, vendor_administrator(system),
                kind, gln=gln, vans=vans, with_types=False,
            )  # fmt: skip
            institution = self._unit(
                rng, owner_name, UnitKind.HEALTH_INSTITUTION, kind, owner, f"institution:{kind}",
                municipality, from_date=owner.from_date,
            )  # fmt: skip
            clinic = self._unit(
                rng, owner_name, UnitKind.ORGANISATIONAL_UNIT, kind, institution, "unit:practice",
                municipality, from_date=owner.from_date,
            )  # fmt: skip
            clinic.provider = self._new_provider(rng)
            self._reference(record, label, types)

    def _build_csv_only(self, rng: random.Random) -> None:
        """Closed GLNs no unit carries any more: only in LocationsCodes.csv, rows all ended."""
        for _ in range(self.spec.csv_only_glns):
            kind = rng.choice(("gp", "specialist", "dentist", "physio"))
            system = SYSTEMS[_weighted(rng, KIND_SYSTEMS[kind])]
            municipality = rng.choice(self.municipalities)
            record = MutableGln(
                gln=self._new_gln(rng),
                system=system,
                vans=_weighted(rng, system.vans),
                region_code=municipality.region_code,
                edi_administrator=vendor_administrator(system),
                owner=None,
                from_date=_past_date(rng, date(2000, 1, 1), date(2015, 12, 31)),
                category=kind,
            )
            self.glns[record.gln] = record
            self._initial_types(rng, record, allow_fhir=False)
            closed = _past_date(rng, date(2018, 1, 1), self.base_date - timedelta(days=30))
            record.types = {
                code: (edi_id, min(since, closed)) for code, (edi_id, since) in record.types.items()
            }
            record.non_active = True
            record.to_date = closed
            record.updated_at = closed
            for code in sorted(record.types):
                self._end_type(record, code, closed)
            record.frozen = True

    def _plant_defects(self, rng: random.Random) -> None:
        n = self.spec.planted
        voc = self.vocabulary
        candidates = [
            record
            for record in self.glns.values()
            if record.owner is not None
            and record.owner.kind is UnitKind.INSTITUTION_OWNER
            and record.category in ("gp", "specialist", "dentist", "physio")
            and not record.frozen
            and not record.non_active
        ]
        rng.shuffle(candidates)
        codes = [c for c in DEFECT_CODES if c != "UNIT_WITHOUT_GLN"]
        if len(candidates) < n * len(codes):
            raise ValueError(f"profile {self.spec.name!r} is too small to plant its defects")
        for code in codes:
            for _ in range(n):
                record = candidates.pop()
                record.frozen = True
                assert record.owner is not None
                for unit in record.owner.root.walk():
                    unit.frozen = True
                self._make_clean_legacy(rng, record)
                legacy = voc.correspondence[record.system.legacy]
                if code == "FDIS91_WITH_LEGACY":
                    self._add_type(rng, record, voc.fhir_correspondence, self.base_date)
                    self._add_type(rng, record, voc.fhir_ack, self.base_date)
                elif code == "FHIR_WITHOUT_FCTL":
                    self._add_type(rng, record, voc.fhir_correspondence, self.base_date)
                    self._drop_legacy(record, self.base_date - timedelta(days=1))
                    record.types.pop(voc.fhir_ack, None)
                elif code == "LEGACY_WITHOUT_BIN":
                    self._add_type(rng, record, legacy, record.from_date)
                    for attachment in voc.attachments:
                        record.types.pop(attachment, None)
                elif code == "TYPES_ON_INACTIVE_GLN":
                    record.non_active = True
                elif code == "BAD_CHECK_DIGIT":
                    self._break_check_digit(rng, record)
                elif code == "GLN_WITHOUT_VANS":
                    record.vans = None
                elif code == "ALL_UNITS_CLOSED":
                    closed = self.base_date - timedelta(days=rng.randint(20, 400))
                    for unit in record.owner.root.walk():
                        unit.to_date = max(closed, unit.from_date)
                        unit.updated_at = closed
                self.planted[code].append(record.gln)
        for index in range(n):
            self.planted["UNIT_WITHOUT_GLN"].extend(self._build_unaddressable_clinic(rng, index))
        for code in self.planted:
            self.planted[code].sort()

    def _break_check_digit(self, rng: random.Random, record: MutableGln) -> None:
        body = record.gln[:-1]
        wrong = (gs1_check_digit(body) + rng.randint(1, 9)) % 10
        bad = body + str(wrong)
        del self.glns[record.gln]
        record.gln = bad
        self.glns[bad] = record
        assert record.owner is not None
        record.owner.gln = bad

    def _build_unaddressable_clinic(self, rng: random.Random, index: int) -> list[str]:
        """A private clinic with no GLN anywhere on its tree, as some real ones are."""
        municipality = rng.choice(self.municipalities)
        name = f"{rng.choice(names.SPECIALTIES)}klinikken {municipality.town}"
        owner = self._unit(
            rng, name, UnitKind.INSTITUTION_OWNER, "clinic", None, "owner:private",
            municipality, gap=True,
        )  # fmt: skip
        institution = self._unit(
            rng, name, UnitKind.HEALTH_INSTITUTION, "clinic", owner, "institution:clinic",
            municipality, from_date=owner.from_date,
        )  # fmt: skip
        institution.gln_mode = GlnMode.NONE
        department = self._unit(
            rng, f"{name}, afdeling", UnitKind.ORGANISATIONAL_UNIT, "clinic", institution,
            "unit:department", municipality, from_date=owner.from_date,
        )  # fmt: skip
        # Alternate the two shapes: "false" all the way down, or inheriting up to a "false".
        department.gln_mode = GlnMode.NONE if index % 2 == 0 else GlnMode.INHERITED
        self._unit(
            rng, f"{name}, behandling", UnitKind.ORGANISATIONAL_UNIT, "clinic", department,
            "unit:section", municipality, from_date=owner.from_date,
        )  # fmt: skip
        ids = []
        for unit in owner.walk():
            unit.frozen = True
            ids.append(unit.sor_id)
        return ids

    # -- one night of changes --

    def advance(self) -> None:
        """Move to the next day: removals, closures, renames, new units, VANS changes, adoption."""
        self.day += 1
        rng = self._rng_for(f"day-{self.day}")
        today = self.snapshot_date
        yesterday = today - timedelta(days=1)
        low, high = self.spec.churn

        # Units closed two nights ago leave the extract; a GLN they owned stays in the CSV only.
        fhir_lost = 0
        for unit in [u for u in self.units.values() if u.closed_day == self.day - 2]:
            fhir_lost += self._remove_unit(unit, yesterday)

        open_units = [
            u
            for u in self.units.values()
            if not u.frozen and u.to_date is None and u.closed_day is None
        ]
        effective = self._effective_gln_objects()

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
            unit.closed_day = self.day

        # Renames.
        candidates = [u for u in open_units if u.closed_day is None]
        for unit in rng.sample(candidates, min(len(candidates), rng.randint(low, high))):
            unit.name = self._renamed(rng, unit)
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
                self._unit(
                    rng, f"{parent.name}, nyt team", UnitKind.ORGANISATIONAL_UNIT,
                    parent.category, parent, "unit:team", by_postal[parent.postal_code],
                    from_date=today,
                )  # fmt: skip
            else:
                municipality = rng.choice(self.municipalities)
                record = self._build_practice(rng, "gp", municipality, from_date=today)
                for code, (edi_id, _since) in list(record.types.items()):
                    record.types[code] = (edi_id, today)
                record.ended.clear()
                record.from_date = record.updated_at = today

        # VANS changes.
        movable = [
            g
            for g in self.glns.values()
            if g.owner is not None and not g.frozen and not g.non_active and g.vans
        ]
        for record in rng.sample(movable, min(len(movable), rng.randint(low, high))):
            record.vans = rng.choice([v for v in VANS_NAMES if v != record.vans])
            record.updated_at = today

        self._adoption_step(rng, today, yesterday, at_least=fhir_lost + 1)
        # After the night's own churn: SOR publishes what was submitted yesterday on top of it.
        self._apply_submissions(today, yesterday)

    def _apply_submissions(self, today: date, yesterday: date) -> None:
        entries = self._submissions.get(self.day, ())
        if not entries:
            return
        # Its own stream, so the churn above draws the same numbers with or without submissions.
        rng = self._rng_for(f"sorus-{self.day}")
        voc = self.vocabulary
        for entry in entries:
            record = self.glns.get(entry.gln)
            if record is None or record.non_active:
                # Closed overnight (or never there): SOR would not publish types on it.
                logger.info(
                    "SORUS %s change %s: GLN %s is gone on day %d; skipped",
                    entry.ticket,
                    entry.change_id,
                    entry.gln,
                    self.day,
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
                # _add_type), and a re-registration replaces an ended one.
                record.types[code] = (edi_id or voc.pick_version(code, rng), today)
                record.ended = [row for row in record.ended if row[0] != code]
            else:
                if code not in record.types:
                    continue  # already absent, as asked
                self._end_type(record, code, yesterday)
            record.updated_at = today

    def _adoption_step(
        self, rng: random.Random, today: date, yesterday: date, at_least: int
    ) -> None:
        voc = self.vocabulary
        legacy = voc.legacy_correspondence
        eligible = [
            g
            for g in self.glns.values()
            if g.owner is not None
            and not g.frozen
            and not g.non_active
            and g.system.certified_fhir
            and voc.fhir_correspondence not in g.types
            and any(c in g.types for c in legacy)
        ]
        adopted = 0
        for record in eligible:
            if rng.random() < record.system.daily_fhir:
                self._adopt(rng, record, today, drop_share=0.35)
                record.updated_at = today
                adopted += 1
        # Keep adoption visibly growing even in the tiny profile, also on a night when GLNs
        # with FDIS91 left the extract.
        waiting = [g for g in eligible if voc.fhir_correspondence not in g.types]
        rng.shuffle(waiting)
        while adopted < at_least and waiting:
            record = waiting.pop()
            self._adopt(rng, record, today, drop_share=0.35)
            record.updated_at = today
            adopted += 1
        # Some of yesterday's leftovers clean up their obsolete types.
        for record in self.glns.values():
            if (
                not record.frozen
                and voc.fhir_correspondence in record.types
                and any(c in record.types for c in legacy)
                and record.types[voc.fhir_correspondence][1] < today
                and rng.random() < 0.1
            ):
                self._drop_legacy(record, yesterday)

    def _renamed(self, rng: random.Random, unit: MutableUnit) -> str:
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

    def _effective_gln_objects(self) -> dict[str, MutableGln | None]:
        result: dict[str, MutableGln | None] = {}
        for owner in self.owners:
            stack: list[tuple[MutableUnit, MutableGln | None]] = [(owner, None)]
            while stack:
                unit, inherited = stack.pop()
                if unit.gln_mode is GlnMode.OWN and unit.gln is not None:
                    mine: MutableGln | None = self.glns.get(unit.gln)
                elif unit.gln_mode is GlnMode.INHERITED and unit.parent is not None:
                    mine = inherited
                else:
                    mine = None
                result[unit.sor_id] = mine
                stack.extend((child, mine) for child in unit.children)
        return result

    def _remove_unit(self, unit: MutableUnit, last_day: date) -> int:
        """Drop a closed leaf from the extract; returns 1 when it took an FDIS91 GLN along."""
        if unit.children:
            return 0  # only leaves are ever closed, but never orphan a child
        if unit.parent is not None:
            unit.parent.children.remove(unit)
        else:
            self.owners.remove(unit)
        del self.units[unit.sor_id]
        if unit.gln_mode is GlnMode.OWN and unit.gln is not None:
            record = self.glns[unit.gln]
            record.owner = None
            record.non_active = True
            record.to_date = last_day
            record.updated_at = self.snapshot_date
            had_fhir = self.vocabulary.fhir_correspondence in record.types
            for code in sorted(record.types):
                self._end_type(record, code, last_day)
            record.frozen = True
            return int(had_fhir)
        return 0

    # -- views --

    def iter_units(self) -> Iterable[MutableUnit]:
        for owner in self.owners:
            yield from owner.walk()

    def snapshot(self) -> Snapshot:
        """The current day as domain records (what a correct parser should produce)."""
        today = self.snapshot_date
        units: dict[str, Unit] = {}
        for unit in self.iter_units():
            units[unit.sor_id] = Unit(
                sor_id=unit.sor_id,
                name=unit.name,
                kind=unit.kind,
                parent_sor_id=unit.parent.sor_id if unit.parent is not None else None,
                owner_sor_id=unit.root.sor_id,
                type_code=unit.type_code,
                gln_mode=unit.gln_mode,
                gln=unit.gln if unit.gln_mode is GlnMode.OWN else None,
                from_date=unit.from_date,
                to_date=unit.to_date,
                shak=unit.shak,
                provider_number=unit.provider,
                pharmacy_number=unit.pharmacy,
                postal_code=unit.postal_code,
            )
        glns: dict[str, Gln] = {}
        capabilities: dict[str, dict[str, str | None]] = {}
        rows = 0
        by_id = self.vocabulary.by_id
        for record in self.glns.values():
            glns[record.gln] = gln_record(record)
            current = {
                code: (by_id[edi_id].version_code or None)
                for code, (edi_id, _since) in sorted(record.types.items())
            }
            if current:
                capabilities[record.gln] = current
            rows += len(record.types) + len(record.ended)
        return Snapshot(
            day=self.day,
            snapshot_date=today,
            units=units,
            glns=glns,
            capabilities=capabilities,
            capability_rows=rows,
            vocabulary=self.vocabulary,
        )


def gln_record(record: MutableGln) -> Gln:
    return Gln(
        gln=record.gln,
        active=not record.non_active,
        only_internal=record.only_internal,
        system_supplier=record.system.supplier_code,
        system_type=record.system.type_code,
        vans=record.vans or None,
        region_code=record.region_code,
        edi_administrator=record.edi_administrator,
        owner_sor_id=record.owner.sor_id if record.owner is not None else None,
        from_date=record.from_date,
        to_date=record.to_date,
    )
