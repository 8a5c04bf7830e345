"""Builders for domain records in tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.gln import with_check_digit
from soredi_sync.domain.model import Capability, Gln, GlnMode, Registry, Unit, UnitKind
from soredi_sync.ports.records import SnapshotInfo


def gln(n: int) -> str:
    return with_check_digit(f"579000{n:06d}")


def unit(
    sor_id: str,
    parent: str | None = None,
    *,
    owner: str | None = None,
    own_gln: str | None = None,
    inherit: bool = True,
    **kwargs: Any,
) -> Unit:
    kind = (
        UnitKind.INSTITUTION_OWNER
        if parent is None
        else kwargs.pop("kind", UnitKind.ORGANISATIONAL_UNIT)
    )
    if own_gln:
        mode = GlnMode.OWN
    elif parent is not None and inherit:
        mode = GlnMode.INHERITED
    else:
        mode = GlnMode.NONE
    return Unit(
        sor_id=sor_id,
        name=kwargs.pop("name", f"Unit {sor_id}"),
        kind=kind,
        parent_sor_id=parent,
        owner_sor_id=owner or (parent or sor_id),
        type_code=kwargs.pop("type_code", None),
        gln_mode=mode,
        gln=own_gln,
        **kwargs,
    )


def registry(
    units: list[Unit], glns: list[Gln], caps: dict[str, list[str]] | None = None
) -> Registry:
    return Registry.build(
        units,
        glns,
        [Capability(g, t) for g, types in (caps or {}).items() for t in types],
    )


def snapshot_info(snapshot_id: int, day: int | None = None) -> SnapshotInfo:
    """A stored snapshot's record, taken at 06:00 UTC on November ``day`` 2026 (default: the
    snapshot's id); snapshot 1 is the baseline."""
    day = day or snapshot_id
    return SnapshotInfo(
        id=snapshot_id,
        source="sor-filer",
        taken_at=datetime(2026, 11, day, 6, 0, tzinfo=UTC),
        source_date=date(2026, 11, day),
        run_id=snapshot_id,
        content_hash="x",
        unit_count=1,
        gln_count=1,
        capability_count=1,
        change_count=0,
        baseline=snapshot_id == 1,
    )
