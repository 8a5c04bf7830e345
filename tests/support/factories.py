"""Builders for domain records in tests."""

from __future__ import annotations

from typing import Any

from soredi_sync.domain.gln import with_check_digit
from soredi_sync.domain.model import Capability, Gln, GlnMode, Registry, Unit, UnitKind


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
