"""Compare two registries and say what changed: a pure function returning a value."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, Generic, TypeVar

from soredi_sync.domain.model import Capability, Gln, Registry, Unit

R = TypeVar("R", Unit, Gln, Capability)


class EntityKind(enum.StrEnum):
    UNIT = "unit"
    GLN = "gln"
    CAPABILITY = "capability"


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class Changed(Generic[R]):
    """One record present in both registries with different field values."""

    before: R
    after: R
    fields: tuple[str, ...]

    def field_changes(self) -> dict[str, tuple[object, object]]:
        return {
            name: (getattr(self.before, name), getattr(self.after, name)) for name in self.fields
        }


@dataclass(frozen=True, slots=True)
class EntityChanges(Generic[R]):
    added: tuple[R, ...] = ()
    removed: tuple[R, ...] = ()
    changed: tuple[Changed[R], ...] = ()

    def __len__(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)

    def counts(self) -> dict[str, int]:
        return {
            ChangeKind.ADDED.value: len(self.added),
            ChangeKind.REMOVED.value: len(self.removed),
            ChangeKind.CHANGED.value: len(self.changed),
        }


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Everything that differs between the current snapshot and a fetched one."""

    units: EntityChanges[Unit] = field(default_factory=EntityChanges)
    glns: EntityChanges[Gln] = field(default_factory=EntityChanges)
    capabilities: EntityChanges[Capability] = field(default_factory=EntityChanges)

    @property
    def is_empty(self) -> bool:
        return not (self.units or self.glns or self.capabilities)

    def __len__(self) -> int:
        return len(self.units) + len(self.glns) + len(self.capabilities)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            EntityKind.UNIT.value: self.units.counts(),
            EntityKind.GLN.value: self.glns.counts(),
            EntityKind.CAPABILITY.value: self.capabilities.counts(),
        }

    def capabilities_by_gln(self) -> dict[str, dict[str, list[str]]]:
        """Per GLN, the message types added and removed (a version change counts as changed)."""
        result: dict[str, dict[str, list[str]]] = {}
        for kind, records in (
            (ChangeKind.ADDED, self.capabilities.added),
            (ChangeKind.REMOVED, self.capabilities.removed),
            (ChangeKind.CHANGED, [c.after for c in self.capabilities.changed]),
        ):
            for cap in records:
                entry = result.setdefault(cap.gln, {k.value: [] for k in ChangeKind})
                entry[kind.value].append(cap.message_type)
        for entry in result.values():
            for codes in entry.values():
                codes.sort()
        return result


def _diff_records(
    current: Mapping[Any, R],
    fetched: Mapping[Any, R],
    compared: tuple[str, ...],
    sort_key: Callable[[R], Any],
) -> EntityChanges[R]:
    if not current:
        return EntityChanges(added=tuple(sorted(fetched.values(), key=sort_key)))
    added = [fetched[key] for key in fetched.keys() - current.keys()]
    removed = [current[key] for key in current.keys() - fetched.keys()]
    changed: list[Changed[R]] = []
    for key, after in fetched.items():
        before = current.get(key)
        if before is None or before == after:
            continue
        names = tuple(n for n in compared if getattr(before, n) != getattr(after, n))
        if names:
            changed.append(Changed(before, after, names))
    # Sorted output keeps change events and their cursor order reproducible between runs.
    return EntityChanges(
        added=tuple(sorted(added, key=sort_key)),
        removed=tuple(sorted(removed, key=sort_key)),
        changed=tuple(sorted(changed, key=lambda c: sort_key(c.after))),
    )


def _names(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))


def _diff_capabilities(current: Registry, fetched: Registry) -> EntityChanges[Capability]:
    """Capabilities compared GLN by GLN, without flattening half a million rows into new dicts."""
    added: list[Capability] = []
    removed: list[Capability] = []
    changed: list[Changed[Capability]] = []
    old_by_gln = current.capabilities
    new_by_gln = fetched.capabilities
    for gln, new_types in new_by_gln.items():
        old_types = old_by_gln.get(gln)
        if old_types is None:
            added.extend(new_types.values())
            continue
        if old_types == new_types:
            continue
        for message_type, cap in new_types.items():
            old = old_types.get(message_type)
            if old is None:
                added.append(cap)
            elif old.version_code != cap.version_code:
                changed.append(Changed(old, cap, ("version_code",)))
        removed.extend(cap for t, cap in old_types.items() if t not in new_types)
    for gln, old_types in old_by_gln.items():
        if gln not in new_by_gln:
            removed.extend(old_types.values())
    key = attrgetter("gln", "message_type")
    return EntityChanges(
        added=tuple(sorted(added, key=key)),
        removed=tuple(sorted(removed, key=key)),
        changed=tuple(sorted(changed, key=lambda c: key(c.after))),
    )


def diff(current: Registry | None, fetched: Registry) -> ChangeSet:
    """What turns ``current`` into ``fetched``; with no current registry, everything is added."""
    empty = Registry.build((), (), ())
    base = current if current is not None else empty
    return ChangeSet(
        units=_diff_records(base.units, fetched.units, _names(Unit), attrgetter("sor_id")),
        glns=_diff_records(base.glns, fetched.glns, _names(Gln), attrgetter("gln")),
        capabilities=_diff_capabilities(base, fetched),
    )


def removal_ratios(current: Registry | None, changes: ChangeSet) -> dict[str, float]:
    """Share of the current GLNs and capabilities that ``changes`` would remove."""
    if current is None:
        return {"glns": 0.0, "capabilities": 0.0}
    gln_total = len(current.glns)
    cap_total = current.capability_count
    return {
        "glns": len(changes.glns.removed) / gln_total if gln_total else 0.0,
        "capabilities": len(changes.capabilities.removed) / cap_total if cap_total else 0.0,
    }


def implausible_removals(
    current: Registry | None,
    changes: ChangeSet,
    max_gln_ratio: float,
    max_capability_ratio: float,
) -> list[str]:
    """Reasons to refuse ``changes`` as implausible; empty when they look like normal churn.

    Fail closed: a truncated or half-empty file parses fine yet looks like mass deletion, so a
    pull that removes more than the configured share is refused until an operator confirms it.
    """
    ratios = removal_ratios(current, changes)
    reasons = []
    if ratios["glns"] > max_gln_ratio:
        reasons.append(
            f"{len(changes.glns.removed)} of {len(current.glns) if current else 0} GLNs "
            f"({ratios['glns']:.1%}) would be removed, limit {max_gln_ratio:.0%}"
        )
    if ratios["capabilities"] > max_capability_ratio:
        reasons.append(
            f"{len(changes.capabilities.removed)} of "
            f"{current.capability_count if current else 0} GLN message types "
            f"({ratios['capabilities']:.1%}) would be removed, limit {max_capability_ratio:.0%}"
        )
    return reasons
