"""The registry as the rest of the program sees it: units, GLNs and capabilities.

Records are frozen dataclasses keyed by natural IDs (SOR-ID, GLN, GLN × message type) so that
two snapshots can be compared field by field (see :mod:`soredi_sync.domain.diff`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date


class UnitKind(enum.StrEnum):
    """The three levels of the SOR tree."""

    INSTITUTION_OWNER = "institution_owner"  # IE: region, municipality or private owner
    HEALTH_INSTITUTION = "health_institution"  # SI/HI
    ORGANISATIONAL_UNIT = "organisational_unit"  # OE/OU, nestable


class GlnMode(enum.StrEnum):
    """How a unit gets its location number."""

    OWN = "own"  # the unit carries an EanLocationCodeEntity
    INHERITED = "inherited"  # EntityInheritedIndicator=true: the parent's effective GLN
    NONE = "none"  # EntityInheritedIndicator=false


@dataclass(frozen=True, slots=True)
class Unit:
    """One SOR unit (institution owner, health institution or organisational unit)."""

    sor_id: str
    name: str
    kind: UnitKind
    parent_sor_id: str | None
    owner_sor_id: str  # the institution owner at the root of this unit's tree
    type_code: str | None  # OwnerType / InstitutionType / UnitType (SNOMED CT)
    gln_mode: GlnMode
    gln: str | None  # set only when gln_mode is OWN
    from_date: date | None = None
    to_date: date | None = None
    shak: str | None = None
    provider_number: str | None = None  # ydernummer
    pharmacy_number: str | None = None
    postal_code: str | None = None

    def is_open_on(self, day: date) -> bool:
        """Valid on ``day`` by its SOR status dates (a missing date is open-ended)."""
        if self.from_date is not None and day < self.from_date:
            return False
        return self.to_date is None or day <= self.to_date


@dataclass(frozen=True, slots=True)
class Gln:
    """A location number and its SOR attributes.

    ``vans`` is the communication supplier code (e.g. ``41000035001`` KMD).
    ``owner_sor_id`` is the unit that carries the GLN's EanLocationCodeEntity, when known.
    """

    gln: str
    active: bool = True
    only_internal: bool = False
    system_supplier: str | None = None
    system_type: str | None = None
    vans: str | None = None
    region_code: str | None = None
    edi_administrator: str | None = None
    owner_sor_id: str | None = None
    from_date: date | None = None
    to_date: date | None = None


@dataclass(frozen=True, slots=True, order=True)
class Capability:
    """One SOR-EDI row: this GLN can receive this MedCom message type."""

    gln: str
    message_type: str  # standard ID such as FDIS91, XDIS91, DIS91
    # e.g. XD9134L; several versions of one type are joined, sorted, with commas
    version_code: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.gln, self.message_type)


@dataclass(frozen=True)
class Registry:
    """One complete, validated state of SOR + SOR-EDI: what a snapshot holds.

    ``capabilities`` maps a GLN to its capabilities keyed by message type.
    """

    units: Mapping[str, Unit]
    glns: Mapping[str, Gln]
    capabilities: Mapping[str, Mapping[str, Capability]]
    source_date: date | None = None
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def build(
        cls,
        units: Iterable[Unit],
        glns: Iterable[Gln],
        capabilities: Iterable[Capability],
        source_date: date | None = None,
    ) -> Registry:
        caps: dict[str, dict[str, Capability]] = {}
        for cap in capabilities:
            by_type = caps.setdefault(cap.gln, {})
            seen = by_type.get(cap.message_type)
            if seen is not None and seen.version_code != cap.version_code:
                cap = _merge_versions(seen, cap)
            by_type[cap.message_type] = cap
        return cls(
            units={u.sor_id: u for u in units},
            glns={g.gln: g for g in glns},
            capabilities=caps,
            source_date=source_date,
        )

    @property
    def capability_count(self) -> int:
        return sum(len(by_type) for by_type in self.capabilities.values())

    def iter_capabilities(self) -> Iterable[Capability]:
        for by_type in self.capabilities.values():
            yield from by_type.values()

    def message_types(self, gln: str) -> list[str]:
        return sorted(self.capabilities.get(gln, {}))

    def units_using(self, gln: str) -> list[str]:
        """SOR-IDs whose effective GLN is ``gln`` (owners and inheritors)."""
        return sorted(
            sor_id for sor_id in self.units if effective_gln(self.units, sor_id).gln == gln
        )


def _merge_versions(first: Capability, second: Capability) -> Capability:
    """One GLN listing a type in several versions (BIN01 B0130X and B0131X) keeps them all.

    The versions are joined, sorted, with commas, so the row stays one capability per message
    type and a change in the set of versions shows up as a change of that capability.
    """
    versions = {
        v for cap in (first, second) if cap.version_code for v in cap.version_code.split(",")
    }
    return Capability(first.gln, first.message_type, ",".join(sorted(versions)) or None)


@dataclass(frozen=True, slots=True)
class EffectiveGln:
    """A unit's effective GLN and the SOR-IDs walked to find it, starting at the unit.

    ``inherited_from`` is the SOR-ID of the unit that owns the GLN when it is not the unit itself.
    """

    gln: str | None
    path: tuple[str, ...]

    @property
    def inherited_from(self) -> str | None:
        if self.gln is None or len(self.path) < 2:
            return None
        return self.path[-1]


def effective_gln(units: Mapping[str, Unit], sor_id: str) -> EffectiveGln:
    """Follow ``EntityInheritedIndicator`` up the tree from ``sor_id``.

    A unit with its own GLN answers with it; an inheriting unit asks its parent; a unit that
    neither owns nor inherits has none. A broken chain (missing parent, a cycle) gives ``None``.

    :raises KeyError: when ``sor_id`` is not in ``units``.
    """
    path: list[str] = []
    current: Unit | None = units[sor_id]
    seen: set[str] = set()
    while current is not None and current.sor_id not in seen:
        seen.add(current.sor_id)
        path.append(current.sor_id)
        if current.gln_mode is GlnMode.OWN:
            return EffectiveGln(current.gln, tuple(path))
        if current.gln_mode is GlnMode.NONE or current.parent_sor_id is None:
            break
        current = units.get(current.parent_sor_id)
    return EffectiveGln(None, tuple(path))


def record_fields(record: object) -> dict[str, object]:
    """The fields of a record as a plain dict (enums and dates kept as they are)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}  # type: ignore[arg-type]
