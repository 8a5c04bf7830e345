"""SOR and SOR-EDI as FHIR R4 mCSD resources: every mapping rule, each resource validated."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.identifiers import SOR_ID_SYSTEM
from soredi_sync.domain.mcsd import (
    EHMI_MESSAGE_DEFINITIONS,
    GLN_SYSTEM,
    MEDCOM_EVENT_CODES,
    MESSAGE_TYPE_SYSTEM,
    NO_MESSAGE_TYPES,
    ORGANIZATION_PERIOD,
    SNOMED_CT,
    UNIT_KIND_SYSTEM,
    URI_SYSTEM,
    VANS_SYSTEM,
    DirectoryContext,
    Version,
    directory,
    endpoint,
    organization,
)
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Capability, Gln, Registry, UnitKind
from soredi_sync.reference_data import ReferenceData
from tests.support.factories import gln, registry, unit
from tests.support.mcsd import assert_valid_r4, r4_problems

KMD = "41000035001"
TAKEN = datetime(2026, 3, 2, 3, 15, 7, tzinfo=UTC)
V1 = Version(1, TAKEN)
TODAY = date(2026, 3, 2)

CARE_COMMUNICATION = (
    "http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/"
    "MedComCareCommunicationMessageDefinition"
)
ACKNOWLEDGEMENT = (
    "http://medcomfhir.dk/ig/acknowledgement/medcom-acknowledgement-message-definition"
)
DIS91_EHMI = "urn:dk:healthcare:medcom:messaging:edifact:meddis:dis91:d9134l"


@pytest.fixture(scope="module")
def context() -> DirectoryContext:
    return ReferenceData.load(config_dir()).directory_context


def codings(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def payload_for(resource: dict[str, Any], message_type: str) -> dict[str, Any]:
    [concept] = [
        c for c in resource["payloadType"] if codings(c, MESSAGE_TYPE_SYSTEM) == [message_type]
    ]
    return concept


def endpoint_of(
    context: DirectoryContext,
    *types: str,
    versions: dict[str, str] | None = None,
    **gln_fields: Any,
) -> dict[str, Any]:
    code = gln(1)
    caps = [Capability(code, t, (versions or {}).get(t)) for t in types]
    resource = endpoint(Gln(code, **gln_fields), caps, context=context, version=V1)
    assert_valid_r4(resource)
    return resource


class TestOrganization:
    def test_the_sor_id_is_the_id_and_the_official_identifier(self) -> None:
        resource = organization(unit("123", name="Klinik"), endpoint_gln=None, on=TODAY, version=V1)
        assert_valid_r4(resource)
        assert resource["id"] == "123"
        assert resource["identifier"] == [
            {"use": "official", "system": SOR_ID_SYSTEM, "value": "123"}
        ]
        assert resource["name"] == "Klinik"

    def test_a_unit_with_its_own_gln_carries_it_as_an_identifier_and_an_inheritor_does_not(
        self,
    ) -> None:
        owner = organization(unit("1", own_gln=gln(1)), endpoint_gln=gln(1), on=TODAY, version=V1)
        child = organization(unit("2", "1"), endpoint_gln=gln(1), on=TODAY, version=V1)
        assert {"system": GLN_SYSTEM, "value": gln(1)} in owner["identifier"]
        assert [i["system"] for i in child["identifier"]] == [SOR_ID_SYSTEM]

    def test_the_type_is_the_sor_snomed_code_and_the_unit_kind(self) -> None:
        resource = organization(
            unit("1", "0", type_code="22331004", kind=UnitKind.HEALTH_INSTITUTION),
            endpoint_gln=None,
            on=TODAY,
            version=V1,
        )
        assert_valid_r4(resource)
        assert [codings(t, SNOMED_CT) for t in resource["type"]] == [["22331004"], []]
        assert codings(resource["type"][1], UNIT_KIND_SYSTEM) == ["health_institution"]

    def test_a_unit_without_a_type_code_is_typed_by_its_kind_alone(self) -> None:
        resource = organization(unit("1"), endpoint_gln=None, on=TODAY, version=V1)
        assert [c["code"] for t in resource["type"] for c in t["coding"]] == ["institution_owner"]

    def test_part_of_names_the_parent_and_an_institution_owner_has_none(self) -> None:
        owner = organization(unit("1"), endpoint_gln=None, on=TODAY, version=V1)
        child = organization(unit("2", "1"), endpoint_gln=None, on=TODAY, version=V1)
        assert "partOf" not in owner
        assert child["partOf"] == {"reference": "Organization/1"}

    def test_the_endpoint_link_is_the_gln_it_is_given(self) -> None:
        resource = organization(unit("2", "1"), endpoint_gln=gln(7), on=TODAY, version=V1)
        assert resource["endpoint"] == [{"reference": f"Endpoint/{gln(7)}"}]
        assert "endpoint" not in organization(unit("2"), endpoint_gln=None, on=TODAY, version=V1)

    def test_the_postal_code_is_the_address(self) -> None:
        resource = organization(
            unit("1", postal_code=" 8200 "), endpoint_gln=None, on=TODAY, version=V1
        )
        assert resource["address"] == [{"postalCode": "8200"}]

    def test_a_blank_name_is_left_out_rather_than_sent_empty(self) -> None:
        resource = organization(unit("1", name="  "), endpoint_gln=None, on=TODAY, version=V1)
        assert_valid_r4(resource)
        assert "name" not in resource


class TestOrganizationValidity:
    def test_a_closed_unit_is_inactive_and_its_period_ends_on_its_to_date(self) -> None:
        closed = unit("1", from_date=date(2020, 1, 1), to_date=date(2025, 12, 31))
        resource = organization(closed, endpoint_gln=None, on=TODAY, version=V1)
        assert_valid_r4(resource)
        assert resource["active"] is False
        assert resource["extension"] == [
            {
                "url": ORGANIZATION_PERIOD,
                "valuePeriod": {"start": "2020-01-01", "end": "2025-12-31"},
            }
        ]

    def test_a_unit_is_active_on_its_last_day(self) -> None:
        closing = unit("1", to_date=TODAY)
        assert organization(closing, endpoint_gln=None, on=TODAY, version=V1)["active"] is True

    def test_a_unit_not_yet_open_is_inactive(self) -> None:
        future = unit("1", from_date=TODAY + timedelta(days=1))
        resource = organization(future, endpoint_gln=None, on=TODAY, version=V1)
        assert resource["active"] is False
        assert resource["extension"][0]["valuePeriod"] == {"start": "2026-03-03"}

    def test_a_unit_without_dates_has_no_period(self) -> None:
        resource = organization(unit("1"), endpoint_gln=None, on=TODAY, version=V1)
        assert resource["active"] is True
        assert "extension" not in resource

    def test_dates_that_contradict_each_other_give_no_period(self) -> None:
        odd = unit("1", from_date=date(2025, 2, 1), to_date=date(2025, 1, 1))
        resource = organization(odd, endpoint_gln=None, on=TODAY, version=V1)
        assert_valid_r4(resource)
        assert "extension" not in resource
        assert resource["active"] is False


class TestVersion:
    def test_meta_carries_the_snapshot_id_and_its_time_in_utc(self) -> None:
        copenhagen = datetime(2026, 3, 2, 4, 15, 7, 250000, tzinfo=timezone(timedelta(hours=1)))
        assert Version(42, copenhagen).meta() == {
            "versionId": "42",
            "lastUpdated": "2026-03-02T03:15:07.250000Z",
        }
        assert V1.meta()["lastUpdated"] == "2026-03-02T03:15:07Z"

    def test_a_time_without_a_time_zone_is_refused(self) -> None:
        with pytest.raises(ValueError, match="time zone"):
            Version(1, datetime(2026, 3, 2, 3, 15))


class TestEndpoint:
    def test_the_gln_is_the_id_identifier_and_address(self, context: DirectoryContext) -> None:
        resource = endpoint_of(context, "FDIS91")
        assert resource["id"] == gln(1)
        assert resource["identifier"] == [{"system": GLN_SYSTEM, "value": gln(1)}]
        assert resource["address"] == f"urn:gln:{gln(1)}"
        assert resource["connectionType"]["code"] == "medcom-vans"

    def test_an_active_gln_is_active_and_an_inactive_one_is_off(
        self, context: DirectoryContext
    ) -> None:
        assert endpoint_of(context, "FDIS91")["status"] == "active"
        assert endpoint_of(context, "FDIS91", active=False)["status"] == "off"

    def test_the_gln_status_dates_are_the_period(self, context: DirectoryContext) -> None:
        resource = endpoint_of(context, from_date=date(2019, 5, 1), to_date=date(2027, 1, 1))
        assert resource["period"] == {"start": "2019-05-01", "end": "2027-01-01"}

    def test_the_vans_is_the_managing_organization_by_its_sor_code_and_name(
        self, context: DirectoryContext
    ) -> None:
        assert endpoint_of(context, vans=KMD)["managingOrganization"] == {
            "identifier": {"system": VANS_SYSTEM, "value": KMD},
            "display": "KMD",
        }
        unnamed = endpoint_of(context, vans="99999999999")["managingOrganization"]
        assert unnamed == {"identifier": {"system": VANS_SYSTEM, "value": "99999999999"}}
        assert "managingOrganization" not in endpoint_of(context)

    def test_it_is_named_after_its_carrier_or_else_by_its_gln(
        self, context: DirectoryContext
    ) -> None:
        named = endpoint(Gln(gln(1)), [], context=context, version=V1, name="Aalborg Kommune")
        assert named["name"] == "Aalborg Kommune"
        assert endpoint_of(context)["name"] == f"GLN {gln(1)}"

    def test_capabilities_of_another_gln_are_refused(self, context: DirectoryContext) -> None:
        with pytest.raises(ValueError, match="capabilities of"):
            endpoint(Gln(gln(1)), [Capability(gln(2), "FDIS91")], context=context, version=V1)


class TestPayloadType:
    def test_fdis91_names_the_carecommunication_message_definition(
        self, context: DirectoryContext
    ) -> None:
        concept = payload_for(endpoint_of(context, "FDIS91"), "FDIS91")
        assert CARE_COMMUNICATION in codings(concept, URI_SYSTEM)
        assert codings(concept, MEDCOM_EVENT_CODES) == ["care-communication-message"]
        assert concept["coding"][0] == {"system": URI_SYSTEM, "code": CARE_COMMUNICATION}

    def test_fctl_names_the_acknowledgement_message_definition(
        self, context: DirectoryContext
    ) -> None:
        concept = payload_for(endpoint_of(context, "FCTL"), "FCTL")
        assert codings(concept, URI_SYSTEM) == [ACKNOWLEDGEMENT]

    def test_fdis20_names_the_hospital_notification_event(self, context: DirectoryContext) -> None:
        concept = payload_for(endpoint_of(context, "FDIS20"), "FDIS20")
        assert codings(concept, MEDCOM_EVENT_CODES) == ["hospital-notification-message"]

    def test_a_legacy_type_names_the_ehmi_uri_of_its_version(
        self, context: DirectoryContext
    ) -> None:
        resource = endpoint_of(context, "DIS91", versions={"DIS91": "D9134L"})
        concept = payload_for(resource, "DIS91")
        assert codings(concept, EHMI_MESSAGE_DEFINITIONS) == [DIS91_EHMI]
        assert codings(concept, URI_SYSTEM) == []
        assert concept["text"] == "DIS91 D9134L"

    def test_each_version_with_an_ehmi_uri_is_named_and_every_version_is_in_the_text(
        self, context: DirectoryContext
    ) -> None:
        resource = endpoint_of(context, "BIN01", versions={"BIN01": "B0130X,B0131X"})
        concept = payload_for(resource, "BIN01")
        assert codings(concept, EHMI_MESSAGE_DEFINITIONS) == [
            "urn:dk:healthcare:medcom:messaging:edifact:medbin:bin01:b0131x"
        ]
        assert concept["text"] == "BIN01 B0130X B0131X"

    def test_a_legacy_type_without_a_version_has_its_sor_edi_code_only(
        self, context: DirectoryContext
    ) -> None:
        concept = payload_for(endpoint_of(context, "XDIS91"), "XDIS91")
        assert concept == {
            "coding": [{"system": MESSAGE_TYPE_SYSTEM, "code": "XDIS91"}],
            "text": "XDIS91",
        }

    def test_every_type_has_its_sor_edi_code_sorted_by_code(
        self, context: DirectoryContext
    ) -> None:
        resource = endpoint_of(context, "XDIS91", "FDIS91", "FCTL", "XBIN01")
        assert [codings(c, MESSAGE_TYPE_SYSTEM) for c in resource["payloadType"]] == [
            ["FCTL"],
            ["FDIS91"],
            ["XBIN01"],
            ["XDIS91"],
        ]

    def test_a_type_unknown_to_the_registry_keeps_its_code(self, context: DirectoryContext) -> None:
        resource = endpoint_of(context, "ZZZ99")
        assert resource["payloadType"] == [
            {"coding": [{"system": MESSAGE_TYPE_SYSTEM, "code": "ZZZ99"}], "text": "ZZZ99"}
        ]
        assert "payloadMimeType" not in resource

    def test_a_gln_without_types_has_a_text_only_payload_type(
        self, context: DirectoryContext
    ) -> None:
        resource = endpoint_of(context)
        assert resource["payloadType"] == [{"text": NO_MESSAGE_TYPES}]
        assert "payloadMimeType" not in resource

    def test_the_mime_types_are_those_of_the_syntaxes_accepted(
        self, context: DirectoryContext
    ) -> None:
        resource = endpoint_of(context, "FDIS91", "XDIS91", "DIS91", "XCTL03")
        assert resource["payloadMimeType"] == [
            "application/EDIFACT",
            "application/fhir+xml",
            "text/xml",
        ]


def sample_registry() -> Registry:
    """An owner with a GLN, a health institution inheriting it, a unit with its own GLN, a
    closed unit, a unit inheriting a GLN missing from the registry, one with no GLN."""
    return Registry.build(
        [
            unit("1", own_gln=gln(1), name="Region", type_code="11111"),
            unit("2", "1", owner="1", kind=UnitKind.HEALTH_INSTITUTION, postal_code="9000"),
            unit("3", "2", owner="1", own_gln=gln(3), name="Afdeling"),
            unit("4", "2", owner="1", to_date=date(2025, 1, 31)),
            unit("5", "1", owner="1", own_gln=gln(5)),
            unit("6", "5", owner="1"),
            unit("7", "1", owner="1", inherit=False),
        ],
        [
            Gln(gln(1), vans=KMD, owner_sor_id="1"),
            Gln(gln(3), active=False, vans="81000035007"),
        ],
        [
            Capability(gln(1), "FDIS91"),
            Capability(gln(1), "FCTL"),
            Capability(gln(1), "XDIS91", "XD9134L"),
        ],
    )


class TestDirectory:
    def test_one_organization_per_unit_and_one_endpoint_per_gln_in_id_order(
        self, context: DirectoryContext
    ) -> None:
        organizations, endpoints = directory(
            sample_registry(), on=TODAY, versions=V1, context=context
        )
        assert [o["id"] for o in organizations] == ["1", "2", "3", "4", "5", "6", "7"]
        assert [e["id"] for e in endpoints] == [gln(1), gln(3)]

    def test_every_resource_is_valid_fhir_r4(self, context: DirectoryContext) -> None:
        organizations, endpoints = directory(
            sample_registry(), on=TODAY, versions=V1, context=context
        )
        for resource in organizations + endpoints:
            assert_valid_r4(resource)

    def test_an_inheriting_unit_links_the_endpoint_of_the_gln_it_inherits(
        self, context: DirectoryContext
    ) -> None:
        organizations, _ = directory(sample_registry(), on=TODAY, versions=V1, context=context)
        links = {o["id"]: [r["reference"] for r in o.get("endpoint", [])] for o in organizations}
        assert links == {
            "1": [f"Endpoint/{gln(1)}"],
            "2": [f"Endpoint/{gln(1)}"],  # inherited from 1
            "3": [f"Endpoint/{gln(3)}"],  # its own, although inactive
            "4": [f"Endpoint/{gln(1)}"],  # inherited through 2
            "5": [],  # its own GLN is not in the registry: no Endpoint to link
            "6": [],  # inherits 5's
            "7": [],  # neither owns nor inherits
        }

    def test_a_closed_unit_is_inactive_in_the_directory(self, context: DirectoryContext) -> None:
        organizations, _ = directory(sample_registry(), on=TODAY, versions=V1, context=context)
        assert [o["id"] for o in organizations if not o["active"]] == ["4"]

    def test_an_endpoint_is_named_after_the_unit_carrying_its_gln(
        self, context: DirectoryContext
    ) -> None:
        _, endpoints = directory(sample_registry(), on=TODAY, versions=V1, context=context)
        assert [(e["name"], e["status"]) for e in endpoints] == [
            ("Region", "active"),
            ("Afdeling", "off"),
        ]

    def test_versions_may_be_given_per_resource_by_mapping_or_callable(
        self, context: DirectoryContext
    ) -> None:
        later = Version(2, TAKEN + timedelta(days=1))
        small = registry([unit("1", own_gln=gln(1))], [Gln(gln(1))])
        table = {("Organization", "1"): V1, ("Endpoint", gln(1)): later}
        by_table = directory(small, on=TODAY, versions=table, context=context)
        by_call = directory(
            small, on=TODAY, versions=lambda kind, ident: table[(kind, ident)], context=context
        )
        assert by_table == by_call
        [org], [end] = by_table
        assert (org["meta"]["versionId"], end["meta"]["versionId"]) == ("1", "2")

    def test_an_id_fhir_cannot_carry_is_refused(self, context: DirectoryContext) -> None:
        with pytest.raises(ValueError, match="not a valid FHIR id"):
            organization(unit("SOR 1"), endpoint_gln=None, on=TODAY, version=V1)


class TestTheShippedEhmiTable:
    def test_it_gives_the_uri_of_a_type_and_version(self, context: DirectoryContext) -> None:
        assert context.ehmi_uris[("DIS91", "D9134L")] == DIS91_EHMI
        assert context.ehmi_uris[("XDIS91", "XD9134L")].endswith(":meddis:xdis91:xd9134l")

    def test_every_uri_is_under_the_ehmi_root_of_its_syntax(
        self, context: DirectoryContext
    ) -> None:
        roots = (
            "urn:dk:healthcare:medcom:messaging:edifact:",
            "urn:dk:healthcare:medcom:messaging:oioxml:",
        )
        assert all(uri.startswith(roots) for uri in context.ehmi_uris.values())
        assert len(context.ehmi_uris) > 90


class TestTheR4Checks:
    """The checks beyond the models catch what they claim to."""

    def resource(self, **changes: Any) -> dict[str, Any]:
        empty = DirectoryContext(MessageTypeRegistry(()), vans_names={}, ehmi_uris={})
        base = endpoint(Gln(gln(1)), [], context=empty, version=V1)
        return {**base, **changes}

    def test_a_valid_resource_has_no_problems(self) -> None:
        assert r4_problems(self.resource()) == []

    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"payloadType": []}, "payloadType: empty array"),
            ({"name": ""}, "name: empty or blank string"),
            ({"name": None}, "name: null is not a value in FHIR JSON"),
            ({"identifier": [{}]}, "identifier[0]: empty object"),
            ({"id": "x" * 65}, "id: not a FHIR id"),
            ({"id": "a_b"}, "id: not a FHIR id"),
            ({"status": "on"}, "status: required, from endpoint-status"),
            ({"connectionType": [{"code": "x"}]}, "connectionType: required, one Coding (R4)"),
            ({"period": {"start": "2025-02-01", "end": "2025-01-01"}}, "period: per-1"),
            ({"period": {"start": "2025-02-30"}}, "period.start: no such day"),
            ({"meta": {"lastUpdated": "2026-03-02T03:15"}}, "meta.lastUpdated: not an instant"),
            ({"address": "urn:gln:1 2"}, "address: required, an absolute url"),
            ({"payloadMimeType": ["fhir"]}, "payloadMimeType[0]: not a MIME type"),
        ],
    )
    def test_a_broken_rule_is_named(self, changes: dict[str, Any], problem: str) -> None:
        assert any(p.startswith(problem) for p in r4_problems(self.resource(**changes)))

    def test_an_organization_part_of_itself_is_named(self) -> None:
        resource = organization(unit("2", "2"), endpoint_gln=None, on=TODAY, version=V1)
        assert "partOf: an organization part of itself" in r4_problems(resource)

    def test_an_element_the_model_does_not_know_is_refused(self) -> None:
        with pytest.raises(ValueError, match="Extra inputs"):
            assert_valid_r4(self.resource(colour="blue"))
