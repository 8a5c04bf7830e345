"""The console's audit page (``/ui/audit``) and its downloads over the synced sandbox: filters,
comparing with an earlier snapshot, sorting, paging, CSV/XLSX of exactly the rows selected,
and the owner restriction, checked against the API's ``GET /v1/audit`` for the same token."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from soredi_sync.bootstrap import App
from soredi_sync.services import audit as audit_service
from tests.support.api import World, bearer
from tests.support.ui import UiClient

COLUMNS = ("finding", "severity", "gln", "sor_id", "owner", "region", "vans")
# A filter's value in a finding of the API's answer.
API_VALUE = {
    "owner": lambda f: (f["owner"] or {}).get("sor_id"),
    "region": lambda f: f["region_code"],
    "vans": lambda f: f["vans"],
}


class _Table(HTMLParser):
    """The cells of the findings table's body, as text, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_body = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "findings") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")
        elif self._in_cell and tag == "br":
            self.rows[-1][-1] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "tbody":
            self._in_body = self._in_table = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def rows_of(html: str, comparing: bool = False) -> list[dict[str, str]]:
    parser = _Table()
    parser.feed(html)
    names = ("change", *COLUMNS) if comparing else COLUMNS
    rows = [
        dict(zip(names, (" ".join(c.split()) for c in cells), strict=True)) for cells in parser.rows
    ]
    for row in rows:  # the rule's code, then the finding's text
        row["code"], _, row["text"] = row.pop("finding").partition(" ")
    return rows


def count(html: str, name: str) -> int:
    found = re.search(rf'<dd id="count-{name}">([^<]*)</dd>', html)
    assert found, f"no count {name} on the page"
    return int(re.sub(r"\D", "", found.group(1)))


def api_audit(client: TestClient, **query: Any) -> dict[str, Any]:
    """The API's answer for the same token as the console's."""
    token = client.ui_token  # type: ignore[attr-defined]
    answer = client.get("/v1/audit", params=query, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def page(client: TestClient, **query: Any) -> str:
    answer = client.get("/ui/audit", params=query)
    assert answer.status_code == 200, answer.text
    return answer.text


def csv_rows(client: TestClient, **query: Any) -> list[dict[str, str]]:
    answer = client.get("/ui/audit/findings.csv", params=query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(answer.text)))


@pytest.fixture
def auditor(ui_client: UiClient) -> TestClient:
    return ui_client("audit:read", lang="en")


class TestFilters:
    def test_without_filters_it_lists_every_finding_the_api_gives(
        self, auditor: TestClient
    ) -> None:
        html = page(auditor, size=100)
        api = api_audit(auditor)
        assert count(html, "findings") == api["total"] == count(html, "rows")
        listed = Counter(r["code"] for r in rows_of(html))
        if api["total"] <= 100:
            assert listed == Counter(api["counts"])

    @pytest.mark.parametrize("name", ["region", "vans", "owner"])
    def test_owner_region_and_vans_narrow_as_the_api_does(
        self, auditor: TestClient, name: str
    ) -> None:
        everything = api_audit(auditor)["findings"]
        values = Counter(API_VALUE[name](f) for f in everything)
        value = next(v for v, _ in values.most_common() if v)
        html = page(auditor, **{name: value}, size=100)
        narrowed = api_audit(auditor, **{name: value})
        assert 0 < count(html, "findings") == narrowed["total"] < len(everything)
        assert all(value in row[name] for row in rows_of(html))

    def test_rule_and_severity_narrow_to_their_findings(self, auditor: TestClient) -> None:
        counts = api_audit(auditor)["counts"]
        rule = max(counts, key=counts.get)
        html = page(auditor, rule=rule, size=100)
        assert count(html, "findings") == counts[rule]
        assert {r["code"] for r in rows_of(html)} == {rule}
        findings = api_audit(auditor)["findings"]
        errors = sum(f["severity"] == "error" for f in findings)
        html = page(auditor, severity="error", size=100)
        assert count(html, "findings") == errors
        assert {r["severity"] for r in rows_of(html)} <= {"Error"}

    def test_new_and_resolved_since_a_snapshot_are_the_apis(self, auditor: TestClient) -> None:
        api = api_audit(auditor, since=1)
        html = page(auditor, since=1, size=100)
        assert count(html, "new") == len(api["new"])
        assert count(html, "resolved") == len(api["resolved"])
        assert count(html, "rows") == api["total"] + len(api["resolved"])
        new = rows_of(page(auditor, since=1, change="new", size=100), comparing=True)
        assert {r["change"] for r in new} <= {"New"}
        assert sorted(r["gln"] for r in new) == sorted(f["gln"] or "" for f in api["new"])
        resolved = rows_of(page(auditor, since=1, change="resolved"), comparing=True)
        assert len(resolved) == len(api["resolved"])

    def test_an_unknown_snapshot_to_compare_with_is_said_so(self, auditor: TestClient) -> None:
        answer = auditor.get("/ui/audit", params={"since": 999})
        assert answer.status_code == 404
        assert "no snapshot 999" in answer.text

    def test_a_value_the_form_cannot_send_is_dropped_and_named(self, auditor: TestClient) -> None:
        html = page(auditor, rule="NOPE", page="x", size="5000")
        assert "could not be used" in html and "rule" in html
        assert count(html, "findings") == api_audit(auditor)["total"]


