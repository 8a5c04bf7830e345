"""Audit findings over one snapshot: what is wrong or out of date in SOR-EDI, per owner.

Each rule is a small pure function over an :class:`AuditView` (the registry plus the facts the
rules need, computed once) yielding :class:`Finding` records with a stable code. Message types are
read from the registry data: a "legacy correspondence" type is any type of the correspondence
business message in a legacy syntax, "FHIR" means the fhir syntax, and so on.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from soredi_sync.domain.gln import has_valid_check_digit
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Gln, GlnMode, Registry, Unit

CORRESPONDENCE = "correspondence"
ACKNOWLEDGEMENT = "acknowledgement"
BINARY_ATTACHMENT = "binary-attachment"


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class OwnerKind(enum.StrEnum):
    REGION = "region"
    MUNICIPALITY = "municipality"
    PRIVATE = "private"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Owner:
    """The institution owner (IE) a finding belongs to."""

    sor_id: str
    name: str
    kind: OwnerKind
    region_code: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    gln: str | None
    sor_id: str | None  # the unit concerned (for GLN findings: the unit carrying the GLN)
    owner: Owner | None
    vans: str | None
    system_supplier: str | None
    system_type: str | None
    region_code: str | None
    text: str

    @property
    def key(self) -> tuple[str, str, str]:
        """Stable identity across snapshots (for new/resolved)."""
        return (self.code, self.gln or "", self.sor_id or "")


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    title: str
    check: Callable[[AuditView], Iterable[Finding]]


@dataclass(frozen=True)
class AuditContext:
    """Data the rules need beyond the registry, all from ``config/``.

    :param owner_kinds: SOR OwnerType code → region/municipality/private ([assumed] codes)
    :param certified_system_types: SOR system-type codes certified for FDIS91
    :param region_names: region code (1081–1085) → name
    """

    message_types: MessageTypeRegistry
    owner_kinds: Mapping[str, OwnerKind]
    certified_system_types: frozenset[str]
    region_names: Mapping[str, str] = field(default_factory=dict)


class AuditView:
    """The registry plus what every rule needs, computed once per audit."""

    def __init__(self, registry: Registry, context: AuditContext, on: date) -> None:
        self.registry = registry
        self.context = context
        self.on = on
        types = context.message_types
        self.fhir_correspondence = {
            mt.code for mt in types.for_business_message(CORRESPONDENCE) if mt.syntax == "fhir"
        }
        self.legacy_correspondence = {
            mt.code
            for mt in types.for_business_message(CORRESPONDENCE)
            if mt.syntax in ("oioxml", "edifact")
        }
        self.fhir_acknowledgement = {
            mt.code for mt in types.for_business_message(ACKNOWLEDGEMENT) if mt.syntax == "fhir"
        }
        self.binary = {mt.code for mt in types.for_business_message(BINARY_ATTACHMENT)}
        self.fhir_types = {mt.code for mt in types if mt.syntax == "fhir"}

    @cached_property
    def users_by_gln(self) -> dict[str, list[Unit]]:
        """Units using each GLN: the carrier and every unit inheriting it."""
        units = self.registry.units
        children: dict[str, list[Unit]] = {}
        for unit in units.values():
            if unit.parent_sor_id is not None:
                children.setdefault(unit.parent_sor_id, []).append(unit)
        users: dict[str, list[Unit]] = {}
        for unit in units.values():
            if unit.gln_mode is not GlnMode.OWN or not unit.gln:
                continue
            found = users.setdefault(unit.gln, [])
            stack = [unit]
            while stack:
                current = stack.pop()
                found.append(current)
                stack.extend(
                    child
                    for child in children.get(current.sor_id, ())
                    if child.gln_mode is GlnMode.INHERITED
                )
        return users

    @cached_property
    def carrier_by_gln(self) -> dict[str, Unit]:
        carriers: dict[str, Unit] = {}
        for unit in self.registry.units.values():
            if unit.gln_mode is GlnMode.OWN and unit.gln and unit.gln not in carriers:
                carriers[unit.gln] = unit
        return carriers

    def owner_of_unit(self, unit: Unit | None) -> Owner | None:
        if unit is None:
            return None
        root = self.registry.units.get(unit.owner_sor_id)
        if root is None:
            return None
        return self._owner(root)

    def _owner(self, root: Unit) -> Owner:
        kind = self.context.owner_kinds.get(root.type_code or "", OwnerKind.OTHER)
        return Owner(root.sor_id, root.name, kind)

    def gln_finding(self, code: str, gln: Gln, text: str) -> Finding:
        rule = RULES_BY_CODE[code]
        carrier = self.carrier_by_gln.get(gln.gln)
        if carrier is None and gln.owner_sor_id:
            carrier = self.registry.units.get(gln.owner_sor_id)
        owner = self.owner_of_unit(carrier)
        if owner is not None and gln.region_code:
            owner = Owner(owner.sor_id, owner.name, owner.kind, gln.region_code)
        return Finding(
            code=code,
            severity=rule.severity,
            gln=gln.gln,
            sor_id=carrier.sor_id if carrier else None,
            owner=owner,
            vans=gln.vans,
            system_supplier=gln.system_supplier,
            system_type=gln.system_type,
            region_code=gln.region_code,
            text=text,
        )

    def types_of(self, gln: str) -> set[str]:
        return set(self.registry.capabilities.get(gln, {}))


# -- rules ------------------------------------------------------------------------------------


def _fdis91_with_legacy(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        types = view.types_of(gln)
        fhir = sorted(types & view.fhir_correspondence)
        left = sorted(types & view.legacy_correspondence)
        if fhir and left:
            yield view.gln_finding(
                "FDIS91_WITH_LEGACY",
                record,
                f"GLN (lokationsnummer) {gln} receives the correspondence message "
                f"(korrespondancemeddelelse) as {'/'.join(fhir)} but still advertises "
                f"{'/'.join(left)} in SOR-EDI: remove the obsolete types.",
            )


def _fhir_without_fctl(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        types = view.types_of(gln)
        fhir = sorted((types & view.fhir_types) - view.fhir_acknowledgement)
        if fhir and not types & view.fhir_acknowledgement:
            yield view.gln_finding(
                "FHIR_WITHOUT_FCTL",
                record,
                f"GLN {gln} advertises FHIR types ({'/'.join(fhir)}) but no FHIR acknowledgement "
                f"(kvittering, {'/'.join(sorted(view.fhir_acknowledgement))}) in SOR-EDI.",
            )


def _legacy_only(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        types = view.types_of(gln)
        if not record.active:
            continue
        if types & view.legacy_correspondence and not types & view.fhir_correspondence:
            yield view.gln_finding(
                "LEGACY_ONLY",
                record,
                f"GLN {gln} receives correspondence only as "
                f"{'/'.join(sorted(types & view.legacy_correspondence))}: FHIR senders reach it "
                "only while the VANS converts (see `soredi-sync cutover`).",
            )


def _legacy_without_bin(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        types = view.types_of(gln)
        legacy = types & view.legacy_correspondence
        if legacy and not types & view.fhir_correspondence and not types & view.binary:
            yield view.gln_finding(
                "LEGACY_WITHOUT_BIN",
                record,
                f"GLN {gln} receives {'/'.join(sorted(legacy))} but no binary attachment type "
                f"({'/'.join(sorted(view.binary))}): attachments from CareCommunication "
                "cannot be converted to it.",
            )


def _types_on_inactive_gln(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        if not record.active and (types := view.types_of(gln)):
            yield view.gln_finding(
                "TYPES_ON_INACTIVE_GLN",
                record,
                f"GLN {gln} is marked inactive (NonActiveIndicator) but still advertises "
                f"{len(types)} message types in SOR-EDI.",
            )


def _all_units_closed(view: AuditView) -> Iterator[Finding]:
    for gln, users in view.users_by_gln.items():
        record = view.registry.glns.get(gln)
        if record is None or not view.types_of(gln):
            continue
        if all(not unit.is_open_on(view.on) for unit in users):
            yield view.gln_finding(
                "ALL_UNITS_CLOSED",
                record,
                f"Every unit using GLN {gln} is closed (ToDate passed) but the GLN still "
                "advertises message types in SOR-EDI.",
            )


def _bad_check_digit(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        if not has_valid_check_digit(gln):
            yield view.gln_finding(
                "BAD_CHECK_DIGIT",
                record,
                f"GLN (lokationsnummer) {gln} fails the GS1 mod-10 check digit.",
            )


def _gln_without_vans(view: AuditView) -> Iterator[Finding]:
    for gln, record in view.registry.glns.items():
        if not record.vans:
            yield view.gln_finding(
                "GLN_WITHOUT_VANS",
                record,
                f"GLN {gln} has no communication supplier (VANS) in SOR.",
            )


def _unit_without_gln(view: AuditView) -> Iterator[Finding]:
    units = view.registry.units
    has_gln_on_path: dict[str, bool] = {}

    def on_path(unit: Unit) -> bool:
        chain: list[str] = []
        current: Unit | None = unit
        answer = False
        while current is not None:
            known = has_gln_on_path.get(current.sor_id)
            if known is not None:
                answer = known
                break
            chain.append(current.sor_id)
            if current.gln_mode is GlnMode.OWN and current.gln:
                answer = True
                break
            if current.parent_sor_id is None or current.parent_sor_id in chain:
                break
            current = units.get(current.parent_sor_id)
        for sor_id in chain:
            has_gln_on_path[sor_id] = answer
        return answer

    rule = RULES_BY_CODE["UNIT_WITHOUT_GLN"]
    for unit in units.values():
        if unit.is_open_on(view.on) and not on_path(unit):
            yield Finding(
                code=rule.code,
                severity=rule.severity,
                gln=None,
                sor_id=unit.sor_id,
                owner=view.owner_of_unit(unit),
                vans=None,
                system_supplier=None,
                system_type=None,
                region_code=None,
                text=f"Unit {unit.sor_id} ({unit.name}) has no GLN (lokationsnummer) on its "
                "path to the institution owner: it cannot be addressed.",
            )


def _uncertified_fdis91(view: AuditView) -> Iterator[Finding]:
    certified = view.context.certified_system_types
    for gln, record in view.registry.glns.items():
        if view.types_of(gln) & view.fhir_correspondence and (
            not record.system_type or record.system_type not in certified
        ):
            yield view.gln_finding(
                "FDIS91_UNCERTIFIED_SYSTEM",
                record,
                f"GLN {gln} advertises FDIS91 on system type {record.system_type or '(none)'}, "
                "which is not in the list of systems certified for CareCommunication.",
            )


RULES: tuple[Rule, ...] = (
    Rule(
        "FDIS91_WITH_LEGACY",
        Severity.WARNING,
        "FDIS91 next to obsolete DIS91/XDIS91",
        _fdis91_with_legacy,
    ),
    Rule("FHIR_WITHOUT_FCTL", Severity.ERROR, "FHIR type without FCTL", _fhir_without_fctl),
    Rule("LEGACY_ONLY", Severity.INFO, "Legacy-only correspondence receiver", _legacy_only),
    Rule(
        "LEGACY_WITHOUT_BIN",
        Severity.ERROR,
        "Legacy receiver without XBIN01/BIN01",
        _legacy_without_bin,
    ),
    Rule(
        "TYPES_ON_INACTIVE_GLN",
        Severity.WARNING,
        "Message types on an inactive GLN",
        _types_on_inactive_gln,
    ),
    Rule(
        "ALL_UNITS_CLOSED",
        Severity.WARNING,
        "Message types on a GLN whose units are all closed",
        _all_units_closed,
    ),
    Rule("BAD_CHECK_DIGIT", Severity.ERROR, "GLN with a bad check digit", _bad_check_digit),
    Rule("GLN_WITHOUT_VANS", Severity.ERROR, "GLN without VANS", _gln_without_vans),
    Rule("UNIT_WITHOUT_GLN", Severity.WARNING, "Unit with no GLN on its path", _unit_without_gln),
    Rule(
        "FDIS91_UNCERTIFIED_SYSTEM",
        Severity.WARNING,
        "FDIS91 on a system not certified for it",
        _uncertified_fdis91,
    ),
)
RULES_BY_CODE = {rule.code: rule for rule in RULES}


def audit(
    registry: Registry, context: AuditContext, on: date, rules: Iterable[Rule] = RULES
) -> list[Finding]:
    """Every finding of ``rules`` on ``registry`` as it stands on ``on``, sorted by key."""
    view = AuditView(registry, context, on)
    findings = [finding for rule in rules for finding in rule.check(view)]
    return sorted(findings, key=lambda f: f.key)


def in_scope(
    findings: Iterable[Finding],
    *,
    owners: Iterable[str] | None = None,
    owner_name: str | None = None,
    region_code: str | None = None,
    vans: str | None = None,
    codes: Iterable[str] | None = None,
) -> list[Finding]:
    """The findings of some owners (SOR-IDs or a name fragment), a region, a VANS or codes."""
    owner_ids = set(owners) if owners is not None else None
    wanted = set(codes) if codes is not None else None
    name = owner_name.casefold() if owner_name else None
    result = []
    for finding in findings:
        owner = finding.owner
        if owner_ids is not None and (owner is None or owner.sor_id not in owner_ids):
            continue
        if name is not None and (owner is None or name not in owner.name.casefold()):
            continue
        if region_code is not None and finding.region_code != region_code:
            continue
        if vans is not None and finding.vans != vans:
            continue
        if wanted is not None and finding.code not in wanted:
            continue
        result.append(finding)
    return result


@dataclass(frozen=True)
class FindingChanges:
    new: list[Finding]
    resolved: list[Finding]


def compare(before: Iterable[Finding], after: Iterable[Finding]) -> FindingChanges:
    """Findings new in ``after`` and resolved since ``before``, by stable key."""
    old = {f.key: f for f in before}
    now = {f.key: f for f in after}
    return FindingChanges(
        new=[now[k] for k in sorted(now.keys() - old.keys())],
        resolved=[old[k] for k in sorted(old.keys() - now.keys())],
    )


# -- adoption ---------------------------------------------------------------------------------


class AdoptionDimension(enum.StrEnum):
    REGION = "region"
    OWNER_TYPE = "owner-type"
    VANS = "vans"


@dataclass(frozen=True, slots=True)
class AdoptionCounts:
    """Active GLNs taking correspondence: FHIR only, legacy only, or both."""

    fhir_only: int = 0
    legacy_only: int = 0
    both: int = 0

    @property
    def accepts_fdis91(self) -> int:
        return self.fhir_only + self.both

    @property
    def total(self) -> int:
        return self.fhir_only + self.legacy_only + self.both

    def plus(self, kind: str) -> AdoptionCounts:
        return AdoptionCounts(
            self.fhir_only + (kind == "fhir_only"),
            self.legacy_only + (kind == "legacy_only"),
            self.both + (kind == "both"),
        )


def adoption(
    registry: Registry,
    context: AuditContext,
    on: date,
    by: AdoptionDimension | None = None,
) -> dict[str, AdoptionCounts]:
    """CareCommunication adoption among active GLNs, in all (key ``"all"``) or per group."""
    view = AuditView(registry, context, on)
    result: dict[str, AdoptionCounts] = {}
    for gln, record, kind in _adopting(view):
        group = _adoption_group(view, gln, record, by)
        result[group] = result.get(group, AdoptionCounts()).plus(kind)
    return dict(sorted(result.items()))


def adoption_key(by: AdoptionDimension | None) -> str:
    """How a summary names the figures of ``by``: ``"all"`` or the dimension's value."""
    return by.value if by is not None else "all"


