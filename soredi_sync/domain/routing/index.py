"""What routing needs of one snapshot (:class:`RoutingIndex`), arranged for O(1) look-ups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from soredi_sync.domain.gln import has_valid_check_digit
from soredi_sync.domain.model import GlnMode, Registry
from soredi_sync.domain.routing.model import SnapshotRef


@dataclass(frozen=True)
class RoutingIndex:
    """What routing needs of one snapshot, arranged for O(1) look-ups."""

    snapshot: SnapshotRef
    registry: Registry
    types_by_gln: Mapping[str, frozenset[str]]
    owners_by_gln: Mapping[str, tuple[str, ...]]  # SOR-IDs of the units carrying the GLN
    # GLNs of the snapshot whose GS1 check digit is wrong (checked once, not per decision)
    bad_check_digits: frozenset[str] = frozenset()

    @classmethod
    def build(cls, snapshot: SnapshotRef, registry: Registry) -> RoutingIndex:
        owners: dict[str, list[str]] = {}
        for unit in registry.units.values():
            if unit.gln_mode is GlnMode.OWN and unit.gln:
                owners.setdefault(unit.gln, []).append(unit.sor_id)
        return cls(
            snapshot=snapshot,
            registry=registry,
            types_by_gln={g: frozenset(t) for g, t in registry.capabilities.items()},
            owners_by_gln={g: tuple(sorted(s)) for g, s in owners.items()},
            bad_check_digits=frozenset(g for g in registry.glns if not has_valid_check_digit(g)),
        )
