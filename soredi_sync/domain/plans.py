"""Change plans: registration changes in SOR-EDI (add FDIS91/FCTL, remove DIS91/XDIS91).

A plan covers the GLNs of one or more institution owners and lists items: one GLN, one action
(add or remove), one message type, an optional version code and the reason (a finding code or
the plan's goal). Items move planned → submitted (handed to SOR as a worklist) → confirmed,
pending or diverged, judged against a later snapshot by :func:`verify_item`.

Everything here is pure: building a plan reads an :class:`AuditView` of one snapshot, and
verification reads a :class:`Registry`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from soredi_sync.domain.audit import AuditView, Owner, OwnerKind, audit
from soredi_sync.domain.model import Registry

SWITCH_TO_CARECOMMUNICATION = "carecommunication"
# Goals a plan can be built for: ``--switch-to`` targets and ``--from-findings`` codes.
SWITCH_TARGETS = (SWITCH_TO_CARECOMMUNICATION,)
FINDING_CODES = ("FDIS91_WITH_LEGACY", "FHIR_WITHOUT_FCTL")
SWITCH_REASON = "SWITCH_TO_CARECOMMUNICATION"


class PlanAction(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"


class ItemState(enum.StrEnum):
    PLANNED = "planned"  # in the plan, not yet handed to SOR
    SUBMITTED = "submitted"  # handed to SOR (worklist written); not verified since
    CONFIRMED = "confirmed"  # the current snapshot shows the change
    PENDING = "pending"  # submitted, the current snapshot does not show it yet
    DIVERGED = "diverged"  # the GLN is gone or inactive, or the change was reversed
    REJECTED = "rejected"  # SORUS refused the change; SOR will not publish it


# States :func:`verify_item` re-evaluates: everything handed to SOR.
VERIFIABLE = frozenset(
    {ItemState.SUBMITTED, ItemState.CONFIRMED, ItemState.PENDING, ItemState.DIVERGED}
)


class InvalidPlanRequest(ValueError):
    """A plan cannot be built as asked (unknown goal or finding code, no owners)."""


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """One change to make in SOR-EDI."""

    gln: str
    owner_sor_id: str
    action: PlanAction
    message_type: str
    version_code: str | None
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.gln, self.message_type, self.action.value)


def gln_owners(view: AuditView) -> dict[str, Owner]:
    """GLN → its institution owner, by the audit's owner look-up (carrier unit's owner)."""
    owners: dict[str, Owner] = {}
    registry = view.registry
    for gln, record in registry.glns.items():
        carrier = view.carrier_by_gln.get(gln)
        if carrier is None and record.owner_sor_id:
            carrier = registry.units.get(record.owner_sor_id)
        owner = view.owner_of_unit(carrier)
        if owner is not None:
            owners[gln] = owner
    return owners


def institution_owners(view: AuditView) -> dict[str, Owner]:
    """Every institution owner (root unit) of the registry, by SOR-ID."""
    found: dict[str, Owner] = {}
    for unit in view.registry.units.values():
        if unit.owner_sor_id == unit.sor_id:
            owner = view.owner_of_unit(unit)
            if owner is not None:
                found[owner.sor_id] = owner
    return found


def owners_of_kind(view: AuditView, kind: OwnerKind) -> list[str]:
    return sorted(o.sor_id for o in institution_owners(view).values() if o.kind is kind)


def _one(codes: Iterable[str], what: str) -> str:
    ordered = sorted(codes)
    if not ordered:
        raise InvalidPlanRequest(f"the message-type table has no {what}")
    return ordered[0]


def switch_to_carecommunication(view: AuditView, owners: Iterable[str]) -> list[ItemDraft]:
    """For every active GLN of ``owners`` taking legacy correspondence: add FDIS91 and FCTL where
    missing, and remove DIS91/XDIS91 (FDIS91 is then present or being added)."""
    wanted = set(owners)
    fdis = _one(view.fhir_correspondence, "FHIR correspondence type")
    fctl = _one(view.fhir_acknowledgement, "FHIR acknowledgement type")
    items: list[ItemDraft] = []
    for gln, owner in sorted(gln_owners(view).items()):
        record = view.registry.glns[gln]
        if owner.sor_id not in wanted or not record.active:
            continue
        types = view.types_of(gln)
        legacy = types & view.legacy_correspondence
        if not legacy:
            continue

        changes: list[tuple[PlanAction, str]] = []
        if not types & view.fhir_correspondence:
            changes.append((PlanAction.ADD, fdis))
        if not types & view.fhir_acknowledgement:
            changes.append((PlanAction.ADD, fctl))
        changes.extend((PlanAction.REMOVE, code) for code in sorted(legacy))
        items.extend(
            ItemDraft(gln, owner.sor_id, action, code, None, SWITCH_REASON)
            for action, code in changes
        )
    return items


def from_findings(view: AuditView, owners: Iterable[str], code: str) -> list[ItemDraft]:
    """Items that resolve every ``code`` finding on GLNs of ``owners``.

    ``FDIS91_WITH_LEGACY`` → remove the legacy correspondence types; ``FHIR_WITHOUT_FCTL`` → add
    FCTL.
    """
    if code not in FINDING_CODES:
        raise InvalidPlanRequest(
            f"no plan can be built from finding {code!r}; use one of {', '.join(FINDING_CODES)}"
        )
    wanted = set(owners)
    owner_of = gln_owners(view)
    findings = [
        f
        for f in audit(view.registry, view.context, view.on)
        if f.code == code and f.gln is not None
    ]
    items: list[ItemDraft] = []
    for finding in findings:
        gln = finding.gln
        assert gln is not None
        owner = owner_of.get(gln)
        if owner is None or owner.sor_id not in wanted:
            continue
        types = view.types_of(gln)
        if code == "FDIS91_WITH_LEGACY":
            items.extend(
                ItemDraft(gln, owner.sor_id, PlanAction.REMOVE, mt, None, code)
                for mt in sorted(types & view.legacy_correspondence)
            )
        else:
            fctl = _one(view.fhir_acknowledgement, "FHIR acknowledgement type")
            items.append(ItemDraft(gln, owner.sor_id, PlanAction.ADD, fctl, None, code))
    return sorted(items, key=lambda i: i.key)


def verify_item(
    gln: str,
    action: PlanAction,
    message_type: str,
    previous: ItemState,
    registry: Registry,
) -> ItemState:
    """The state of one submitted item against ``registry``.

    Confirmed when the registry shows the change (an added type present, a removed one gone);
    diverged when the GLN is gone or inactive, or when a change once confirmed was reversed;
    otherwise pending.
    """
    record = registry.glns.get(gln)
    if record is None or not record.active:
        return ItemState.DIVERGED
    present = message_type in registry.capabilities.get(gln, {})
    done = present if action is PlanAction.ADD else not present
    if done:
        return ItemState.CONFIRMED
    if previous is ItemState.CONFIRMED:
        return ItemState.DIVERGED
    return ItemState.PENDING


def count_states(states: Iterable[ItemState]) -> dict[str, int]:
    counts = {s.value: 0 for s in ItemState}
    for state in states:
        counts[state.value] += 1
    return counts


def planned_types(
    types_by_gln: Mapping[str, frozenset[str]], items: Iterable[ItemDraft | PlanChange]
) -> dict[str, frozenset[str]]:
    """The message types each GLN a plan changes would advertise once the plan is carried out
    (only the GLNs it changes): its items' additions added, removals removed."""
    changed: dict[str, set[str]] = {}
    for item in items:
        types = changed.setdefault(item.gln, set(types_by_gln.get(item.gln, frozenset())))
        if item.action is PlanAction.ADD:
            types.add(item.message_type)
        else:
            types.discard(item.message_type)
    return {gln: frozenset(types) for gln, types in changed.items()}


class PlanChange(Protocol):
    """What :func:`planned_types` reads of a plan item (a draft or a stored item)."""

    @property
    def gln(self) -> str: ...

    @property
    def action(self) -> PlanAction: ...

    @property
    def message_type(self) -> str: ...
