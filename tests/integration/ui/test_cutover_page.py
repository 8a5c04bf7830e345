"""The console's cut-over page (``/ui/cutover``) and its CSV over the synced sandbox: the date
changes what is lost, the receivers are grouped by owner and sortable by count, the owner
restriction is the API's, and every figure is the one ``GET /v1/cutover`` gives the same token,
decided once per process."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.services import cutover as cutover_service
from soredi_sync.ui import warm_jobs
from soredi_sync.ui.pages import cutover as cutover_page
from tests.support.api import bearer
from tests.support.ui import UiClient, assert_console_headers

CUTOVER = "2027-01-04"
LAST_DAY = "2026-12-31"


def page(client: TestClient, **query: Any) -> str:
    answer = client.get("/ui/cutover", params=query)
    assert answer.status_code == 200, answer.text
    assert_console_headers(answer)
    return answer.text


def api_cutover(client: TestClient, **query: Any) -> dict[str, Any]:
    """The API's answer for the console's token."""
    token = client.ui_token  # type: ignore[attr-defined]
    answer = client.get("/v1/cutover", params=query, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def shown_counts(html: str) -> dict[str, int]:
    """Receivers lost per sender syntax, as the summary table shows them."""
    found = re.findall(r'<td class="num" id="count-(\w+)">([^<]*)</td>', html)
    return {syntax: number(value) for syntax, value in found if syntax != "receivers"}


def receivers_considered(html: str) -> int:
    found = re.search(r'<dd id="count-receivers">([^<]*)</dd>', html)
    assert found, "no count of receivers considered"
    return number(found.group(1))


def owner_rows(html: str) -> list[dict[str, Any]]:
    """The detailed owners table: owner (text), its SOR-ID, kind, count and GLNs listed."""
    body = re.search(r'<table class="lost-owners">.*?<tbody>(.*?)</tbody>', html, re.S)
    if body is None:
        return []
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
        head = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        assert head
        owner = " ".join(unescape(re.sub(r"<[^>]+>", " ", head.group(1))).split())
        sor_id = re.search(r"\((\d+)\)", owner)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append(
            {
                "owner": owner,
                "sor_id": sor_id.group(1) if sor_id else None,
                "kind": unescape(re.sub(r"<[^>]+>", "", cells[0])).strip(),
                "count": number(re.sub(r"<[^>]+>", "", cells[2])),
                "glns": re.findall(r'<span class="mono gln">(\d+)</span>', cells[3]),
            }
        )
    return rows


def lost_by_owner(api: dict[str, Any], syntax: str) -> Counter[str | None]:
    sender = next(s for s in api["senders"] if s["sender_syntax"] == syntax)
    return Counter((r["owner"] or {}).get("sor_id") for r in sender["lost"])


@pytest.fixture
def operator(ui_client: UiClient) -> TestClient:
    return ui_client("audit:read", lang="en")


class TestTheDate:
    def test_after_the_conversions_end_it_shows_what_the_api_says_is_lost(
        self, operator: TestClient
    ) -> None:
        html = page(operator, date=CUTOVER)
        api = api_cutover(operator, date=CUTOVER)
        assert shown_counts(html) == api["counts"]
        assert api["counts"]["fhir"] > 0
        assert receivers_considered(html) == api["receivers"]
        assert f'value="{CUTOVER}"' in html
        assert re.search(rf'<dd id="cutover-snapshot">{api["snapshot"]["id"]}, taken', html)

    def test_the_date_changes_the_result(self, operator: TestClient) -> None:
        before = page(operator, date=LAST_DAY)
        assert set(shown_counts(before).values()) == {0}
        assert "No receiver is lost to fhir senders on this date." in before
        after = page(operator, date=CUTOVER)
        assert shown_counts(after)["fhir"] > 0
        assert owner_rows(after) and not owner_rows(before)

    def test_without_a_date_it_is_the_day_after_the_policys_conversions_end(
        self, operator: TestClient, synced_app: App
    ) -> None:
        policy = synced_app.reference.routing_policy
        ends = [s.valid_to for s in policy.conversions if s.valid_to is not None]
        today = synced_app.routing().today()
        day_after = min(e for e in ends if e >= today) + timedelta(days=1) if ends else None
        expected = day_after or today + timedelta(days=365)
        html = page(operator)
        assert f'name="date" value="{expected.isoformat()}"' in html
        assert shown_counts(html) == api_cutover(operator, date=expected.isoformat())["counts"]

    def test_a_date_the_form_cannot_send_is_named_and_the_default_used(
        self, operator: TestClient
    ) -> None:
        html = page(operator, date="2027-02-30")
        assert "could not be used" in html and "date" in html
        assert shown_counts(html) == shown_counts(page(operator))

    def test_the_policys_conversion_paths_are_shown_open_or_ended_on_the_date(
        self, operator: TestClient
    ) -> None:
        rows = re.findall(
            r'<th scope="row" class="mono">([^<]+)</th>.*?badge--(ok|warning)',
            page(operator, date=CUTOVER),
            re.S,
        )
        states = {unescape(step): state for step, state in rows}
        assert states["fhir->oioxml"] == "warning"
        assert states["oioxml->edifact"] == "ok"  # an agreement step has no end


class TestByOwner:
    def test_the_owners_of_the_shown_syntax_add_up_to_its_count_as_the_api_groups_them(
        self, operator: TestClient
    ) -> None:
        html = page(operator, date=CUTOVER, syntax="fhir")
        api = lost_by_owner(api_cutover(operator, date=CUTOVER), "fhir")
        rows = owner_rows(html)
        assert {r["sor_id"]: r["count"] for r in rows} == dict(api)
        assert all(len(r["glns"]) == r["count"] for r in rows)
        assert sum(r["count"] for r in rows) == shown_counts(html)["fhir"]

    def test_owners_are_sorted_by_count_and_by_name_on_request(self, operator: TestClient) -> None:
        counts = [r["count"] for r in owner_rows(page(operator, date=CUTOVER))]
        assert counts == sorted(counts, reverse=True) and len(set(counts)) > 1
        up = [r["count"] for r in owner_rows(page(operator, date=CUTOVER, order="asc"))]
        assert up == sorted(up)
        names = [r["owner"] for r in owner_rows(page(operator, date=CUTOVER, sort="owner"))]
        assert names == sorted(names, key=str.casefold)

    def test_a_long_list_of_receivers_is_cut_and_the_owner_alone_lists_them_all(
        self, operator: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cutover_page, "GLNS_PER_OWNER", 2)
        html = page(operator, date=CUTOVER)
        big = next(r for r in owner_rows(html) if r["count"] > 2)
        assert len(big["glns"]) == 2
        link = f"owner={big['sor_id']}"
        assert re.search(rf'href="/ui/cutover\?[^"]*{link}[^"]*"', html)
        alone = owner_rows(page(operator, date=CUTOVER, owner=big["sor_id"]))
        assert [len(r["glns"]) for r in alone] == [big["count"]]

    def test_another_sender_syntax_is_detailed_on_request(self, operator: TestClient) -> None:
        html = page(operator, date=CUTOVER, syntax="oioxml")
        api = lost_by_owner(api_cutover(operator, date=CUTOVER), "oioxml")
        assert "Lost to oioxml senders (XDIS91), by owner" in html
        assert {r["sor_id"]: r["count"] for r in owner_rows(html)} == dict(api)

    def test_the_kind_filter_keeps_only_owners_of_that_kind(self, operator: TestClient) -> None:
        rows = owner_rows(page(operator, date=CUTOVER, kind="municipality"))
        assert rows and {r["kind"] for r in rows} == {"Municipality"}

    def test_an_unrestricted_token_narrows_to_an_owner_as_the_api_does(
        self, operator: TestClient
    ) -> None:
        owner = lost_by_owner(api_cutover(operator, date=CUTOVER), "fhir").most_common(1)[0][0]
        assert owner is not None
        html = page(operator, date=CUTOVER, owner=owner)
        api = api_cutover(operator, date=CUTOVER, owner=owner)
        assert shown_counts(html) == api["counts"]
        assert receivers_considered(html) == api["receivers"]
        assert {r["sor_id"] for r in owner_rows(html)} == {owner}

    def test_the_csv_holds_every_receiver_of_the_shown_syntax_and_filters(
        self, operator: TestClient
    ) -> None:
        answer = operator.get(
            "/ui/cutover/lost.csv", params={"date": CUTOVER, "syntax": "fhir", "sort": "owner"}
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        api = api_cutover(operator, date=CUTOVER)
        fhir = next(s for s in api["senders"] if s["sender_syntax"] == "fhir")
        assert sorted(r["gln"] for r in rows) == sorted(r["gln"] for r in fhir["lost"])
        assert {r["sender_syntax"] for r in rows} == {"fhir"}
        assert {r["reached_today_by"] for r in rows} == {"fhir->oioxml"}
        html = page(operator, date=CUTOVER, syntax="fhir", sort="owner")
        listed = [g for r in owner_rows(html) for g in r["glns"]]
        assert [r["gln"] for r in rows][: len(listed)] == listed  # in the page's order


class TestOwners:
    @pytest.fixture
    def owner_with_losses(self, operator: TestClient) -> str:
        lost = lost_by_owner(api_cutover(operator, date=CUTOVER), "fhir")
        return next(o for o, _ in lost.most_common() if o is not None)

    def test_a_restricted_token_sees_only_its_owners_receivers(
        self, ui_client: UiClient, owner_with_losses: str
    ) -> None:
        client = ui_client("audit:read", owners=(owner_with_losses,), lang="en")
        html = page(client, date=CUTOVER)
        api = api_cutover(client, date=CUTOVER)
        assert shown_counts(html) == api["counts"]
        assert receivers_considered(html) == api["receivers"]
        rows = owner_rows(html)
        assert rows and {r["sor_id"] for r in rows} == {owner_with_losses}
        answer = client.get("/ui/cutover/lost.csv", params={"date": CUTOVER})
        assert {r["owner_sor_id"] for r in csv.DictReader(io.StringIO(answer.text))} == {
            owner_with_losses
        }

    def test_another_owner_is_refused_on_the_page_and_in_the_csv(
        self, ui_client: UiClient, owner_with_losses: str, operator: TestClient
    ) -> None:
        lost = lost_by_owner(api_cutover(operator, date=CUTOVER), "fhir")
        other = next(o for o in lost if o not in (None, owner_with_losses))
        client = ui_client("audit:read", owners=(owner_with_losses,), lang="en")
        for path in ("/ui/cutover", "/ui/cutover/lost.csv"):
            answer = client.get(path, params={"date": CUTOVER, "owner": other})
            assert answer.status_code == 403, path
            assert "outside the owners" in answer.text
        assert other not in page(client, date=CUTOVER)

    def test_a_token_without_audit_read_is_refused_and_not_offered_the_page(
        self, ui_client: UiClient
    ) -> None:
        client = ui_client("registry:read", "route:read", lang="en")
        for path in ("/ui/cutover", "/ui/cutover/lost.csv"):
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert "audit:read" in answer.text
        assert 'href="/ui/cutover"' not in client.get("/ui/").text


def test_a_date_is_decided_once_for_the_console_and_the_api(
    operator: TestClient, ui_client: UiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided: list[date] = []
    decide = cutover_service._decide

    def counting(resolver: Any, on: date, *args: Any) -> Any:
        decided.append(on)
        return decide(resolver, on, *args)

    monkeypatch.setattr(cutover_service, "_decide", counting)
    html = page(operator, date=CUTOVER)
    owner = next(r["sor_id"] for r in owner_rows(html) if r["sor_id"])
    page(operator, date=CUTOVER, syntax="oioxml", sort="owner")
    api_cutover(operator, date=CUTOVER)
    restricted = ui_client("audit:read", owners=(owner,), lang="en")
    page(restricted, date=CUTOVER)
    api_cutover(restricted, date=CUTOVER)
    assert decided == [date(2027, 1, 4)]


def test_the_warmer_decides_the_default_date_before_the_page_asks(
    operator: TestClient, synced_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with synced_app.uow() as uow:
        current = uow.registry.current_snapshot()
    assert current is not None
    for job in warm_jobs():
        job(synced_app, current)

    def no_more(*args: object) -> None:
        raise AssertionError("the default date was decided again on request")

    monkeypatch.setattr(cutover_service, "_decide", no_more)
    assert shown_counts(page(operator))


class TestLanguage:
    def test_it_is_in_danish_by_default(self, ui_client: UiClient) -> None:
        html = page(ui_client("audit:read"), date=CUTOVER)
        assert '<html lang="da">' in html
        assert "Omstilling" in html and "Mistede modtagere" in html
        assert "4. jan. 2027" in html
        assert "Receivers lost" not in html

    def test_english_on_request(self, operator: TestClient) -> None:
        html = page(operator, date=CUTOVER)
        assert '<html lang="en">' in html
        assert "Receivers lost" in html and "4 Jan 2027" in html
        assert "Mistede modtagere" not in html