class TestSortingAndPaging:
    def test_pages_hold_the_page_size_and_together_every_row(self, auditor: TestClient) -> None:
        total = api_audit(auditor)["total"]
        assert total > 50, "the sandbox should have more than one page of findings"
        first = rows_of(page(auditor))
        assert len(first) == 50
        pages = [rows_of(page(auditor, page=n)) for n in range(2, (total - 1) // 50 + 2)]
        together = first + [row for rows in pages for row in rows]
        assert len(together) == total
        keys = {(r["code"], r["gln"], r["sor_id"]) for r in together}
        assert len(keys) == total, "no row twice, none left out"

    def test_page_links_keep_the_filters_and_a_page_beyond_the_last_shows_the_last(
        self, auditor: TestClient
    ) -> None:
        html = page(auditor, since=1, sort="gln", order="desc")
        links = re.findall(r'href="(/ui/audit\?[^"]*page=2[^"]*)"', html)
        assert links
        assert all(all(q in link for q in ("since=1", "sort=gln", "order=desc")) for link in links)
        last = page(auditor, page=999)
        assert 'aria-current="page"' in last and len(rows_of(last)) >= 1

    def test_the_page_size_is_between_50_and_100(self, auditor: TestClient) -> None:
        assert len(rows_of(page(auditor, size=100))) == min(100, api_audit(auditor)["total"])
        assert len(rows_of(page(auditor, size=10))) == 50
        assert len(rows_of(page(auditor, size=500))) == min(100, api_audit(auditor)["total"])

    @pytest.mark.parametrize("column", ["gln", "sor_id", "region", "vans"])
    def test_a_column_sorts_both_ways(self, auditor: TestClient, column: str) -> None:
        up = [r[column] for r in rows_of(page(auditor, sort=column, size=100))]
        assert up == sorted(up)
        down = [r[column] for r in rows_of(page(auditor, sort=column, order="desc", size=100))]
        assert down == sorted(down, reverse=True)

    def test_severity_sorts_errors_first_and_the_header_says_how(self, auditor: TestClient) -> None:
        html = page(auditor, sort="severity", size=100)
        ranks = {"Error": 0, "Warning": 1, "Info": 2}
        shown = [ranks[r["severity"]] for r in rows_of(html)]
        assert shown == sorted(shown)
        assert re.search(r'aria-sort="ascending">\s*<a href="[^"]*order=desc', html)


class TestDownloads:
    def test_csv_holds_exactly_the_rows_selected_in_their_order(self, auditor: TestClient) -> None:
        query = {"severity": "warning", "sort": "gln", "order": "desc"}
        html = page(auditor, **query, size=100)
        rows = csv_rows(auditor, **query)
        assert len(rows) == count(html, "rows")
        assert {r["severity"] for r in rows} == {"warning"}
        shown = [(r["code"], r["gln"], r["sor_id"]) for r in rows_of(html)]
        assert [(r["code"], r["gln"], r["sor_id"]) for r in rows][: len(shown)] == shown

    def test_csv_of_a_comparison_says_what_changed(self, auditor: TestClient) -> None:
        api = api_audit(auditor, since=1)
        rows = csv_rows(auditor, since=1)
        changes = Counter(r["change"] for r in rows)
        assert changes["new"] == len(api["new"])
        assert changes["resolved"] == len(api["resolved"])
        assert changes["new"] + changes["existing"] == api["total"]

    def test_xlsx_holds_the_same_rows_as_the_csv(self, auditor: TestClient) -> None:
        query = {"rule": "BAD_CHECK_DIGIT"}
        answer = auditor.get("/ui/audit/findings.xlsx", params=query)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(io.BytesIO(answer.content))["Findings"]
        values = list(sheet.iter_rows(values_only=True))
        assert values[0][:3] == ("Code", "Severity", "GLN")
        from_csv = [(r["code"], r["gln"], r["sor_id"]) for r in csv_rows(auditor, **query)]
        assert [(v[0], v[2], v[3]) for v in values[1:]] == from_csv

    def test_a_download_of_an_unknown_snapshot_is_a_page_saying_so(
        self, auditor: TestClient
    ) -> None:
        answer = auditor.get("/ui/audit/findings.csv", params={"since": 999})
        assert answer.status_code == 404 and "no snapshot 999" in answer.text

    def test_text_that_looks_like_a_formula_stays_text_in_the_workbook(
        self, auditor: TestClient
    ) -> None:
        answer = auditor.get("/ui/audit/findings.xlsx", params={"region": "=1+1"})
        cells = {
            row[0].value: row[1] for row in load_workbook(io.BytesIO(answer.content))["Selection"]
        }
        assert cells["region"].value == "=1+1" and cells["region"].data_type == "s"


class TestOwners:
    @pytest.fixture
    def restricted(self, ui_client: UiClient, world: World) -> TestClient:
        return ui_client("audit:read", owners=(world.owner_in,), lang="en")

    def test_a_restricted_token_sees_only_its_owners_findings(
        self, restricted: TestClient, world: World
    ) -> None:
        html = page(restricted, size=100)
        rows = rows_of(html)
        assert count(html, "findings") == api_audit(restricted)["total"] == len(rows)
        assert rows and all(f"({world.owner_in})" in r["owner"] for r in rows)
        assert world.owner_out not in html
        assert all(r["owner_sor_id"] == world.owner_in for r in csv_rows(restricted))

    def test_another_owner_is_refused_on_the_page_and_in_the_downloads(
        self, restricted: TestClient, world: World
    ) -> None:
        for path in ("/ui/audit", "/ui/audit/findings.csv", "/ui/audit/findings.xlsx"):
            answer = restricted.get(path, params={"owner": world.owner_out})
            assert answer.status_code == 403, path
            assert "outside the owners" in answer.text

    def test_a_token_without_audit_read_is_refused(self, ui_client: UiClient) -> None:
        client = ui_client("registry:read", lang="en")
        for path in ("/ui/audit", "/ui/audit/findings.csv"):
            assert client.get(path).status_code == 403
        assert 'href="/ui/audit"' not in client.get("/ui/audit").text


def test_the_snapshot_is_audited_once_not_per_request(
    auditor: TestClient, synced_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = page(auditor)

    def no_more(*args: object, **kwargs: object) -> None:
        raise AssertionError("the current snapshot was audited again")

    monkeypatch.setattr(audit_service, "audit", no_more)
    assert rows_of(page(auditor, size=50)) == rows_of(first)
    assert csv_rows(auditor)


def test_it_is_in_danish_by_default(ui_client: UiClient) -> None:
    html = page(ui_client("audit:read"))
    assert "Fund" in html and "Alvorlighed" in html


def test_a_danish_page_names_each_rule_in_danish_and_marks_the_english_detail(
    ui_client: UiClient,
) -> None:
    html = page(ui_client("audit:read"), rule="BAD_CHECK_DIGIT", size=100)
    english = page(ui_client("audit:read", lang="en"), rule="BAD_CHECK_DIGIT", size=100)
    assert rows_of(html), "the sandbox has BAD_CHECK_DIGIT findings"
    title = re.search(r"<strong>([^<]+)</strong><br><span class=\"hint\" lang=\"en\">", html)
    assert title is not None and "kontrolciffer" in title.group(1).lower()
    assert 'lang="en"' not in english.split("<main", 1)[1]


def test_the_region_column_shows_the_regions_name_and_code(ui_client: UiClient) -> None:
    rows = rows_of(page(ui_client("audit:read", lang="en"), sort="region", size=100))
    regions = {r["region"] for r in rows if r["region"]}
    assert regions and all(re.fullmatch(r"Region \S+ 108[1-5]", r) for r in regions), regions
