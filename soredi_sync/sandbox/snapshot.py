"""One day of the sandbox as domain records, the defects it holds, and what changed.

:class:`Snapshot` is what a correct parser should produce from that day's files; its
:meth:`~Snapshot.defects` are the audit findings the manifest promises (every one, planted or
arisen), and :func:`diff_snapshots` the day-to-day changes a sync should store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from soredi_sync.domain.gln import has_valid_check_digit
from soredi_sync.domain.model import Capability, Gln, GlnMode, Registry, Unit
from soredi_sync.sandbox.vocabulary import Vocabulary

# --- defects -------------------------------------------------------------------------------------

DEFECT_CODES: tuple[str, ...] = (
    "FDIS91_WITH_LEGACY",
    "FHIR_WITHOUT_FCTL",
    "LEGACY_WITHOUT_BIN",
    "TYPES_ON_INACTIVE_GLN",
    "BAD_CHECK_DIGIT",
    "GLN_WITHOUT_VANS",
    "UNIT_WITHOUT_GLN",
    "ALL_UNITS_CLOSED",
)

# What each list in the manifest means, exactly (capabilities = current map rows only).
DEFECT_DEFINITIONS: dict[str, str] = {
    "FDIS91_WITH_LEGACY": "GLNs whose current types include FDIS91 and DIS91 or XDIS91",
    "FHIR_WITHOUT_FCTL": "GLNs with a current FHIR type (FDIS91, FDIS20) but no FCTL",
    "LEGACY_WITHOUT_BIN": (
        "GLNs with DIS91 or XDIS91, without FDIS91, and with neither BIN01 nor XBIN01 "
        "(the generator never lets a GLN with FDIS91 lack BIN next to a legacy type, so the "
        "list is the same without the FDIS91 condition)"
    ),
    "TYPES_ON_INACTIVE_GLN": "GLNs with NonActiveIndicator=true and at least one current type",
    "BAD_CHECK_DIGIT": "GLNs (XML or CSV) that are 13 digits but fail the GS1 check digit",
    "GLN_WITHOUT_VANS": "GLNs (XML or CSV) with an empty communication supplier (VANS)",
    "UNIT_WITHOUT_GLN": (
        "SOR-IDs of units with no owned GLN on their path to the root (the unit itself and all "
        "its ancestors); all such units are open"
    ),
    "ALL_UNITS_CLOSED": (
        "GLNs used by at least one unit (owner or inheritor, following "
        "EntityInheritedIndicator=true) where every such unit has ToDate before the snapshot "
        "date; all such GLNs are active and carry types"
    ),
}


@dataclass(frozen=True)
class Snapshot:
    """One day's register as domain records: what a correct parser should produce.

    ``capabilities`` holds current rows only (GLN -> message type -> version code or None);
    ``capability_rows`` counts every row written to LocationsCodeEDITypeMap.csv, ended ones
    included.
    """

    day: int
    snapshot_date: date
    units: Mapping[str, Unit]
    glns: Mapping[str, Gln]
    capabilities: Mapping[str, Mapping[str, str | None]]
    capability_rows: int
    vocabulary: Vocabulary = field(repr=False)

    def registry(self) -> Registry:
        return Registry.build(
            self.units.values(),
            self.glns.values(),
            (
                Capability(gln, code, version)
                for gln, by_type in self.capabilities.items()
                for code, version in by_type.items()
            ),
            source_date=self.snapshot_date,
        )

    @property
    def capability_count(self) -> int:
        return sum(len(by_type) for by_type in self.capabilities.values())

    def effective_glns(self) -> dict[str, str | None]:
        """Each unit's GLN by strict inheritance (``EntityInheritedIndicator``), as the domain
        model's :func:`~soredi_sync.domain.model.effective_gln` computes it."""
        result: dict[str, str | None] = {}
        for sor_id in self.units:
            chain: list[str] = []
            current: str | None = sor_id
            found: str | None = None
            while current is not None:
                if current in result:
                    found = result[current]
                    break
                unit = self.units.get(current)
                if unit is None:
                    break
                chain.append(current)
                if unit.gln_mode is GlnMode.OWN:
                    found = unit.gln
                    break
                if unit.gln_mode is GlnMode.NONE:
                    break
                current = unit.parent_sor_id
            for walked in chain:
                result[walked] = found
        return result

    def units_without_gln_on_path(self) -> list[str]:
        memo: dict[str, bool] = {}

        def has_gln(sor_id: str) -> bool:
            chain = []
            current: str | None = sor_id
            answer = False
            while current is not None:
                if current in memo:
                    answer = memo[current]
                    break
                unit = self.units[current]
                chain.append(current)
                if unit.gln_mode is GlnMode.OWN:
                    answer = True
                    break
                current = unit.parent_sor_id
            for walked in chain:
                memo[walked] = answer
            return answer

        return sorted(sor_id for sor_id in self.units if not has_gln(sor_id))

    def defects(self) -> dict[str, list[str]]:
        """Every defect of each code on this day (not only the planted ones), ids sorted."""
        voc = self.vocabulary
        fhir_corr, fhir_ack = voc.fhir_correspondence, voc.fhir_ack
        legacy = voc.legacy_correspondence
        out: dict[str, list[str]] = {code: [] for code in DEFECT_CODES}
        for gln, by_type in self.capabilities.items():
            if not by_type:
                continue
            has_legacy = any(code in by_type for code in legacy)
            has_fhir_corr = fhir_corr in by_type
            if has_fhir_corr and has_legacy:
                out["FDIS91_WITH_LEGACY"].append(gln)
            if fhir_ack not in by_type and any(c in by_type for c in voc.fhir_types):
                out["FHIR_WITHOUT_FCTL"].append(gln)
            if has_legacy and not has_fhir_corr and not any(c in by_type for c in voc.attachments):
                out["LEGACY_WITHOUT_BIN"].append(gln)
            record = self.glns.get(gln)
            if record is not None and not record.active:
                out["TYPES_ON_INACTIVE_GLN"].append(gln)
        for gln, record in self.glns.items():
            if not has_valid_check_digit(gln):
                out["BAD_CHECK_DIGIT"].append(gln)
            if not record.vans:
                out["GLN_WITHOUT_VANS"].append(gln)
        out["UNIT_WITHOUT_GLN"] = self.units_without_gln_on_path()
        open_users: dict[str, bool] = {}
        for sor_id, gln_value in self.effective_glns().items():
            if gln_value is None:
                continue
            is_open = self.units[sor_id].is_open_on(self.snapshot_date)
            open_users[gln_value] = open_users.get(gln_value, False) or is_open
        out["ALL_UNITS_CLOSED"] = [g for g, any_open in open_users.items() if not any_open]
        return {code: sorted(ids) for code, ids in out.items()}

    def counts(self) -> dict[str, int]:
        fhir = self.vocabulary.fhir_correspondence
        legacy = self.vocabulary.legacy_correspondence
        attached = {g.gln for g in self.glns.values() if g.owner_sor_id is not None}
        return {
            "units": len(self.units),
            "open_units": sum(1 for u in self.units.values() if u.is_open_on(self.snapshot_date)),
            "glns": len(self.glns),
            "glns_in_xml": len(attached),
            "glns_only_in_csv": len(self.glns) - len(attached),
            "capability_rows": self.capability_rows,
            "capabilities": self.capability_count,
            "edi_types": len(self.vocabulary.edi_types),
            "glns_with_fdis91": sum(1 for t in self.capabilities.values() if fhir in t),
            "glns_with_legacy_correspondence": sum(
                1 for t in self.capabilities.values() if any(c in t for c in legacy)
            ),
        }


