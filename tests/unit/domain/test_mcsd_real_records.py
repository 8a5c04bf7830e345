"""The three real SOR records (2010, SOR XML v1) as FHIR: each resource valid R4, the tree kept.

The records are published ones, read where they lie (``tests/support/reference.py``): the
mapping is checked on what SOR really writes, not only on the sandbox's units.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.identifiers import SOR_ID_SYSTEM
from soredi_sync.domain.mcsd import GLN_SYSTEM, SNOMED_CT, DirectoryContext, Version, directory
from soredi_sync.domain.model import Registry
from soredi_sync.parsing.sor_xml import parse_sor_xml
from soredi_sync.reference_data import ReferenceData
from tests.support.mcsd import assert_valid_r4
from tests.support.reference import sample

RECORDS = ("ONE_APOTEK", "ONE_PRAKSIS", "ONE_SYGEHUS")
Resources = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def context() -> DirectoryContext:
    return ReferenceData.load(config_dir()).directory_context


def as_directory(name: str, context: DirectoryContext) -> Resources:
    record = parse_sor_xml(io.BytesIO(sample(name)))
    registry = Registry.build(record.units, record.glns, [], source_date=record.snapshot_date)
    assert record.snapshot_date is not None, f"{name} has no snapshot date"
    assert record.created_at is not None, f"{name} has no creation time"
    version = Version(1, record.created_at)
    return directory(registry, on=record.snapshot_date, versions=version, context=context)


def by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {resource["id"]: resource for resource in resources}


def identifier_values(resource: dict[str, Any], system: str) -> list[str]:
    return [i["value"] for i in resource.get("identifier", []) if i["system"] == system]


@pytest.mark.parametrize("name", RECORDS)
def test_every_resource_of_a_real_record_is_valid_r4(name: str, context: DirectoryContext) -> None:
    organizations, endpoints = as_directory(name, context)
    assert organizations
    for resource in [*organizations, *endpoints]:
        assert_valid_r4(resource)


@pytest.mark.parametrize("name", RECORDS)
def test_a_real_record_keeps_its_tree_and_its_sor_ids(name: str, context: DirectoryContext) -> None:
    record = parse_sor_xml(io.BytesIO(sample(name)))
    organizations = by_id(as_directory(name, context)[0])
    assert set(organizations) == {unit.sor_id for unit in record.units}
    for unit in record.units:
        resource = organizations[unit.sor_id]
        assert identifier_values(resource, SOR_ID_SYSTEM) == [unit.sor_id]
        parent = resource.get("partOf", {}).get("reference")
        assert parent == (f"Organization/{unit.parent_sor_id}" if unit.parent_sor_id else None)
        assert resource.get("name") == unit.name


def test_the_pharmacy_owner_carries_its_gln_and_every_unit_links_its_endpoint(
    context: DirectoryContext,
) -> None:
    organizations, endpoints = as_directory("ONE_APOTEK", context)
    owner = by_id(organizations)["306011000016003"]
    assert identifier_values(owner, GLN_SYSTEM) == ["5790000173624"]
    assert [e["id"] for e in endpoints] == ["5790000173624"]
    assert endpoints[0]["name"] == "Værløse Apotek"
    linked = {o["id"]: [r["reference"] for r in o.get("endpoint", [])] for o in organizations}
    assert linked["306011000016003"] == ["Endpoint/5790000173624"]


def test_a_hospital_record_without_a_gln_has_no_endpoint(context: DirectoryContext) -> None:
    organizations, endpoints = as_directory("ONE_SYGEHUS", context)
    assert endpoints == []
    assert all("endpoint" not in o for o in organizations)
    names = {o["id"]: o["name"] for o in organizations}
    assert names["347831000016005"] == "Roskilde Øjenklinik, beh. afsnit"


def test_a_real_record_types_each_unit_by_its_own_sor_code_or_not_at_all(
    context: DirectoryContext,
) -> None:
    """The practice's owner and clinic carry an OwnerType and an InstitutionType; its
    organisational unit has a speciality but no UnitType, so no SNOMED CT type."""
    record = parse_sor_xml(io.BytesIO(sample("ONE_PRAKSIS")))
    organizations = by_id(as_directory("ONE_PRAKSIS", context)[0])
    seen = {}
    for unit in record.units:
        types = organizations[unit.sor_id]["type"]
        seen[unit.sor_id] = [
            c["code"] for t in types for c in t["coding"] if c["system"] == SNOMED_CT
        ]
    assert seen == {
        "8321000016007": ["550891000005100"],
        "8331000016009": ["394761003"],
        "8341000016002": [],
    }
