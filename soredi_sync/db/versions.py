"""How records map to the version tables: columns, row to record, and "valid at snapshot N".

Shared by the registry's reads, the snapshot writer and the webhooks' owner map.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, cast

from sqlalchemy import Table, and_, or_

from soredi_sync.db.models import Base, CapabilityVersion, GlnVersion, Snapshot, UnitVersion
from soredi_sync.domain.model import Capability, Gln, GlnMode, Unit, UnitKind
from soredi_sync.ports.records import SnapshotInfo

# Rows fetched at a time when reading a whole snapshot.
STREAM_ROWS = 10_000


def snapshot_info(row: Snapshot) -> SnapshotInfo:
    return SnapshotInfo(
        id=row.id,
        source=row.source,
        taken_at=row.taken_at,
        source_date=row.source_date,
        run_id=row.run_id,
        content_hash=row.content_hash,
        unit_count=row.unit_count,
        gln_count=row.gln_count,
        capability_count=row.capability_count,
        change_count=row.change_count,
        baseline=row.baseline,
    )


# Version-table columns carry the record fields under the same names.
UNIT_COLUMNS = tuple(f.name for f in fields(Unit))
GLN_COLUMNS = tuple(f.name for f in fields(Gln))
CAP_COLUMNS = tuple(f.name for f in fields(Capability))


def unit_from_row(row: Any) -> Unit:
    return Unit(
        sor_id=row.sor_id,
        name=row.name,
        kind=UnitKind(row.kind),
        parent_sor_id=row.parent_sor_id,
        owner_sor_id=row.owner_sor_id,
        type_code=row.type_code,
        gln_mode=GlnMode(row.gln_mode),
        gln=row.gln,
        from_date=row.from_date,
        to_date=row.to_date,
        shak=row.shak,
        provider_number=row.provider_number,
        pharmacy_number=row.pharmacy_number,
        postal_code=row.postal_code,
    )


def gln_from_row(row: Any) -> Gln:
    return Gln(**{name: getattr(row, name) for name in GLN_COLUMNS})


def cap_from_row(row: Any) -> Capability:
    return Capability(row.gln, row.message_type, row.version_code)


def as_of(model: type[UnitVersion | GlnVersion | CapabilityVersion], snapshot_id: int) -> Any:
    """Rows valid at ``snapshot_id``: introduced at or before it, not closed at or before it."""
    return and_(
        model.valid_from <= snapshot_id,
        or_(model.valid_to.is_(None), model.valid_to > snapshot_id),
    )


def table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)
