"""The generator's mutable units and GLNs, kept between nights, and their domain records.

The domain's :class:`~soredi_sync.domain.model.Unit` and :class:`~soredi_sync.domain.model.Gln`
are frozen; the world changes these in place and turns them into domain records per snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from soredi_sync.domain.model import Gln, GlnMode, Unit, UnitKind
from soredi_sync.sandbox.catalog import System


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


def gln_record(record: MutableGln) -> Gln:
    """``record`` as the domain's frozen :class:`~soredi_sync.domain.model.Gln`."""
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


def unit_record(unit: MutableUnit) -> Unit:
    """``unit`` as the domain's frozen :class:`~soredi_sync.domain.model.Unit`."""
    return Unit(
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
