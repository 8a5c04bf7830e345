"""The read-only FHIR R4 API under ``/fhir`` on both engines: read, search with every
supported parameter, paging by ``next`` links, includes, owner restrictions, history, the
CapabilityStatement, and OperationOutcome errors.

The directory is hand-made (``tests/support/fhir_directory.py``), its versions recorded for the
two snapshots of ``synced_app``; the last class follows the real mapping through a sync.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.observability.metrics import Metrics
from soredi_sync.services.fhir_directory import RESOURCE_TYPES
from soredi_sync.services.fhir_search import DirectoryCache
from soredi_sync.services.tokens import new_token
from tests.support.api import ALL_SCOPES, PROBLEM, QUIET_LOG, bearer, make_client
from tests.support.app import make_settings
from tests.support.cli_runner import Cli
from tests.support.fhir_api import (
    FHIR,
    Headers,
    assert_outcome,
    bookmark,
    fetch,
    history,
    ids,
    link,
    page_through,
    relative,
    replay,
    search,
    typed,
)
from tests.support.fhir_directory import (
    BULK,
    CLINIC,
    CONNECTION_SYSTEM,
    EA,
    EB,
    EC,
    ED,
    GLN_SYSTEM,
    KIND_SYSTEM,
    SNOMED,
    SOR_SYSTEM,
    Directory,
    endpoint,
    instant,
    organization,
    record_third,
    second_snapshot,
)

ALL_ORGANIZATIONS = sorted(o["id"] for o in second_snapshot()["Organization"])
ALL_ENDPOINTS = sorted(e["id"] for e in second_snapshot()["Endpoint"])


# -- read -------------------------------------------------------------------------------------


class TestRead:
    def test_an_organization_is_its_current_version_with_etag_and_last_modified(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        response = client.get("/fhir/Organization/101", headers=reader)
        assert response.status_code == 200
        assert response.headers["content-type"] == FHIR
        body = response.json()
        assert body["name"] == "Kardiologisk Afdeling Nord"
        assert body["meta"]["versionId"] == str(directory.second.id)
        assert response.headers["etag"] == f'W/"{directory.second.id}"'
        assert response.headers["last-modified"].endswith(" GMT")

    def test_an_unchanged_organization_keeps_the_version_of_the_first_snapshot(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        body = fetch(client, "/fhir/Organization/100", reader)
        assert body["meta"]["versionId"] == str(directory.first.id)
        assert {k: v for k, v in body.items() if k != "meta"} == organization(
            "100", "Region Alpha Hospital", endpoint=EA
        )

    def test_an_endpoint_is_read_by_its_gln(self, client: TestClient, reader: Headers) -> None:
        body = fetch(client, f"/fhir/Endpoint/{EB}", reader)
        assert {k: v for k, v in body.items() if k != "meta"} == endpoint(EB, status="off")

    def test_a_deleted_resource_is_410_gone(self, client: TestClient, reader: Headers) -> None:
        assert_outcome(client.get("/fhir/Organization/300", headers=reader), 410, "deleted")
        assert_outcome(client.get(f"/fhir/Endpoint/{EC}", headers=reader), 410, "deleted")

    def test_an_unknown_resource_is_404(self, client: TestClient, reader: Headers) -> None:
        assert_outcome(client.get("/fhir/Organization/999", headers=reader), 404, "not-found")
        assert_outcome(client.get("/fhir/Endpoint/nope", headers=reader), 404, "not-found")

    def test_an_unsupported_resource_type_is_404(self, client: TestClient, reader: Headers) -> None:
        assert_outcome(client.get("/fhir/Location/1", headers=reader), 404, "not-found")


# -- search -----------------------------------------------------------------------------------


class TestOrganizationSearch:
    def test_without_parameters_every_organization_in_id_order_with_the_total(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(client, reader, "Organization", _count="1000")
        assert bundle["total"] == len(ALL_ORGANIZATIONS)
        assert ids(bundle) == ALL_ORGANIZATIONS
        entry = bundle["entry"][0]
        assert entry["fullUrl"] == f"http://testserver/fhir/Organization/{entry['resource']['id']}"

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("101", ["101"]),
            ("101,200,999", ["101", "200"]),
            ("300", []),  # deleted
        ],
    )
    def test_by_id(
        self, client: TestClient, reader: Headers, value: str, expected: list[str]
    ) -> None:
        assert ids(search(client, reader, "Organization", _id=value)) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (f"{SOR_SYSTEM}|201", ["201"]),
            ("201", ["201"]),
            (f"{GLN_SYSTEM}|{EB}", ["200"]),
            (EB, ["200"]),
            (f"{SOR_SYSTEM}|{EB}", []),
            ("|201", []),  # the SOR-ID has a system
            (f"{GLN_SYSTEM}|", ["200"]),
            (f"{SOR_SYSTEM}|100,{SOR_SYSTEM}|102", ["100", "102"]),
        ],
    )
    def test_by_identifier_as_system_and_value_value_alone_or_no_system(
        self, client: TestClient, reader: Headers, value: str, expected: list[str]
    ) -> None:
        assert ids(search(client, reader, "Organization", identifier=value)) == expected

    def test_by_identifier_not(self, client: TestClient, reader: Headers) -> None:
        found = ids(search(client, reader, "Organization", **{"identifier:not": f"{GLN_SYSTEM}|"}))
        assert found == [o for o in ALL_ORGANIZATIONS if o != "200"]

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("region", ["100"]),  # the start of the name
            ("HOSP", ["100"]),  # the start of any word, any case
            ("ospital", []),  # not inside a word
            ("abent", ["201"]),  # accents do not count: Åbent
            ("åbent hus", ["201"]),
            ("kardiologisk afdeling n", ["101"]),
            ("kardiologisk afdeling ø", []),  # the old name is gone
            ("beta,delta", ["200", "301"]),
        ],
    )
    def test_by_name_from_the_start_of_any_word(
        self, client: TestClient, reader: Headers, value: str, expected: list[str]
    ) -> None:
        assert ids(search(client, reader, "Organization", name=value)) == expected

    def test_by_name_contains_anywhere(self, client: TestClient, reader: Headers) -> None:
        assert ids(search(client, reader, "Organization", **{"name:contains": "OSPITA"})) == ["100"]
        assert ids(search(client, reader, "Organization", **{"name:contains": "bent h"})) == ["201"]

    def test_by_name_exact_is_the_whole_name_as_written(
        self, client: TestClient, reader: Headers
    ) -> None:
        assert ids(search(client, reader, "Organization", **{"name:exact": "Beta Klinik"})) == [
            "200"
        ]
        assert ids(search(client, reader, "Organization", **{"name:exact": "beta klinik"})) == []
        assert ids(search(client, reader, "Organization", **{"name:exact": "Beta"})) == []

    @pytest.mark.parametrize(
        "value", ["100", "Organization/100", "http://elsewhere.example/fhir/Organization/100"]
    )
    def test_by_partof_as_id_reference_or_url(
        self, client: TestClient, reader: Headers, value: str
    ) -> None:
        assert ids(search(client, reader, "Organization", partof=value)) == ["101"]

    def test_by_partof_missing_gives_the_owners_at_the_top(
        self, client: TestClient, reader: Headers
    ) -> None:
        found = search(client, reader, "Organization", **{"partof:missing": "true"})
        assert ids(found) == ["100", "200", "301", "400"]
        below = search(client, reader, "Organization", **{"partof:missing": "false"}, _count="0")
        assert below["total"] == len(ALL_ORGANIZATIONS) - 4

    def test_by_active(self, client: TestClient, reader: Headers) -> None:
        assert ids(search(client, reader, "Organization", active="false")) == ["200"]
        assert search(client, reader, "Organization", active="true")["total"] == (
            len(ALL_ORGANIZATIONS) - 1
        )

    def test_by_type_code_with_or_without_its_system(
        self, client: TestClient, reader: Headers
    ) -> None:
        assert ids(search(client, reader, "Organization", type=f"{SNOMED}|{CLINIC}")) == [
            "200",
            "201",
        ]
        assert ids(search(client, reader, "Organization", type=CLINIC)) == ["200", "201"]
        owners = search(client, reader, "Organization", type=f"{KIND_SYSTEM}|institution-owner")
        assert ids(owners) == ["100", "200", "301", "400"]

    def test_by_last_updated_with_prefixes(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        first, second = instant(directory.first), instant(directory.second)
        changed = ["101", "301"]
        assert ids(search(client, reader, "Organization", _lastUpdated=f"gt{first}")) == changed
        assert ids(search(client, reader, "Organization", _lastUpdated=f"ge{second}")) == changed
        assert ids(search(client, reader, "Organization", _lastUpdated=second)) == changed
        assert ids(search(client, reader, "Organization", _lastUpdated=f"eq{second}")) == changed
        unchanged = search(client, reader, "Organization", _lastUpdated=f"lt{second}")
        assert unchanged["total"] == len(ALL_ORGANIZATIONS) - 2
        assert "101" not in ids(unchanged)
        assert (
            search(client, reader, "Organization", _lastUpdated=f"le{first}")["total"]
            == len(ALL_ORGANIZATIONS) - 2
        )
        assert ids(search(client, reader, "Organization", _lastUpdated=f"ne{first}")) == changed
        day = directory.second.taken_at.date().isoformat()
        assert search(client, reader, "Organization", _lastUpdated=day)["total"] >= 2
        assert search(client, reader, "Organization", _lastUpdated="gt2999")["total"] == 0
        assert search(client, reader, "Organization", _lastUpdated="lt2000-01")["total"] == 0

    def test_repeated_last_updated_parameters_must_all_hold(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        first = instant(directory.first)
        bundle = fetch(
            client,
            "/fhir/Organization?"
            + urlencode([("_lastUpdated", f"ge{first}"), ("_lastUpdated", f"le{first}")]),
            reader,
        )
        assert bundle["total"] == len(ALL_ORGANIZATIONS) - 2

    def test_parameters_combine_as_and(self, client: TestClient, reader: Headers) -> None:
        bundle = search(client, reader, "Organization", partof="200", name="åbent", active="true")
        assert ids(bundle) == ["201"]
        assert ids(search(client, reader, "Organization", partof="200", active="false")) == []

    def test_include_brings_the_endpoints_of_the_page_once_each(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(
            client, reader, "Organization", _id="100,101,102,201", _include="Organization:endpoint"
        )
        assert ids(bundle) == ["100", "101", "102", "201"]
        assert typed(bundle, "include") == [f"Endpoint/{EA}", f"Endpoint/{EB}"]
        assert bundle["total"] == 4

    def test_revinclude_partof_brings_the_children_of_the_page(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(
            client, reader, "Organization", _id="100,200", _revinclude="Organization:partof"
        )
        assert ids(bundle) == ["100", "200"]
        assert typed(bundle, "include") == ["Organization/101", "Organization/201"]

    def test_an_included_resource_that_is_also_a_match_is_not_repeated(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(
            client, reader, "Organization", _id="100,101", _revinclude="Organization:partof"
        )
        assert ids(bundle) == ["100", "101"]
        assert typed(bundle, "include") == ["Organization/102"]


class TestEndpointSearch:
    def test_without_parameters_every_endpoint(self, client: TestClient, reader: Headers) -> None:
        bundle = search(client, reader, "Endpoint")
        assert ids(bundle) == ALL_ENDPOINTS
        assert bundle["total"] == 3

    def test_by_id_identifier_status_and_connection_type(
        self, client: TestClient, reader: Headers
    ) -> None:
        assert ids(search(client, reader, "Endpoint", _id=f"{EA},{EC}")) == [EA]
        assert ids(search(client, reader, "Endpoint", identifier=f"{GLN_SYSTEM}|{ED}")) == [ED]
        assert ids(search(client, reader, "Endpoint", identifier=ED)) == [ED]
        assert ids(search(client, reader, "Endpoint", status="off")) == [EB]
        assert ids(search(client, reader, "Endpoint", status="active")) == [EA, ED]
        assert ids(search(client, reader, "Endpoint", **{"status:not": "off"})) == [EA, ED]
        every = search(client, reader, "Endpoint", **{"connection-type": "medcom-vans"})
        assert ids(every) == ALL_ENDPOINTS
        assert (
            ids(search(client, reader, "Endpoint", **{"connection-type": f"{CONNECTION_SYSTEM}|x"}))
            == []
        )

    def test_by_name(self, client: TestClient, reader: Headers) -> None:
        assert ids(search(client, reader, "Endpoint", name=f"gln {EB}")) == [EB]

    def test_by_last_updated(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        found = search(client, reader, "Endpoint", _lastUpdated=f"gt{instant(directory.first)}")
        assert ids(found) == [ED]

    def test_revinclude_brings_the_organizations_that_link_the_endpoints(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(client, reader, "Endpoint", _id=EA, _revinclude="Organization:endpoint")
        assert typed(bundle, "include") == [
            "Organization/100",
            "Organization/101",
            "Organization/102",
        ]


class TestSearchRules:
    def test_an_unknown_parameter_is_ignored_and_said_in_an_outcome_entry(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(client, reader, "Organization", _id="100", address="Aarhus")
        assert ids(bundle) == ["100"]
        outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
        assert len(outcome) == 1
        OperationOutcome.model_validate(outcome[0]["resource"])
        assert "address" in outcome[0]["resource"]["issue"][0]["diagnostics"]
        assert outcome[0]["resource"]["issue"][0]["severity"] == "warning"
        self_link = link(bundle, "self")
        assert self_link is not None and "address" not in self_link and "_id=100" in self_link

    def test_under_prefer_handling_strict_an_unknown_parameter_is_400(
        self, client: TestClient, reader: Headers
    ) -> None:
        response = client.get(
            "/fhir/Organization?address=Aarhus",
            headers={**reader, "Prefer": "handling=strict"},
        )
        assert_outcome(response, 400, "invalid")

    @pytest.mark.parametrize(
        "query",
        [
            "_count=-1",
            "_count=many",
            "active=yes",
            "_lastUpdated=yesterday",
            "_lastUpdated=2026-13-01",
            "_lastUpdated=ap2026-01-01",
            "identifier=a|b|c",
            "identifier=|",
            "partof=Endpoint/1",
            "_page=not-a-page",
            "_page=" + "YWZ0ZXI",  # "after" with no id
        ],
    )
    def test_a_malformed_value_is_400(
        self, client: TestClient, reader: Headers, query: str
    ) -> None:
        assert_outcome(client.get(f"/fhir/Organization?{query}", headers=reader), 400, "invalid")

    @pytest.mark.parametrize("parameter", ["name:missing", "identifier:text", "_id:exact"])
    def test_an_unsupported_modifier_is_400(
        self, client: TestClient, reader: Headers, parameter: str
    ) -> None:
        response = client.get(f"/fhir/Organization?{parameter}=x", headers=reader)
        assert "modifier" in assert_outcome(response, 400, "invalid")["issue"][0]["diagnostics"]

    def test_a_parameter_without_a_value_is_ignored(
        self, client: TestClient, reader: Headers
    ) -> None:
        assert search(client, reader, "Organization", name="")["total"] == len(ALL_ORGANIZATIONS)

    def test_count_zero_gives_the_total_only_and_above_the_maximum_it_is_the_maximum(
        self, client: TestClient, reader: Headers
    ) -> None:
        bundle = search(client, reader, "Organization", _count="0")
        assert bundle["total"] == len(ALL_ORGANIZATIONS) and "entry" not in bundle
        assert link(bundle, "next") is None
        most = search(client, reader, "Organization", _count="5000")
        assert len(ids(most)) == len(ALL_ORGANIZATIONS)
        assert "_count=1000" in (link(most, "self") or "")

    def test_a_search_by_post_with_a_form_body_is_the_search_by_get(
        self, client: TestClient, reader: Headers
    ) -> None:
        form = {"partof": "100", "_include": "Organization:endpoint"}
        response = client.post("/fhir/Organization/_search", data=form, headers=reader)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == FHIR
        assert response.json() == search(client, reader, "Organization", **form)

    def test_a_search_by_post_with_another_body_is_415(
        self, client: TestClient, reader: Headers
    ) -> None:
        response = client.post("/fhir/Organization/_search", json={"partof": "100"}, headers=reader)
        assert_outcome(response, 415, "not-supported")


# -- paging -----------------------------------------------------------------------------------


class TestPaging:
    @pytest.mark.parametrize("resource_type", RESOURCE_TYPES)
    @pytest.mark.parametrize("count", ["1", "7", "100"])
    def test_next_links_give_every_resource_once(
        self, client: TestClient, reader: Headers, resource_type: str, count: str
    ) -> None:
        pages = page_through(client, reader, f"/fhir/{resource_type}?_count={count}")
        seen = [rid for page in pages for rid in ids(page)]
        expected = ALL_ORGANIZATIONS if resource_type == "Organization" else ALL_ENDPOINTS
        assert seen == expected
        assert all(page["total"] == len(expected) for page in pages)
        assert all(len(ids(page)) <= int(count) for page in pages)

    def test_the_next_link_keeps_the_search_and_the_includes(
        self, client: TestClient, reader: Headers
    ) -> None:
        pages = page_through(
            client, reader, "/fhir/Organization?partof=400&_count=25&_include=Organization:endpoint"
        )
        assert [len(ids(page)) for page in pages] == [25, 25, 10]
        assert [rid for page in pages for rid in ids(page)] == BULK
        query = dict(parse_qsl(urlsplit(link(pages[0], "next") or "").query))
        assert query["partof"] == "400" and query["_include"] == "Organization:endpoint"

    def test_previous_links_walk_back_the_same_pages(
        self, client: TestClient, reader: Headers
    ) -> None:
        forward = page_through(client, reader, "/fhir/Organization?_count=9")
        assert link(forward[0], "previous") is None
        back = []
        url = link(forward[-1], "previous")
        while url is not None:
            page = fetch(client, relative(url), reader)
            back.append(ids(page))
            url = link(page, "previous")
        assert back[::-1] == [ids(page) for page in forward[:-1]]

    def test_a_page_link_stays_valid_while_a_new_snapshot_lands(
        self, client: TestClient, reader: Headers, synced_app: App, sandbox_dir: Path
    ) -> None:
        first = fetch(client, "/fhir/Organization?_count=3", reader)
        assert ids(first) == ["100", "101", "102"]
        resources = second_snapshot()
        resources["Organization"] = [o for o in resources["Organization"] if o["id"] != "200"]
        record_third(synced_app, sandbox_dir, resources)  # 200 deleted meanwhile
        following = fetch(client, relative(link(first, "next") or ""), reader)
        assert ids(following) == ["201", "301", "400"]


# -- owners -----------------------------------------------------------------------------------


class TestOwnerRestriction:
    def test_a_restricted_token_sees_only_its_owners_tree_and_their_endpoints(
        self, client: TestClient, directory: Directory, issue: Callable[..., str]
    ) -> None:
        alpha = bearer(issue("registry:read", owners=("100",)))
        assert ids(search(client, alpha, "Organization")) == ["100", "101", "102"]
        assert ids(search(client, alpha, "Endpoint")) == [EA]
        assert fetch(client, "/fhir/Organization/102", alpha)["id"] == "102"
        assert fetch(client, f"/fhir/Endpoint/{EA}", alpha)["id"] == EA

    def test_what_is_outside_its_owners_is_absent_not_forbidden(
        self, client: TestClient, directory: Directory, issue: Callable[..., str]
    ) -> None:
        alpha = bearer(issue("registry:read", owners=("100",)))
        assert_outcome(client.get("/fhir/Organization/201", headers=alpha), 404, "not-found")
        assert_outcome(client.get(f"/fhir/Endpoint/{EB}", headers=alpha), 404, "not-found")
        # Deleted, but whose it was cannot be told: absent rather than gone.
        assert_outcome(client.get("/fhir/Organization/300", headers=alpha), 404, "not-found")
        assert search(client, alpha, "Organization", _id="201")["total"] == 0

    def test_includes_bring_only_what_the_token_may_see(
        self, client: TestClient, directory: Directory, issue: Callable[..., str]
    ) -> None:
        beta = bearer(issue("registry:read", owners=("200",)))
        bundle = search(client, beta, "Endpoint", _revinclude="Organization:endpoint")
        assert ids(bundle) == [EB]
        assert typed(bundle, "include") == ["Organization/200", "Organization/201"]

    def test_several_owners_see_each_of_them(
        self, client: TestClient, directory: Directory, issue: Callable[..., str]
    ) -> None:
        both = bearer(issue("registry:read", owners=("100", "301")))
        assert ids(search(client, both, "Organization")) == ["100", "101", "102", "301"]
        assert ids(search(client, both, "Endpoint")) == [EA, ED]

    def test_paging_a_restricted_token_gives_its_resources_once(
        self, client: TestClient, directory: Directory, issue: Callable[..., str]
    ) -> None:
        bulk = bearer(issue("registry:read", owners=("400",)))
        pages = page_through(client, bulk, "/fhir/Organization?_count=11")
        assert [rid for page in pages for rid in ids(page)] == sorted(["400", *BULK])

    def test_history_needs_a_token_without_an_owner_restriction(
        self, client: TestClient, directory: Directory, issue: Callable[..., str]
    ) -> None:
        alpha = bearer(issue("registry:read", owners=("100",)))
        for path in ("/fhir/Organization/_history", "/fhir/Endpoint/_history", "/fhir/_history"):
            assert_outcome(client.get(path, headers=alpha), 403, "forbidden")


# -- the index follows the stored versions ----------------------------------------------------


class TestFreshness:
    def test_a_search_after_new_versions_are_stored_sees_them(
        self, client: TestClient, reader: Headers, synced_app: App, sandbox_dir: Path
    ) -> None:
        assert search(client, reader, "Organization", name="epsilon")["total"] == 0
        resources = second_snapshot()
        resources["Organization"].append(organization("302", "Epsilon Sundhed"))
        record_third(synced_app, sandbox_dir, resources)
        assert ids(search(client, reader, "Organization", name="epsilon")) == ["302"]
        assert fetch(client, "/fhir/Organization/302", reader)["name"] == "Epsilon Sundhed"

    def test_before_any_version_is_stored_the_directory_is_empty(
        self, client: TestClient, issue: Callable[..., str]
    ) -> None:
        token = bearer(issue("registry:read"))
        assert search(client, token, "Organization")["total"] == 0
        assert_outcome(client.get("/fhir/Organization/100", headers=token), 404, "not-found")


# -- metadata ---------------------------------------------------------------------------------


class TestCapabilityStatement:
    def test_metadata_needs_no_token_and_is_a_valid_r4_capability_statement(
        self, client: TestClient
    ) -> None:
        statement = fetch(client, "/fhir/metadata", {})
        CapabilityStatement.model_validate(statement)
        assert statement["fhirVersion"] == "4.0.1"
        assert (statement["kind"], statement["status"]) == ("instance", "active")
        assert "json" in statement["format"]
        assert "instantiates" not in statement  # mCSD's Location, Practitioner ... are not served
        assert statement["implementation"]["url"] == "http://testserver/fhir"

    def test_it_lists_exactly_the_resources_interactions_and_search_parameters_served(
        self, client: TestClient
    ) -> None:
        (rest,) = fetch(client, "/fhir/metadata", {})["rest"]
        assert rest["mode"] == "server"
        assert rest["interaction"] == [{"code": "history-system"}]
        resources = {r["type"]: r for r in rest["resource"]}
        assert list(resources) == ["Organization", "Endpoint"]
        for resource in resources.values():
            assert [i["code"] for i in resource["interaction"]] == [
                "read",
                "vread",
                "search-type",
                "history-instance",
                "history-type",
            ]
            assert resource["readHistory"] is True
        organization_params = {
            p["name"]: p["type"] for p in resources["Organization"]["searchParam"]
        }
        assert organization_params == {
            "_id": "token",
            "_lastUpdated": "date",
            "identifier": "token",
            "name": "string",
            "partof": "reference",
            "active": "token",
            "type": "token",
        }
        assert resources["Organization"]["searchInclude"] == ["Organization:endpoint"]
        assert resources["Organization"]["searchRevInclude"] == ["Organization:partof"]
        endpoint_params = {p["name"] for p in resources["Endpoint"]["searchParam"]}
        assert endpoint_params == {
            "_id",
            "_lastUpdated",
            "identifier",
            "name",
            "status",
            "connection-type",
        }
        assert "searchInclude" not in resources["Endpoint"]
        assert resources["Endpoint"]["searchRevInclude"] == ["Organization:endpoint"]

    @pytest.mark.parametrize("value", ["json", "application/fhir+json", "application/json"])
    def test_format_json_is_accepted(self, client: TestClient, value: str) -> None:
        fetch(client, "/fhir/metadata", {}, params={"_format": value})

    @pytest.mark.parametrize("value", ["xml", "application/fhir+xml", "ttl", "html"])
    def test_another_format_is_406(self, client: TestClient, value: str) -> None:
        response = client.get("/fhir/metadata", params={"_format": value})
        assert_outcome(response, 406, "not-supported")


# -- errors -----------------------------------------------------------------------------------


class TestOperationOutcomes:
    @pytest.mark.parametrize(
        "path",
        [
            "/fhir/Organization",
            "/fhir/Organization/100",
            "/fhir/Endpoint",
            "/fhir/Organization/_history",
            "/fhir/_history",
        ],
    )
    def test_without_a_valid_token_401_with_www_authenticate(
        self, client: TestClient, issue: Callable[..., str], path: str
    ) -> None:
        for headers in ({}, bearer(new_token()), bearer(issue(*ALL_SCOPES, revoked=True))):
            response = client.get(path, headers=headers)
            assert_outcome(response, 401, "login")
            assert response.headers["www-authenticate"].startswith("Bearer")

    def test_a_token_without_registry_read_is_403(
        self, client: TestClient, issue: Callable[..., str]
    ) -> None:
        token = bearer(issue(*(s for s in ALL_SCOPES if s != "registry:read")))
        response = client.get("/fhir/Organization", headers=token)
        assert (
            "registry:read" in assert_outcome(response, 403, "forbidden")["issue"][0]["diagnostics"]
        )

    def test_an_accept_header_without_json_is_406_and_with_json_is_served(
        self, client: TestClient, reader: Headers
    ) -> None:
        refused = client.get("/fhir/Organization", headers={**reader, "Accept": "application/xml"})
        assert_outcome(refused, 406, "not-supported")
        for accept in ("application/fhir+json", "application/json", "text/html, */*;q=0.8"):
            assert client.get("/fhir/Organization", headers={**reader, "Accept": accept}).is_success

    def test_an_unknown_path_and_method_under_fhir_are_operation_outcomes(
        self, client: TestClient, reader: Headers
    ) -> None:
        assert_outcome(client.get("/fhir/nothing/here", headers=reader), 404, "not-found")
        response = client.delete("/fhir/Organization/100", headers=reader)
        assert_outcome(response, 405, "not-supported")

    def test_a_body_over_the_cap_is_413_as_an_operation_outcome(
        self, synced_app: App, reader: Headers
    ) -> None:
        with make_client(synced_app, max_body_bytes=100) as small:
            response = small.post(
                "/fhir/Organization/_search", data={"name": "x" * 500}, headers=reader
            )
        assert_outcome(response, 413, "too-costly")

    def test_an_unexpected_failure_is_500_as_a_fatal_operation_outcome(
        self, synced_app: App, reader: Headers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(_self: object) -> None:
            raise RuntimeError("the index is broken")

        monkeypatch.setattr(DirectoryCache, "index", broken)
        api = create_app(synced_app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
        with TestClient(api, raise_server_exceptions=False) as failing:
            response = failing.get("/fhir/Organization", headers=reader)
        assert response.status_code == 500
        assert response.headers["content-type"] == FHIR
        (issue,) = response.json()["issue"]
        assert issue == {"severity": "fatal", "code": "exception", "diagnostics": "internal error"}

    def test_the_rest_of_the_api_keeps_problem_documents(
        self, client: TestClient, reader: Headers
    ) -> None:
        assert (
            client.get("/v1/glns/5790000000005", headers=reader).headers["content-type"] == PROBLEM
        )
        assert client.get("/v1/nothing").headers["content-type"] == PROBLEM
        assert client.get("/fhirx").headers["content-type"] == PROBLEM


# -- the auth matrix of every published /fhir operation ---------------------------------------


def _published() -> dict[str, dict[str, Any]]:
    """``"METHOD /path"`` -> operation, for every ``/fhir`` operation of the OpenAPI document."""
    with bootstrap(make_settings("sqlite://")) as app:  # never connected
        document = create_app(
            app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False)
        ).openapi()
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        if path.startswith("/fhir")
        for method, operation in item.items()
    }


PUBLISHED = _published()
# operation -> (a request inside owner 100, outside it); what a restricted token gets for each
# (FIRST: the id of the first snapshot, whose versions every resource read here has)
MATRIX: dict[str, tuple[Callable[[bool], tuple[str, str, dict[str, str] | None]], str]] = {
    "GET /fhir/metadata": (lambda inside: ("GET", "/fhir/metadata", None), "public"),
    "GET /fhir/_history": (lambda inside: ("GET", "/fhir/_history", None), "unrestricted"),
    "GET /fhir/Organization": (
        lambda inside: ("GET", f"/fhir/Organization?_id={'101' if inside else '201'}", None),
        "filtered",
    ),
    "POST /fhir/Organization/_search": (
        lambda inside: ("POST", "/fhir/Organization/_search", {"_id": "101" if inside else "201"}),
        "filtered",
    ),
    "GET /fhir/Organization/_history": (
        lambda inside: ("GET", "/fhir/Organization/_history", None),
        "unrestricted",
    ),
    "GET /fhir/Organization/{resource_id}/_history": (
        lambda inside: ("GET", f"/fhir/Organization/{'101' if inside else '201'}/_history", None),
        "unrestricted",
    ),
    "GET /fhir/Organization/{resource_id}/_history/{version_id}": (
        lambda inside: (
            "GET",
            f"/fhir/Organization/{'101' if inside else '201'}/_history/FIRST",
            None,
        ),
        "unrestricted",
    ),
    "GET /fhir/Organization/{resource_id}": (
        lambda inside: ("GET", f"/fhir/Organization/{'101' if inside else '201'}", None),
        "hidden",
    ),
    "GET /fhir/Endpoint": (
        lambda inside: ("GET", f"/fhir/Endpoint?_id={EA if inside else EB}", None),
        "filtered",
    ),
    "POST /fhir/Endpoint/_search": (
        lambda inside: ("POST", "/fhir/Endpoint/_search", {"_id": EA if inside else EB}),
        "filtered",
    ),
    "GET /fhir/Endpoint/_history": (
        lambda inside: ("GET", "/fhir/Endpoint/_history", None),
        "unrestricted",
    ),
    "GET /fhir/Endpoint/{resource_id}/_history": (
        lambda inside: ("GET", f"/fhir/Endpoint/{EA if inside else EB}/_history", None),
        "unrestricted",
    ),
    "GET /fhir/Endpoint/{resource_id}/_history/{version_id}": (
        lambda inside: ("GET", f"/fhir/Endpoint/{EA if inside else EB}/_history/FIRST", None),
        "unrestricted",
    ),
    "GET /fhir/Endpoint/{resource_id}": (
        lambda inside: ("GET", f"/fhir/Endpoint/{EA if inside else EB}", None),
        "hidden",
    ),
}
KINDS = ["none", "unknown", "revoked", "wrong-scope", "unrestricted", "inside", "outside"]


def test_every_published_fhir_operation_has_a_matrix_entry_and_every_entry_an_operation() -> None:
    assert sorted(PUBLISHED) == sorted(MATRIX)


@pytest.mark.parametrize("label", sorted(PUBLISHED))
def test_the_published_fhir_operation_declares_its_token_and_operation_outcomes(
    label: str,
) -> None:
    operation = PUBLISHED[label]
    assert operation["tags"] == ["fhir"]
    for status, response in operation["responses"].items():
        assert list(response["content"]) == [FHIR], (label, status)
    if MATRIX[label][1] == "public":
        assert "security" not in operation
        return
    assert operation["security"] == [{"HTTPBearer": []}]
    assert {"401", "403"} <= operation["responses"].keys()
    assert "`registry:read`" in operation["description"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("label", sorted(MATRIX))
def test_fhir_auth_matrix(
    client: TestClient,
    directory: Directory,
    issue: Callable[..., str],
    label: str,
    kind: str,
) -> None:
    build, rule = MATRIX[label]
    method, url, form = build(kind != "outside")
    url = url.replace("FIRST", str(directory.first.id))  # the snapshot that made version 1
    tokens: dict[str, Callable[[], Headers]] = {
        "none": dict,
        "unknown": lambda: bearer(new_token()),
        "revoked": lambda: bearer(issue(*ALL_SCOPES, revoked=True)),
        "wrong-scope": lambda: bearer(issue(*(s for s in ALL_SCOPES if s != "registry:read"))),
        "unrestricted": lambda: bearer(issue("registry:read")),
    }
    restricted = lambda: bearer(issue("registry:read", owners=("100",)))  # noqa: E731
    headers = tokens.get(kind, restricted)()
    response = client.request(method, url, data=form, headers=headers)
    if rule == "public":
        assert response.status_code == 200
    elif kind in ("none", "unknown", "revoked"):
        assert_outcome(response, 401, "login")
    elif kind == "wrong-scope" or (kind in ("inside", "outside") and rule == "unrestricted"):
        assert_outcome(response, 403, "forbidden")
    elif kind == "outside" and rule == "hidden":
        assert_outcome(response, 404, "not-found")
    else:
        assert response.status_code == 200, response.text
        if rule == "filtered":
            assert response.json()["total"] == (0 if kind == "outside" else 1)


# -- the real mapping, through a sync -----------------------------------------------------------


class TestAnUpdateClient:
    def test_pages_everything_then_follows_history_to_a_fresh_export(
        self, cli: Cli, app: App, sandbox_dir: Path, tmp_path: Path, issue_for: Callable[..., str]
    ) -> None:
        cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
        with make_client(app) as client:
            token = bearer(issue_for("registry:read"))
            pages = {t: page_through(client, token, f"/fhir/{t}?_count=50") for t in RESOURCE_TYPES}
            mirror = {
                resource_type: {
                    e["resource"]["id"]: e["resource"]
                    for page in pages[resource_type]
                    for e in page.get("entry", [])
                }
                for resource_type in RESOURCE_TYPES
            }
            # The directory as of the first page read: where the client's history starts.
            since = bookmark(pages["Organization"][0])
            assert mirror == _export(cli, tmp_path / "day-0")
            cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
            changes = history(client, token, f"/fhir/_history?_since={since}&_count=40")
        assert changes
        replay(mirror, changes)
        assert mirror == _export(cli, tmp_path / "day-1")


def _export(cli: Cli, out: Path) -> dict[str, dict[str, dict[str, Any]]]:
    cli("export", "fhir", "--out", str(out))
    return {
        t: {
            r["id"]: r
            for r in map(json.loads, (out / f"{t}.ndjson").read_text("utf-8").splitlines())
        }
        for t in RESOURCE_TYPES
    }


@pytest.fixture
def issue_for(app: App) -> Callable[..., str]:
    """Tokens on ``app`` (``issue`` is bound to ``synced_app``)."""
    from soredi_sync.services.tokens import create_token

    def make(*scopes: str) -> str:
        return create_token(lambda: app.uow(), scopes, (), None).token

    return make
