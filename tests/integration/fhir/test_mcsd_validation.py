"""Every Organization and Endpoint made from the synced tiny sandbox is valid FHIR R4."""

from __future__ import annotations

import json
from typing import Any

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.domain.mcsd import (
    EHMI_MESSAGE_DEFINITIONS,
    NO_MESSAGE_TYPES,
    URI_SYSTEM,
    Version,
    directory,
)
from tests.support.mcsd import assert_valid_r4

Resources = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture
def resources(synced_app: App) -> Resources:
    """The directory of the current snapshot, on the day its source was published."""
    index = synced_app.routing().resolver().index
    registry = index.registry
    return directory(
        registry,
        on=registry.source_date or index.snapshot.taken_at.date(),
        versions=Version(index.snapshot.id, index.snapshot.taken_at),
        context=synced_app.reference.directory_context,
    )


def codes(resource: dict[str, Any], system: str) -> set[str]:
    return {
        coding["code"]
        for concept in resource["payloadType"]
        for coding in concept.get("coding", [])
        if coding["system"] == system
    }


class TestTheSandboxDirectory:
    def test_every_resource_is_valid_fhir_r4(self, synced_app: App, resources: Resources) -> None:
        organizations, endpoints = resources
        registry = synced_app.routing().resolver().index.registry
        assert len(organizations) == len(registry.units)
        assert len(endpoints) == len(registry.glns)
        for resource in organizations + endpoints:
            assert_valid_r4(resource)
            json.dumps(resource, allow_nan=False)

    def test_every_reference_resolves_within_the_directory(self, resources: Resources) -> None:
        organizations, endpoints = resources
        targets = {f"Organization/{o['id']}" for o in organizations} | {
            f"Endpoint/{e['id']}" for e in endpoints
        }
        references = [o["partOf"]["reference"] for o in organizations if "partOf" in o] + [
            link["reference"] for o in organizations for link in o.get("endpoint", [])
        ]
        assert references
        assert set(references) <= targets

    def test_ids_are_unique_per_resource_type(self, resources: Resources) -> None:
        for kind in resources:
            assert len({r["id"] for r in kind}) == len(kind)

    def test_the_validated_resources_cover_every_mapping_rule(self, resources: Resources) -> None:
        """So that the validation above saw each shape the mapping makes."""
        organizations, endpoints = resources
        inherited = [o for o in organizations if "endpoint" in o and len(o["identifier"]) == 1]
        assert inherited, "a unit linking an inherited GLN's Endpoint"
        assert [o for o in organizations if o["active"] is False and "extension" in o]
        assert {e["status"] for e in endpoints} == {"active", "off"}
        assert [e for e in endpoints if e["payloadType"] == [{"text": NO_MESSAGE_TYPES}]]
        assert [e for e in endpoints if "managingOrganization" not in e]
        canonicals = set().union(*(codes(e, URI_SYSTEM) for e in endpoints))
        assert any("CareCommunication" in c for c in canonicals)
        assert set().union(*(codes(e, EHMI_MESSAGE_DEFINITIONS) for e in endpoints))