# owner SOR-ID -> adoption_key -> group -> counts
OwnerAdoption = dict[str, dict[str, dict[str, AdoptionCounts]]]


def adoption_by_owner(registry: Registry, context: AuditContext, on: date) -> OwnerAdoption:
    """:func:`adoption` of each institution owner's GLNs, in all and per dimension.

    A GLN counts for the owner :func:`gln_owner` names (none: it is left out), so the figures of
    a set of owners are the sums of theirs, equal to :func:`adoption` of a registry holding only
    those owners' GLNs.
    """
    view = AuditView(registry, context, on)
    result: OwnerAdoption = {}
    for gln, record, kind in _adopting(view):
        owner = gln_owner(view, gln, record)
        if owner is None:
            continue
        figures = result.setdefault(owner.sor_id, {})
        for by in (None, *AdoptionDimension):
            groups = figures.setdefault(adoption_key(by), {})
            group = _adoption_group(view, gln, record, by)
            groups[group] = groups.get(group, AdoptionCounts()).plus(kind)
    return result


def gln_owner(view: AuditView, gln: str, record: Gln) -> Owner | None:
    """The institution owner a GLN belongs to for an owner-restricted caller: that of its first
    carrier, else that of the unit its location record names (as the owner's findings are)."""
    carrier = view.carrier_by_gln.get(gln)
    if carrier is None and record.owner_sor_id:
        carrier = view.registry.units.get(record.owner_sor_id)
    return view.owner_of_unit(carrier)


def _adopting(view: AuditView) -> Iterator[tuple[str, Gln, str]]:
    """Each active GLN taking the correspondence message, with ``fhir_only``, ``legacy_only``
    or ``both``."""
    for gln, record in view.registry.glns.items():
        if not record.active:
            continue
        types = view.types_of(gln)
        fhir = bool(types & view.fhir_correspondence)
        legacy = bool(types & view.legacy_correspondence)
        if fhir or legacy:
            yield gln, record, "both" if fhir and legacy else "fhir_only" if fhir else "legacy_only"


def _adoption_group(view: AuditView, gln: str, record: Gln, by: AdoptionDimension | None) -> str:
    if by is None:
        return "all"
    if by is AdoptionDimension.VANS:
        return record.vans or "(none)"
    if by is AdoptionDimension.REGION:
        code = record.region_code or ""
        return view.context.region_names.get(code, code or "(none)")
    owner = view.owner_of_unit(view.carrier_by_gln.get(gln))
    return owner.kind.value if owner else "(unknown)"
