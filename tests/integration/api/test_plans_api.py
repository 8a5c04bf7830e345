"""``/v1/plans``: scope ``plan:write``, owner restrictions, create / read / verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.services.plans import plan_events, submit_plan
from tests.support.api import World, assert_problem, bearer

SWITCH = {"switch_to": "carecommunication"}


def _post(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    return client.post("/v1/plans", json=body, headers=bearer(token))


class TestAuth:
    def test_no_unknown_or_revoked_token_is_401(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        body = {"owner": world.owner_in, **SWITCH}
        assert_problem(client.post("/v1/plans", json=body), 401, "unauthorized")
        assert_problem(_post(client, "sst_not-a-token", body), 401, "unauthorized")
        revoked = issue("plan:write", revoked=True)
        assert_problem(_post(client, revoked, body), 401, "unauthorized")
        assert_problem(client.get("/v1/plans/1"), 401)
        assert_problem(client.post("/v1/plans/1/verify"), 401)

    def test_a_token_without_plan_write_is_403(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        token = issue("audit:read", "registry:read", "route:read")
        body = {"owner": world.owner_in, **SWITCH}
        assert_problem(_post(client, token, body), 403, "forbidden")
        assert_problem(client.get("/v1/plans/1", headers=bearer(token)), 403, "forbidden")


class TestOwners:
    def test_a_restricted_token_plans_only_for_its_own_owners(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        region = issue("plan:write", owners=(world.owner_in,), name="region")
        mine = _post(client, region, {"owner": world.owner_in, **SWITCH})
        assert mine.status_code == 201, mine.text
        plan = mine.json()
        assert plan["owners"] == [world.owner_in] and plan["created_by"] == "token:region"
        assert {i["owner_sor_id"] for i in plan["items"]} <= {world.owner_in}
        other = _post(client, region, {"owner": world.owner_out, **SWITCH})
        assert_problem(other, 403, "forbidden")
        every = _post(client, region, {"owner_kind": "municipality", **SWITCH})
        assert_problem(every, 403, "forbidden")
        got = client.get(f"/v1/plans/{plan['id']}", headers=bearer(region))
        assert got.status_code == 200 and got.json() == plan

    def test_a_restricted_token_cannot_read_or_verify_other_owners_plans(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        medcom = issue("plan:write")
        theirs = _post(client, medcom, {"owner": world.owner_out, **SWITCH}).json()
        region = issue("plan:write", owners=(world.owner_in,))
        assert_problem(client.get(f"/v1/plans/{theirs['id']}", headers=bearer(region)), 403)
        verify = client.post(f"/v1/plans/{theirs['id']}/verify", headers=bearer(region))
        assert_problem(verify, 403)

    def test_an_unrestricted_token_plans_for_every_municipal_owner(
        self, client: TestClient, issue: Callable[..., str]
    ) -> None:
        medcom = issue("plan:write")
        response = _post(client, medcom, {"owner_kind": "municipality", **SWITCH})
        assert response.status_code == 201, response.text
        plan = response.json()
        assert plan["owner_kind"] == "municipality" and plan["owners"]
        assert {i["owner_sor_id"] for i in plan["items"]} <= set(plan["owners"])
        assert plan["counts"]["planned"] == len(plan["items"]) > 0


class TestRequests:
    def test_bad_requests(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        token = issue("plan:write")
        both = {"owner": world.owner_in, **SWITCH, "from_findings": "FHIR_WITHOUT_FCTL"}
        assert_problem(_post(client, token, both), 422, "invalid-plan")
        assert_problem(_post(client, token, {"owner": world.owner_in}), 422, "invalid-plan")
        unknown_code = {"owner": world.owner_in, "from_findings": "NOPE"}
        assert_problem(_post(client, token, unknown_code), 422, "invalid-plan")
        assert_problem(_post(client, token, {"owner": "12345", **SWITCH}), 404)
        assert_problem(_post(client, token, {"owner": "not-digits", **SWITCH}), 422)
        assert_problem(client.get("/v1/plans/999", headers=bearer(token)), 404)
        assert_problem(client.post("/v1/plans/999/verify", headers=bearer(token)), 404)

    def test_from_findings_and_verify(
        self, client: TestClient, synced_app: App, issue: Callable[..., str], world: World
    ) -> None:
        token = issue("plan:write", name="ops")
        created = _post(client, token, {"owner_kind": "municipality", **SWITCH}).json()
        findings = _post(
            client, token, {"owner": world.owner_in, "from_findings": "FDIS91_WITH_LEGACY"}
        )
        assert findings.status_code == 201, findings.text
        assert {i["action"] for i in findings.json()["items"]} <= {"remove"}
        with synced_app.uow() as uow:
            submit_plan(uow, created["id"], "worklist", actor="ops")
        response = client.post(f"/v1/plans/{created['id']}/verify", headers=bearer(token))
        assert response.status_code == 200, response.text
        result = response.json()
        # Built on the current snapshot and verified on it: nothing has been taken yet.
        assert result["counts"]["pending"] == len(created["items"])
        assert result["changed"] == len(created["items"])
        with synced_app.uow() as uow:
            events = plan_events(uow, created["id"])
        assert [(e.action, e.actor) for e in events if e.item_id is None] == [
            ("created", "token:ops"),
            ("submitted", "ops"),
            ("verified", "token:ops"),
        ]


def _closed_loopback_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestSubmit:
    def test_the_worklist_is_csv_with_one_row_per_item_and_glns_as_text(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        token = issue("plan:write")
        plan = _post(client, token, {"owner": world.owner_in, **SWITCH}).json()
        response = client.get(f"/v1/plans/{plan['id']}/worklist", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        lines = response.text.splitlines()
        assert lines[0] == "gln,owner,action,message_type,version,reason"
        assert len(lines) == 1 + len(plan["items"])
        assert {line.split(",")[0] for line in lines[1:]} == {i["gln"] for i in plan["items"]}

    def test_submitting_as_a_worklist_marks_every_item_submitted(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        token = issue("plan:write")
        plan = _post(client, token, {"owner": world.owner_in, **SWITCH}).json()
        response = client.post(
            f"/v1/plans/{plan['id']}/submit", json={"channel": "worklist"}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        assert response.json()["counts"]["submitted"] == len(plan["items"]) > 0

    def test_a_restricted_token_cannot_submit_or_export_other_owners_plans(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        theirs = _post(client, issue("plan:write"), {"owner": world.owner_out, **SWITCH}).json()
        region = issue("plan:write", owners=(world.owner_in,))
        submit = client.post(
            f"/v1/plans/{theirs['id']}/submit", json={"channel": "worklist"}, headers=bearer(region)
        )
        assert_problem(submit, 403, "forbidden")
        export = client.get(f"/v1/plans/{theirs['id']}/worklist", headers=bearer(region))
        assert_problem(export, 403, "forbidden")
        reader = issue("audit:read")
        assert_problem(
            client.post(f"/v1/plans/{theirs['id']}/submit", json={"channel": "worklist"}), 401
        )
        assert_problem(
            client.get(f"/v1/plans/{theirs['id']}/worklist", headers=bearer(reader)), 403
        )

    def test_an_unknown_channel_is_422_and_an_unknown_plan_404(
        self, client: TestClient, issue: Callable[..., str]
    ) -> None:
        token = issue("plan:write")
        fax = client.post("/v1/plans/1/submit", json={"channel": "fax"}, headers=bearer(token))
        assert_problem(fax, 422)
        missing = client.post(
            "/v1/plans/999/submit", json={"channel": "worklist"}, headers=bearer(token)
        )
        assert_problem(missing, 404)

    def test_an_unreachable_sorus_is_502_and_leaves_the_items_planned(
        self, client: TestClient, synced_app: App, issue: Callable[..., str], world: World
    ) -> None:
        from soredi_sync.config import RetrySettings

        soap = synced_app.settings.soap
        soap.sorus.address = f"http://127.0.0.1:{_closed_loopback_port()}/sorus"
        soap.retry = RetrySettings(attempts=2, initial_wait=0, max_wait=0)
        token = issue("plan:write")
        plan = _post(client, token, {"owner": world.owner_in, **SWITCH}).json()
        response = client.post(
            f"/v1/plans/{plan['id']}/submit", json={"channel": "sorus"}, headers=bearer(token)
        )
        problem = assert_problem(response, 502, "sorus-failed")
        assert "0 of" in problem["detail"] and "connection failed" in problem["detail"]
        after = client.get(f"/v1/plans/{plan['id']}", headers=bearer(token)).json()
        assert after["counts"]["planned"] == len(plan["items"])
