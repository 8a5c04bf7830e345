"""The console's change plans (``/ui/plans``) over the synced sandbox: creating a plan from a
switch or from findings, the list, the plan's items and history, the worklist (the API's own),
submitting (worklist, SORUS sandbox, SORUS failing) and verifying; the owner rules and the
CSRF check of every form, as the API's ``/v1/plans`` decides them."""

from __future__ import annotations

import csv
import io
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

import soredi_sync.ui.pages.plans as plans_page
from soredi_sync.bootstrap import App
from soredi_sync.config import RetrySettings
from soredi_sync.domain.audit import OwnerKind
from soredi_sync.domain.plans import (
    from_findings,
    institution_owners,
    switch_to_carecommunication,
)
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import Plan
from soredi_sync.sandbox.soap import SoapSandboxServer
from soredi_sync.services.plans import (
    PlanRequestError,
    create_plan,
    get_plan,
    list_plans,
    plan_counts,
    submit_plan,
)
from tests.support.api import bearer
from tests.support.app import current_view
from tests.support.sandbox import SANDBOX_SEED
from tests.support.ui import UiClient, csrf_of

SWITCH = "switch-to:carecommunication"
FINDINGS = ("FDIS91_WITH_LEGACY", "FHIR_WITHOUT_FCTL")


@dataclass(frozen=True)
class Owners:
    """Institution owners of the synced snapshot that plans have items for."""

    switching: str  # a switch to CareCommunication has items for it
    other: str  # another such owner
    findings: tuple[str, str]  # (finding code, an owner with items for it)
    municipality: bool  # the snapshot has municipal owners


@pytest.fixture
def owners(synced_app: App) -> Owners:
    view = current_view(synced_app)
    every = institution_owners(view)
    switching = [o for o in sorted(every) if len(switch_to_carecommunication(view, [o])) >= 2]
    found = next(
        (code, owner)
        for code in FINDINGS
        for owner in sorted(every)
        if from_findings(view, [owner], code)
    )
    kinds = {o.kind for o in every.values()}
    return Owners(switching[0], switching[1], found, OwnerKind.MUNICIPALITY in kinds)


@pytest.fixture
def operator(ui_client: UiClient) -> TestClient:
    """MedCom's operator: every owner."""
    return ui_client("plan:write", "registry:read", lang="en")


@pytest.fixture
def regional(ui_client: UiClient, owners: Owners) -> TestClient:
    """A token restricted to one owner that has a plan to make."""
    return ui_client("plan:write", owners=(owners.switching,), lang="en")


def create(client: TestClient, **fields: str) -> httpx.Response:
    """POST the create form (the CSRF token from the list page), not followed."""
    csrf = csrf_of(page(client, "/ui/plans"))
    data = {"goal": SWITCH, "scope": "owner", **fields}
    return client.post("/ui/plans", data={"csrf_token": csrf, **data}, follow_redirects=False)


def created(client: TestClient, **fields: str) -> int:
    """Create a plan through the form; its id, from the redirect to its page."""
    answer = create(client, **fields)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/ui/plans/(\d+)\?done=created", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def post(client: TestClient, path: str, page_path: str, **data: str) -> httpx.Response:
    """POST ``data`` to ``path`` with the CSRF token of ``page_path``; not followed."""
    csrf = csrf_of(page(client, page_path))
    return client.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)


def page(client: TestClient, path: str, **query: Any) -> str:
    answer = client.get(path, params=query or None)  # None: keep the query of ``path``
    assert answer.status_code == 200, answer.text
    return answer.text


def count(html: str, state: str) -> int:
    found = re.search(rf'<span id="count-{state}" class="plan-count">([^<]*)</span>', html)
    assert found, f"no count of {state} on the page"
    return int(re.sub(r"\D", "", found.group(1)))


def item_rows(html: str) -> list[tuple[str, str]]:
    """(item id, state) of each row of the items table."""
    return re.findall(r'<tr id="item-(\d+)" data-state="(\w+)">', html)


