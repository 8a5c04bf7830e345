"""The console's adoption page (``/ui/adoption``) and its CSV over the synced sandbox: in all and
per region, owner type or VANS, the counts of the latest snapshot and the share on each, the
chart, the owner restriction; every figure the one ``GET /v1/adoption`` gives the same token."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from tests.support.api import World, bearer
from tests.support.ui import UiClient, assert_console_headers


def page(client: TestClient, **query: Any) -> str:
    answer = client.get("/ui/adoption", params=query)
    assert answer.status_code == 200, answer.text
    assert_console_headers(answer)
    return answer.text


def api_adoption(client: TestClient, **query: Any) -> dict[str, Any]:
    """The API's answer for the console's token."""
    token = client.ui_token  # type: ignore[attr-defined]
    answer = client.get("/v1/adoption", params=query, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _text(cell: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())


def latest_rows(html: str) -> dict[str, dict[str, Any]]:
    """The latest snapshot's table, by group key: label, the four counts and the share."""
    body = re.search(r'<table class="adoption-latest">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, "no table of the latest snapshot"
    rows = {}
    for key, row in re.findall(r'<tr data-group="([^"]*)">(.*?)</tr>', body.group(1), re.S):
        label = _text(re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1))  # type: ignore[union-attr]
        cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        counts = [int(re.sub(r"\D", "", c)) for c in cells[:4]]
        rows[unescape(key)] = {
            "label": label,
            "counts": dict(zip(("fhir_only", "legacy_only", "both", "total"), counts, strict=True)),
            "share": cells[4],
        }
    return rows


