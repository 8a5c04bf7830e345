"""The audit finds exactly what the sandbox generator planted (its manifest), and no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.audit import audit
from soredi_sync.parsing.load import load_registry_from_dir
from soredi_sync.reference_data import ReferenceData
from soredi_sync.sandbox.generate import Manifest, generate

MANIFEST_CODES = (
    "FDIS91_WITH_LEGACY",
    "FHIR_WITHOUT_FCTL",
    "LEGACY_WITHOUT_BIN",
    "TYPES_ON_INACTIVE_GLN",
    "BAD_CHECK_DIGIT",
    "GLN_WITHOUT_VANS",
    "UNIT_WITHOUT_GLN",
    "ALL_UNITS_CLOSED",
)


@pytest.fixture(scope="module")
def small_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("small-sandbox")
    generate(directory, profile="small", seed=5, days=2)
    return directory


def _found(findings, code: str) -> set[str]:
    key = "sor_id" if code == "UNIT_WITHOUT_GLN" else "gln"
    return {getattr(f, key) for f in findings if f.code == code}


class TestAuditOnTheSandbox:
    @pytest.mark.parametrize("day", [0, 1, 2])
    @pytest.mark.parametrize("code", MANIFEST_CODES)
    def test_every_planted_defect_is_found_and_nothing_else_under_its_code(
        self, small_sandbox: Path, day: int, code: str
    ) -> None:
        manifest = Manifest.load(small_sandbox)
        registry = load_registry_from_dir(small_sandbox / f"day-{day:03d}")
        findings = audit(
            registry, ReferenceData.load(config_dir()).audit_context, registry.source_date
        )
        assert _found(findings, code) == set(manifest.day(day).defects[code])

    def test_every_finding_names_an_owner_when_its_gln_has_a_unit(self, small_sandbox) -> None:
        registry = load_registry_from_dir(small_sandbox / "day-000")
        findings = audit(
            registry, ReferenceData.load(config_dir()).audit_context, registry.source_date
        )
        attached = [f for f in findings if f.sor_id is not None]
        assert attached and all(f.owner is not None for f in attached)
        assert {f.owner.kind.value for f in attached} >= {"region", "municipality", "private"}
