"""Who owns a GLN: the one rule behind owner-restricted tokens, reads and webhook filters.

A GLN belongs to the institution owners of the units that carry it as their own. A GLN no unit
carries (SOR-EDI still lists it) belongs to the owner of the unit its location record names. A
GLN with neither belongs to no one, and an owner-restricted caller never sees it (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def gln_owners(
    carriers: Iterable[str],
    registered: str | None,
    owner_of_unit: Callable[[str], str | None],
) -> set[str]:
    """SOR-IDs of the institution owners of a GLN.

    ``carriers``: SOR-IDs of the units that carry the GLN as their own; ``registered``: SOR-ID
    of the unit its location record names (used only when no unit carries it);
    ``owner_of_unit``: a unit's institution owner, or ``None`` when the unit is unknown.
    """
    units = tuple(carriers) or ((registered,) if registered else ())
    return {owner for owner in map(owner_of_unit, units) if owner}


def may_see(restricted_to: frozenset[str] | set[str], owners: Iterable[str | None]) -> bool:
    """Whether a caller restricted to ``restricted_to`` (empty: everyone) may see data whose
    institution owners are ``owners``; data with no known owner is seen only unrestricted."""
    if not restricted_to:
        return True
    return any(owner in restricted_to for owner in owners if owner)