def history_snapshots(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-snapshot="(\d+)">', html)]


def api_latest(api: dict[str, Any]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = api["snapshots"][-1]["counts"]
    return {
        group: {k: c[k] for k in ("fhir_only", "legacy_only", "both", "total")}
        for group, c in counts.items()
    }


@pytest.fixture
def operator(ui_client: UiClient) -> TestClient:
    return ui_client("audit:read", lang="en")


class TestDimensions:
    def test_without_grouping_it_shows_the_apis_counts_and_a_chart(
        self, operator: TestClient
    ) -> None:
        html = page(operator)
        api = api_adoption(operator)
        rows = latest_rows(html)
        assert {k: r["counts"] for k, r in rows.items()} == api_latest(api)
        assert rows["all"]["label"] == "All correspondence GLNs"
        assert "<svg" in html and "<polyline" in html
        assert history_snapshots(html) == [s["snapshot_id"] for s in reversed(api["snapshots"])]

    @pytest.mark.parametrize("by", ["region", "owner-type", "vans"])
    def test_a_dimension_gives_the_apis_groups(self, operator: TestClient, by: str) -> None:
        rows = latest_rows(page(operator, by=by))
        api = api_latest(api_adoption(operator, by=by))
        assert {k: r["counts"] for k, r in rows.items()} == api
        assert len(rows) > 1 and "all" not in rows
        totals = [r["counts"]["total"] for r in rows.values()]
        assert totals == sorted(totals, reverse=True), "largest group first"

    def test_switching_the_dimension_changes_the_groups(self, operator: TestClient) -> None:
        groups = {by: set(latest_rows(page(operator, by=by))) for by in ("region", "vans")}
        assert groups["region"] != groups["vans"]
        assert set(latest_rows(page(operator))) == {"all"}

    def test_groups_are_named_with_their_codes_kept(
        self, operator: TestClient, synced_app: App
    ) -> None:
        vans = latest_rows(page(operator, by="vans"))
        names = synced_app.reference.vans_names
        code = next(k for k in vans if k in names)
        assert vans[code]["label"] == f"{names[code]} ({code})"
        regions = latest_rows(page(operator, by="region"))
        region_names = synced_app.reference.audit_context.region_names
        code, name = next((c, n) for c, n in region_names.items() if n in regions)
        assert regions[name]["label"] == f"{name} ({code})"
        kinds = latest_rows(page(operator, by="owner-type"))
        assert kinds["municipality"]["label"] == "Municipality (municipality)"

    def test_the_sum_row_adds_the_groups_up_to_the_whole_registry(
        self, operator: TestClient
    ) -> None:
        whole = latest_rows(page(operator))["all"]["counts"]
        html = page(operator, by="region")
        foot = re.search(r"<tfoot>(.*?)</tfoot>", html, re.S)
        assert foot
        cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", foot.group(1), re.S)]
        assert [int(re.sub(r"\D", "", c)) for c in cells[:4]] == list(whole.values())

    def test_the_number_of_snapshots_is_the_apis_limit(self, operator: TestClient) -> None:
        assert len(history_snapshots(page(operator, snapshots="10"))) == len(
            api_adoption(operator, limit=10)["snapshots"]
        )

    def test_a_value_the_form_cannot_send_is_named_and_left_out(self, operator: TestClient) -> None:
        html = page(operator, by="postcode", snapshots="7", owner="x")
        assert "could not be used" in html
        assert "by, snapshots, owner" in html
        assert set(latest_rows(html)) == {"all"}

    def test_the_csv_holds_every_group_on_every_snapshot_shown(self, operator: TestClient) -> None:
        answer = operator.get("/ui/adoption/adoption.csv", params={"by": "vans"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        api = api_adoption(operator, by="vans")
        expected = {
            (s["snapshot_id"], group, c["total"])
            for s in api["snapshots"]
            for group, c in s["counts"].items()
        }
        assert {(int(r["snapshot_id"]), r["group"], int(r["total"])) for r in rows} == expected


class TestOwners:
    def test_a_restricted_token_counts_only_its_owners_glns(
        self, ui_client: UiClient, world: World, operator: TestClient
    ) -> None:
        client = ui_client("audit:read", owners=(world.owner_in,), lang="en")
        html = page(client, by="vans")
        api = api_latest(api_adoption(client, by="vans"))
        assert {k: r["counts"] for k, r in latest_rows(html).items()} == api
        assert api != api_latest(api_adoption(operator, by="vans"))
        assert "count the GLNs of your institution owners only" in html

    def test_another_owner_is_refused_on_the_page_and_in_the_csv(
        self, ui_client: UiClient, world: World
    ) -> None:
        client = ui_client("audit:read", owners=(world.owner_in,), lang="en")
        for path in ("/ui/adoption", "/ui/adoption/adoption.csv"):
            answer = client.get(path, params={"owner": world.owner_out})
            assert answer.status_code == 403, path
            assert "outside the owners" in answer.text

    def test_an_unrestricted_token_narrows_to_an_owner_as_the_api_does(
        self, operator: TestClient, world: World
    ) -> None:
        html = page(operator, owner=world.owner_in)
        api = api_latest(api_adoption(operator, owner=world.owner_in))
        assert {k: r["counts"] for k, r in latest_rows(html).items()} == api
        assert f"({world.owner_in}) only" in html

    def test_a_token_without_audit_read_is_refused_and_not_offered_the_page(
        self, ui_client: UiClient
    ) -> None:
        client = ui_client("registry:read", lang="en")
        for path in ("/ui/adoption", "/ui/adoption/adoption.csv"):
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert "audit:read" in answer.text
        assert 'href="/ui/adoption"' not in client.get("/ui/").text


class TestLanguage:
    def test_it_is_in_danish_by_default(self, ui_client: UiClient) -> None:
        html = page(ui_client("audit:read"), by="owner-type")
        assert '<html lang="da">' in html
        assert latest_rows(html)["municipality"]["label"] == "Kommune (municipality)"
        assert "Udbredelse" in html and "Andel FDIS91" in html
        assert "Municipality" not in html and "FDIS91 share" not in html

    def test_english_on_request(self, operator: TestClient) -> None:
        html = page(operator, by="owner-type")
        assert '<html lang="en">' in html and "FDIS91 share" in html
        assert latest_rows(html)["municipality"]["label"] == "Municipality (municipality)"
        assert "Andel FDIS91" not in html