def api_plan(client: TestClient, plan_id: int) -> dict[str, Any]:
    token = client.ui_token  # type: ignore[attr-defined]
    answer = client.get(f"/v1/plans/{plan_id}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def outcome(html: str) -> str | None:
    found = re.search(r'id="outcome" data-outcome="([\w-]+)"', html)
    return found.group(1) if found else None


class TestCreate:
    def test_a_plan_from_a_switch_is_created_and_its_items_are_the_apis(
        self, operator: TestClient, owners: Owners
    ) -> None:
        plan_id = created(operator, owner=owners.switching)
        html = page(operator, f"/ui/plans/{plan_id}", done="created")
        assert outcome(html) == "created"
        api = api_plan(operator, plan_id)
        assert api["owners"] == [owners.switching] and api["goal"] == SWITCH
        assert api["created_by"].startswith("token:")  # recorded as the API records it
        rows = item_rows(html)
        assert sorted(int(i) for i, _ in rows) == sorted(i["id"] for i in api["items"])
        assert {state for _, state in rows} == {"planned"}
        assert count(html, "planned") == count(html, "all") == len(api["items"])
        assert "Switch to CareCommunication" in html

    def test_a_plan_from_findings_resolves_those_findings(
        self, operator: TestClient, owners: Owners
    ) -> None:
        code, owner = owners.findings
        plan_id = created(operator, goal=f"findings:{code}", owner=owner)
        api = api_plan(operator, plan_id)
        assert api["goal"] == f"findings:{code}" and api["items"]
        assert {i["reason"] for i in api["items"]} == {code}
        expected = {"FDIS91_WITH_LEGACY": {"remove"}, "FHIR_WITHOUT_FCTL": {"add"}}[code]
        assert {i["action"] for i in api["items"]} == expected
        assert f"Resolve the findings {code}" in page(operator, f"/ui/plans/{plan_id}")

    def test_an_unrestricted_token_plans_for_every_owner_of_a_kind(
        self, operator: TestClient, owners: Owners
    ) -> None:
        assert owners.municipality
        plan_id = created(operator, scope="kind", owner_kind="municipality")
        api = api_plan(operator, plan_id)
        assert api["owner_kind"] == "municipality" and api["owners"]
        assert "Every municipality" in page(operator, f"/ui/plans/{plan_id}")

    def test_the_list_shows_the_plans_newest_first_with_their_counts(
        self, operator: TestClient, owners: Owners
    ) -> None:
        first = created(operator, owner=owners.switching)
        second = created(operator, owner=owners.other)
        html = page(operator, "/ui/plans")
        listed = [int(i) for i in re.findall(r'<tr id="plan-(\d+)">', html)]
        assert listed == [second, first]
        row = html.split(f'<tr id="plan-{first}">')[1].split("</tr>")[0]
        assert f'href="/ui/plans/{first}"' in row and "Switch to CareCommunication" in row
        assert f"Planned</span> {len(api_plan(operator, first)['items'])}" in row

    def test_a_form_that_cannot_be_used_is_shown_again_with_the_reason(
        self, operator: TestClient
    ) -> None:
        answer = create(operator, owner="not digits")
        assert answer.status_code == 422
        assert 'data-problem="invalid-form"' in answer.text
        assert 'aria-invalid="true"' in answer.text and 'value="not digits"' in answer.text
        unknown = create(operator, owner="12345")
        assert unknown.status_code == 404
        assert "There is no institution owner 12345" in unknown.text
        assert create(operator, goal="switch-to:fax", owner="12345").status_code == 422
        assert create(operator, scope="kind", owner_kind="galaxy").status_code == 422

    def test_a_plan_the_use_case_refuses_is_the_form_again_with_its_reason(
        self, operator: TestClient, owners: Owners, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(*args: object, **kwargs: object) -> None:
            raise PlanRequestError("the message-type table has no FHIR acknowledgement type")

        monkeypatch.setattr(plans_page, "create_plan", refuse)
        answer = create(operator, owner=owners.switching)
        assert answer.status_code == 422
        assert 'data-problem="invalid-plan"' in answer.text
        assert "has no FHIR acknowledgement type" in answer.text
        assert 'id="goal-1" name="goal"' in answer.text  # the form is there again

    def test_it_is_in_danish_by_default(self, ui_client: UiClient, owners: Owners) -> None:
        client = ui_client("plan:write")
        html = page(client, "/ui/plans")
        assert "Ændringsplaner" in html and "Opret planen" in html
        plan_id = created(client, owner=owners.switching)
        html = page(client, f"/ui/plans/{plan_id}", done="created")
        assert "Planlagt" in html and "Skift til CareCommunication" in html


class TestOwners:
    def test_a_restricted_token_chooses_among_its_own_owners_only(
        self, regional: TestClient, owners: Owners
    ) -> None:
        html = page(regional, "/ui/plans")
        assert re.findall(r'<option value="(\d+)"', html) == [owners.switching]
        assert 'name="scope" value="kind"' not in html
        plan_id = created(regional, owner=owners.switching)
        assert api_plan(regional, plan_id)["owners"] == [owners.switching]

    def test_a_restricted_token_cannot_plan_for_another_owner_or_every_owner_of_a_kind(
        self, regional: TestClient, owners: Owners
    ) -> None:
        other = create(regional, owner=owners.other)
        assert other.status_code == 403 and "outside the owners" in other.text
        every = create(regional, scope="kind", owner_kind="municipality")
        assert every.status_code == 403
        assert "There is no plan for your institution owners yet." in page(regional, "/ui/plans")

    def test_a_restricted_token_cannot_see_or_act_on_another_owners_plan(
        self, operator: TestClient, regional: TestClient, owners: Owners
    ) -> None:
        theirs = created(operator, owner=owners.other)
        mine = created(regional, owner=owners.switching)
        item = api_plan(operator, theirs)["items"][0]["id"]
        for path in (
            f"/ui/plans/{theirs}",
            f"/ui/plans/{theirs}/worklist.csv",
            f"/ui/plans/{theirs}/worklist.xlsx",
            f"/ui/plans/{theirs}/items/{item}",
        ):
            answer = regional.get(path)
            assert answer.status_code == 403, path
            assert "outside those your token is restricted to" in answer.text
        for action, data in (("submit", {"channel": "worklist"}), ("verify", {})):
            answer = post(regional, f"/ui/plans/{theirs}/{action}", "/ui/plans", **data)
            assert answer.status_code == 403, action
        assert count(page(operator, f"/ui/plans/{theirs}"), "planned") > 0
        listed = re.findall(r'<tr id="plan-(\d+)">', page(regional, "/ui/plans"))
        assert listed == [str(mine)]
        assert {theirs, mine} <= {
            int(i) for i in re.findall(r'<tr id="plan-(\d+)">', page(operator, "/ui/plans"))
        }

    def test_without_plan_write_the_page_is_not_offered_and_refused(
        self, ui_client: UiClient, operator: TestClient, owners: Owners
    ) -> None:
        plan_id = created(operator, owner=owners.switching)
        reader = ui_client("audit:read", "registry:read", lang="en")
        assert 'href="/ui/plans"' not in page(reader, "/ui/audit")
        for path in ("/ui/plans", f"/ui/plans/{plan_id}", f"/ui/plans/{plan_id}/worklist.csv"):
            assert reader.get(path).status_code == 403, path
        refused = post(reader, "/ui/plans", "/ui/audit", owner=owners.switching, goal=SWITCH)
        assert refused.status_code == 403
        assert 'href="/ui/plans"' in page(operator, "/ui/plans")

    def test_an_unknown_plan_or_item_is_not_found(
        self, operator: TestClient, owners: Owners
    ) -> None:
        assert operator.get("/ui/plans/999").status_code == 404
        plan_id = created(operator, owner=owners.switching)
        assert operator.get(f"/ui/plans/{plan_id}/items/999999").status_code == 404


class TestCsrf:
    def test_every_form_without_its_csrf_token_is_refused_and_changes_nothing(
        self, operator: TestClient, owners: Owners
    ) -> None:
        plan_id = created(operator, owner=owners.switching)
        before = api_plan(operator, plan_id)
        posts = (
            ("/ui/plans", {"goal": SWITCH, "scope": "owner", "owner": owners.other}),
            (f"/ui/plans/{plan_id}/submit", {"channel": "worklist"}),
            (f"/ui/plans/{plan_id}/verify", {}),
        )
        for path, data in posts:
            for csrf in ({}, {"csrf_token": "forged"}):
                answer = operator.post(path, data={**data, **csrf}, follow_redirects=False)
                assert answer.status_code == 403, (path, csrf)
                assert "did not come from this console" in answer.text
        assert api_plan(operator, plan_id) == before
        assert re.findall(r'<tr id="plan-(\d+)">', page(operator, "/ui/plans")) == [str(plan_id)]


class TestWorklist:
    def test_the_csv_worklist_is_the_apis(self, operator: TestClient, owners: Owners) -> None:
        plan_id = created(operator, owner=owners.switching)
        mine = operator.get(f"/ui/plans/{plan_id}/worklist.csv")
        token = operator.ui_token  # type: ignore[attr-defined]
        api = operator.get(f"/v1/plans/{plan_id}/worklist", headers=bearer(token))
        assert mine.status_code == api.status_code == 200
        assert mine.content == api.content
        assert mine.headers["content-type"] == api.headers["content-type"]
        assert mine.headers["content-disposition"] == api.headers["content-disposition"]
        assert f'href="/ui/plans/{plan_id}/worklist.csv"' in page(operator, f"/ui/plans/{plan_id}")

    def test_the_xlsx_worklist_holds_the_same_rows_with_glns_as_text(
        self, operator: TestClient, owners: Owners
    ) -> None:
        plan_id = created(operator, owner=owners.switching)
        rows = list(csv.reader(io.StringIO(operator.get(f"/ui/plans/{plan_id}/worklist.csv").text)))
        answer = operator.get(f"/ui/plans/{plan_id}/worklist.xlsx")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(io.BytesIO(answer.content)).active
        assert sheet is not None
        values = [
            [c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)
        ]
        assert values == rows
        assert all(isinstance(row[0], str) for row in values)


class TestSubmitAndVerify:
    def test_submitting_as_a_worklist_marks_every_item_submitted_and_says_so(
        self, operator: TestClient, owners: Owners
    ) -> None:
        plan_id = created(operator, owner=owners.switching)
        n = len(api_plan(operator, plan_id)["items"])
        path = f"/ui/plans/{plan_id}"
        answer = post(operator, f"{path}/submit", path, channel="worklist")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{path}?done=submitted&channel=worklist"
        html = page(operator, answer.headers["location"])
        assert outcome(html) == "submitted-worklist"
        assert count(html, "submitted") == n and count(html, "planned") == 0
        assert 'id="nothing-to-submit"' in html

    def test_verifying_judges_the_submitted_items_and_each_step_is_in_the_history(
        self, operator: TestClient, owners: Owners
    ) -> None:
        plan_id = created(operator, owner=owners.switching)
        path = f"/ui/plans/{plan_id}"
        assert 'id="nothing-to-verify"' in page(operator, path)
        post(operator, f"{path}/submit", path, channel="worklist")
        answer = post(operator, f"{path}/verify", path)
        assert answer.status_code == 303 and answer.headers["location"] == f"{path}?done=verified"
        html = page(operator, answer.headers["location"])
        n = len(api_plan(operator, plan_id)["items"])
        # Built on the current snapshot and verified on it: SOR has taken nothing yet.
        assert outcome(html) == "verified"
        assert "items changed state" in html and count(html, "pending") == n
        history = html.split('class="timeline plan-history"')[1]
        assert re.findall(r"<strong>(\w+)</strong>", history) == [
            "Verified",
            "Submitted",
            "Created",
        ]

        item_id, state = item_rows(html)[0]
        assert state == "pending"
        item = page(operator, f"{path}/items/{item_id}")
        assert 'data-state="pending"' in item
        steps = re.findall(r'<li data-to="(\w*)">', item)
        assert steps == ["pending", "submitted", "planned"]  # the newest first

    def test_the_items_can_be_listed_by_state(self, operator: TestClient, owners: Owners) -> None:
        plan_id = created(operator, owner=owners.switching)
        path = f"/ui/plans/{plan_id}"
        assert item_rows(page(operator, path, state="planned"))
        assert item_rows(page(operator, path, state="confirmed")) == []
        assert item_rows(page(operator, path, state="nonsense"))  # unknown: every state

    def test_an_unknown_channel_is_refused(self, operator: TestClient, owners: Owners) -> None:
        plan_id = created(operator, owner=owners.switching)
        path = f"/ui/plans/{plan_id}"
        answer = post(operator, f"{path}/submit", path, channel="fax")
        assert answer.status_code == 400
        assert count(page(operator, path), "planned") == len(api_plan(operator, plan_id)["items"])

    def test_a_sorus_failure_is_shown_and_the_items_stay_planned(
        self, operator: TestClient, synced_app: App, owners: Owners
    ) -> None:
        soap = synced_app.settings.soap
        soap.sorus.address = f"http://127.0.0.1:{closed_port()}/sorus"
        soap.retry = RetrySettings(attempts=2, initial_wait=0, max_wait=0)
        plan_id = created(operator, owner=owners.switching)
        path = f"/ui/plans/{plan_id}"
        answer = post(operator, f"{path}/submit", path, channel="sorus")
        assert answer.status_code == 502
        assert outcome(answer.text) == "sorus-failed"
        assert "SORUS did not take the plan" in answer.text and "0 of" in answer.text
        n = len(api_plan(operator, plan_id)["items"])
        assert count(answer.text, "planned") == n
        assert count(page(operator, path), "planned") == n

    def test_submitting_through_sorus_records_each_items_receipt(
        self, operator: TestClient, synced_app: App, owners: Owners, sorus: str
    ) -> None:
        synced_app.settings.soap.sorus.address = sorus
        plan_id = created(operator, owner=owners.switching)
        path = f"/ui/plans/{plan_id}"
        answer = post(operator, f"{path}/submit", path, channel="sorus")
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"{path}?done=submitted&channel=sorus"
        html = page(operator, answer.headers["location"])
        n = len(api_plan(operator, plan_id)["items"])
        assert outcome(html) == "submitted-sorus" and count(html, "submitted") == n
        item_id, _ = item_rows(html)[0]
        item = page(operator, f"{path}/items/{item_id}")
        assert "SORUS receipt" in item and "In effect from" in item


class TestListPlans:
    """``list_plans``, the query behind the list (the database's and the fake's)."""

    def test_plans_are_listed_newest_first_with_counts_and_the_owner_rule(
        self, synced_app: App, owners: Owners
    ) -> None:
        with synced_app.uow() as uow:
            ids = [
                create_plan(
                    uow,
                    synced_app.reference.audit_context,
                    actor="test",
                    owners=chosen,
                    switch_to="carecommunication",
                ).id
                for chosen in ([owners.switching], [owners.other], [owners.switching, owners.other])
            ]
            submit_plan(uow, ids[0], "worklist", actor="test")
            every = list_plans(uow)
            assert [p.id for p in every] == ids[::-1]
            for summary in every:
                assert summary.counts == plan_counts(get_plan(uow, summary.id))
            mine = list_plans(uow, within={owners.switching})
            assert [p.id for p in mine] == [ids[0]]
            assert [p.id for p in list_plans(uow, limit=1, offset=1)] == [ids[1]]
            assert list_plans(uow, within=set()) == []
        fake = FakeUnitOfWork()
        with fake:
            for summary in reversed(every):
                plan = get_plan_of(synced_app, summary.id)
                fake.plans.plans[plan.id] = plan
            assert list_plans(fake) == every
            assert list_plans(fake, within={owners.switching}) == mine


def get_plan_of(app: App, plan_id: int) -> Plan:
    with app.uow() as uow:
        return get_plan(uow, plan_id)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sorus() -> Iterator[str]:
    """The SORUS of the SOAP sandbox, on the day the synced snapshot shows (day 1)."""
    with SoapSandboxServer(profile="tiny", seed=SANDBOX_SEED, day=1) as soap:
        yield soap.url("sorus")
