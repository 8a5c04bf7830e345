"""Audit, adoption and cut-over endpoints: shapes, formats, scopes and owner restrictions."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem, bearer

ENDPOINTS = ("/v1/audit", "/v1/adoption", "/v1/cutover?date=2027-01-04")
CUTOVER = "/v1/cutover?date=2027-01-04"


@pytest.fixture
def auditor(issue: Callable[..., str]) -> dict[str, str]:
    return bearer(issue("audit:read"))


def findings_by_owner(client: TestClient, headers: dict[str, str]) -> dict[str, int]:
    data = client.get("/v1/audit", headers=headers).json()
    counts: dict[str, int] = {}
    for finding in data["findings"]:
        if finding["owner"]:
            key = finding["owner"]["sor_id"]
            counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
def two_owners(client: TestClient, auditor: dict[str, str]) -> tuple[str, str]:
    """Two institution owners with findings, and lost receivers on the cut-over date."""
    counts = findings_by_owner(client, auditor)
    lost = client.get(CUTOVER, headers=auditor).json()
    with_lost = [
        r["owner"]["sor_id"] for s in lost["senders"] for r in s["lost"] if r["owner"] is not None
    ]
    first = next(o for o in with_lost if o in counts)
    second = next(o for o in sorted(counts, key=lambda o: -counts[o]) if o != first)
    return first, second


class TestAudit:
    def test_the_audit_lists_findings_with_counts_on_the_current_snapshot(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        response = client.get("/v1/audit", headers=auditor)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        data = response.json()
        assert data["snapshot"]["id"] == 2
        assert data["on"] == data["snapshot"]["effective_date"]
        assert data["total"] == len(data["findings"]) > 0
        assert sum(data["counts"].values()) == data["total"]
        assert data["new"] is None and data["resolved"] is None and data["since"] is None
        first = data["findings"][0]
        assert {"code", "severity", "gln", "sor_id", "owner", "vans", "text"} <= first.keys()

    def test_since_an_earlier_snapshot_it_lists_new_and_resolved_findings(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        data = client.get("/v1/audit?since=1", headers=auditor).json()
        assert data["since"]["id"] == 1
        assert isinstance(data["new"], list) and isinstance(data["resolved"], list)
        keys = {(f["code"], f["gln"], f["sor_id"]) for f in data["findings"]}
        assert all((f["code"], f["gln"], f["sor_id"]) in keys for f in data["new"])
        assert all((f["code"], f["gln"], f["sor_id"]) not in keys for f in data["resolved"])

    def test_since_a_snapshot_that_does_not_exist_is_a_404_problem(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/audit?since=99", headers=auditor), 404, "not-found")

    def test_filters_by_owner_vans_and_region_narrow_the_findings(
        self, client: TestClient, auditor: dict[str, str], two_owners: tuple[str, str]
    ) -> None:
        owner = two_owners[0]
        data = client.get(f"/v1/audit?owner={owner}", headers=auditor).json()
        assert data["findings"]
        assert {f["owner"]["sor_id"] for f in data["findings"]} == {owner}
        vans = next(f["vans"] for f in data["findings"] if f["vans"])
        by_vans = client.get(f"/v1/audit?vans={vans}", headers=auditor).json()["findings"]
        assert by_vans and {f["vans"] for f in by_vans} == {vans}
        everything = client.get("/v1/audit", headers=auditor).json()["findings"]
        region = next(f["region_code"] for f in everything if f["region_code"])
        by_region = client.get(f"/v1/audit?region={region}", headers=auditor).json()["findings"]
        assert by_region and {f["region_code"] for f in by_region} == {region}

    def test_csv_format_gives_one_row_per_finding(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        total = client.get("/v1/audit", headers=auditor).json()["total"]
        response = client.get("/v1/audit?format=csv", headers=auditor)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == total
        assert {"code", "severity", "gln", "owner_sor_id", "vans", "text"} <= rows[0].keys()

    def test_an_unknown_format_is_a_422_problem(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/audit?format=xml", headers=auditor), 422, "validation")


class TestAdoption:
    def test_adoption_has_one_entry_per_snapshot_with_counts(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        response = client.get("/v1/adoption", headers=auditor)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["by"] is None
        assert [s["snapshot_id"] for s in data["snapshots"]] == [1, 2]
        counts = data["snapshots"][-1]["counts"]["all"]
        assert counts["total"] == counts["fhir_only"] + counts["legacy_only"] + counts["both"]
        assert counts["accepts_fdis91"] == counts["fhir_only"] + counts["both"]

    @pytest.mark.parametrize("by", ["region", "owner-type", "vans"])
    def test_adoption_by_a_dimension_splits_the_same_total(
        self, client: TestClient, auditor: dict[str, str], by: str
    ) -> None:
        total = client.get("/v1/adoption", headers=auditor).json()["snapshots"][-1]["counts"]
        data = client.get(f"/v1/adoption?by={by}", headers=auditor).json()
        assert data["by"] == by
        groups = data["snapshots"][-1]["counts"]
        assert "all" not in groups
        assert sum(g["total"] for g in groups.values()) == total["all"]["total"]

    def test_an_unknown_dimension_is_a_422_problem(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/adoption?by=colour", headers=auditor), 422, "validation")


class TestCutover:
    def test_the_cutover_lists_lost_receivers_per_sender_syntax(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        response = client.get(CUTOVER, headers=auditor)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["date"] == "2027-01-04"
        assert data["today"] == data["snapshot"]["effective_date"]
        assert [s["sender_syntax"] for s in data["senders"]] == ["fhir", "oioxml", "edifact"]
        assert data["counts"]["fhir"] > 0
        assert all(s["count"] == len(s["lost"]) for s in data["senders"])
        lost = data["senders"][0]["lost"][0]
        assert {"gln", "owner", "vans", "message_types", "reached_today_by"} == lost.keys()

    def test_before_the_conversions_end_nobody_is_lost(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        data = client.get("/v1/cutover?date=2026-12-31", headers=auditor).json()
        assert data["counts"] == {"fhir": 0, "oioxml": 0, "edifact": 0}

    @pytest.mark.parametrize("bad", ["", "tomorrow", "2027-02-30"])
    def test_a_bad_date_is_a_422_problem(
        self, client: TestClient, auditor: dict[str, str], bad: str
    ) -> None:
        assert_problem(client.get(f"/v1/cutover?date={bad}", headers=auditor), 422, "validation")

    def test_a_missing_date_is_a_422_problem(
        self, client: TestClient, auditor: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/cutover", headers=auditor), 422, "validation")


class TestAuthorization:
    @pytest.mark.parametrize("path", ENDPOINTS)
    def test_without_a_token_it_is_a_401_problem(self, client: TestClient, path: str) -> None:
        assert_problem(client.get(path), 401, "unauthorized")

    @pytest.mark.parametrize("path", ENDPOINTS)
    def test_an_unknown_or_revoked_token_is_a_401_problem(
        self, client: TestClient, issue: Callable[..., str], path: str
    ) -> None:
        assert_problem(client.get(path, headers=bearer("sst_nonsense")), 401, "unauthorized")
        revoked = issue("audit:read", revoked=True)
        assert_problem(client.get(path, headers=bearer(revoked)), 401, "unauthorized")

    @pytest.mark.parametrize("path", ENDPOINTS)
    def test_a_token_without_audit_read_is_a_403_problem(
        self, client: TestClient, issue: Callable[..., str], path: str
    ) -> None:
        token = issue("route:read", "registry:read")
        assert_problem(client.get(path, headers=bearer(token)), 403, "forbidden")

    @pytest.mark.parametrize("path", ENDPOINTS)
    def test_a_token_with_audit_read_gets_an_answer(
        self, client: TestClient, auditor: dict[str, str], path: str
    ) -> None:
        assert client.get(path, headers=auditor).status_code == 200


class TestOwnerRestriction:
    def test_a_restricted_token_sees_only_its_owners_findings(
        self,
        client: TestClient,
        issue: Callable[..., str],
        auditor: dict[str, str],
        two_owners: tuple[str, str],
    ) -> None:
        mine, other = two_owners
        restricted = bearer(issue("audit:read", owners=(mine,)))
        data = client.get("/v1/audit", headers=restricted).json()
        assert data["findings"]
        assert all(f["owner"] and f["owner"]["sor_id"] == mine for f in data["findings"])
        assert not [f for f in data["findings"] if f["owner"]["sor_id"] == other]
        assert findings_by_owner(client, auditor)[other] > 0
        everyone = client.get(f"/v1/audit?owner={mine}", headers=auditor).json()
        assert data["findings"] == everyone["findings"]
        rows = list(
            csv.DictReader(io.StringIO(client.get("/v1/audit?format=csv", headers=restricted).text))
        )
        assert rows and {r["owner_sor_id"] for r in rows} == {mine}

    def test_a_restricted_token_asking_for_another_owner_is_a_403_problem(
        self, client: TestClient, issue: Callable[..., str], two_owners: tuple[str, str]
    ) -> None:
        mine, other = two_owners
        restricted = bearer(issue("audit:read", owners=(mine,)))
        for path in ("/v1/audit", "/v1/adoption", CUTOVER):
            joiner = "&" if "?" in path else "?"
            response = client.get(f"{path}{joiner}owner={other}", headers=restricted)
            assert_problem(response, 403, "forbidden")
        assert client.get(f"/v1/audit?owner={mine}", headers=restricted).status_code == 200

    def test_a_restricted_token_sees_only_its_owners_lost_receivers(
        self,
        client: TestClient,
        issue: Callable[..., str],
        auditor: dict[str, str],
        two_owners: tuple[str, str],
    ) -> None:
        mine, _ = two_owners
        restricted = bearer(issue("audit:read", owners=(mine,)))
        data = client.get(CUTOVER, headers=restricted).json()
        lost = [r for s in data["senders"] for r in s["lost"]]
        assert lost
        assert all(r["owner"]["sor_id"] == mine for r in lost)
        full = client.get(CUTOVER, headers=auditor).json()
        assert sum(data["counts"].values()) < sum(full["counts"].values())

    def test_a_restricted_token_gets_adoption_counted_over_its_owners_glns_only(
        self,
        client: TestClient,
        issue: Callable[..., str],
        auditor: dict[str, str],
        two_owners: tuple[str, str],
    ) -> None:
        mine, other = two_owners
        restricted = bearer(issue("audit:read", owners=(mine,)))

        def totals(headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
            data = client.get(f"/v1/adoption{query}", headers=headers).json()
            return [s["counts"].get("all") for s in data["snapshots"]]

        own = totals(restricted)
        assert own == totals(auditor, f"?owner={mine}")
        everyone = totals(auditor)
        theirs = totals(auditor, f"?owner={other}")
        assert own[-1]["total"] < everyone[-1]["total"]
        assert own[-1]["total"] + (theirs[-1] or {"total": 0})["total"] <= everyone[-1]["total"]