def diff_snapshots(before: Snapshot, after: Snapshot) -> dict[str, object]:
    """What changed between two days, by natural key, from the generator's own records.

    Units and GLNs count as changed when any field of their domain record differs; a capability
    is keyed by (GLN, message type) and counts as changed when only its version code differs.
    """

    def keyed(old: Mapping[str, object], new: Mapping[str, object]) -> dict[str, list[str]]:
        added = sorted(k for k in new if k not in old)
        removed = sorted(k for k in old if k not in new)
        changed = sorted(k for k in new if k in old and new[k] != old[k])
        return {"added": added, "removed": removed, "changed": changed}

    units = keyed(before.units, after.units)
    glns = keyed(before.glns, after.glns)
    cap_added: list[str] = []
    cap_removed: list[str] = []
    cap_changed: list[str] = []
    for gln in sorted(set(before.capabilities) | set(after.capabilities)):
        old = before.capabilities.get(gln, {})
        new = after.capabilities.get(gln, {})
        if old == new:
            continue
        for code in sorted(set(old) | set(new)):
            if code not in old:
                cap_added.append(f"{gln}:{code}")
            elif code not in new:
                cap_removed.append(f"{gln}:{code}")
            elif old[code] != new[code]:
                cap_changed.append(f"{gln}:{code}")
    caps = {"added": cap_added, "removed": cap_removed, "changed": cap_changed}

    def summary(lists: dict[str, list[str]]) -> dict[str, object]:
        return {**{k: len(v) for k, v in lists.items()}, "ids": lists}

    return {"units": summary(units), "glns": summary(glns), "capabilities": summary(caps)}
