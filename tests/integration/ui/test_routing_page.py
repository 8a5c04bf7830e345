"""The console's "Try a routing decision" page (``/ui/route``) over the synced sandbox: the
form and real MedCom messages (pasted or uploaded) give the decision the API gives for the same
input and token, each decision is logged like the API's, the owner rule and the CSRF check
hold, and a form the API would refuse is shown with what is wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.decision_log import decisions_since
from tests.support.api import World, api_uow, bearer, route_body
from tests.support.app import carrier
from tests.support.real_messages import readdressed
from tests.support.ui import UiClient, csrf_of

PATH = "/ui/route"


def _reference(manifest: Manifest, label: str) -> str:
    return next(g for g, info in manifest.reference_glns.items() if label in info["label"])


def _text(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def shown(html: str) -> dict[str, Any]:
    """The decision as the page shows it: its facts and the rows of its tables."""
    facts = {
        name: _text(m.group(1))
        for name in ("decision", "reason", "message-type", "address-gln", "message-read")
        if (m := re.search(rf'id="{name}"[^>]*>(.*?)</(?:dd|span)>', html, re.S))
    }
    value = re.search(r'id="decision" data-value="(\w+)"', html)
    assert value, "the page shows no decision"
    facts["decision"] = value.group(1)
    for table in ("conversion", "warnings", "trace"):
        body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', html, re.S)
        rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []
        facts[table] = [
            [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows
        ]
    return facts


def expected(api: dict[str, Any]) -> dict[str, Any]:
    """The API's answer in the page's terms."""
    facts: dict[str, Any] = {
        "decision": api["decision"],
        "message-type": api["message_type"] or "–",
        "address-gln": api["address"]["gln"] or "–",
        "conversion": [[c["step"], c["by"] or "–"] for c in api["conversion"]],
        "warnings": [[w["code"], w["message"]] for w in api["warnings"]],
        "trace": [
            [str(n), t["rule"], t["outcome"], t["detail"]]
            for n, t in enumerate(api["trace"], start=1)
        ],
    }
    if api["reason"]:
        facts["reason"] = api["reason"]
    return facts


def post(client: TestClient, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
    """POST to the page with the CSRF token of its form."""
    token = csrf_of(client.get(PATH).text)
    return client.post(PATH, data={"csrf_token": token, **data}, **kwargs)


def question(gln: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "question",
        "receiver_gln": gln or "",
        "business_message": "correspondence",
        "sender_syntax": "fhir",
        **fields,
    }


def api_route(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    token = client.ui_token  # type: ignore[attr-defined]
    answer = client.post("/v1/route", json=body, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture
def router(ui_client: UiClient) -> TestClient:
    return ui_client("route:read", lang="en")


class TestTheForm:
    @pytest.mark.parametrize(
        ("label", "fields", "api_fields"),
        [
            ("XMO", {}, {}),
            ("XMO", {"at": "2027-02-01"}, {"at": "2027-02-01"}),
            ("XMO", {"sender_syntax": "oioxml"}, {"sender_syntax": "oioxml"}),
            (
                "XMO",
                {
                    "attachment_mime_type": ["application/pdf", "image/png"],
                    "attachment_size": ["1000", "2000"],
                    "attachment_title": ["brev", ""],
                    "attachment_content": ["data", "link"],
                    "text_length": "5000",
                    "category": "Aftale",
                    "topic": "Tid",
                },
                {
                    "attachments": [
                        {"mime_type": "application/pdf", "size": 1000, "title": "brev"},
                        {"mime_type": "image/png", "size": 2000, "content": "link"},
                    ],
                    "text_length": 5000,
                    "category": "Aftale",
                    "topic": "Tid",
                },
            ),
            ("Aalborg", {}, {}),
        ],
        ids=["native-or-converted", "after-cut-over", "oioxml-sender", "attachments", "other"],
    )
    def test_the_decision_is_the_apis_for_the_same_question(
        self,
        router: TestClient,
        manifest: Manifest,
        label: str,
        fields: dict[str, Any],
        api_fields: dict[str, Any],
    ) -> None:
        gln = _reference(manifest, label)
        answer = post(router, question(gln, **fields))
        assert answer.status_code == 200, answer.text
        api = api_route(router, route_body(gln, **api_fields))
        page = shown(answer.text)
        assert {k: page[k] for k in expected(api)} == expected(api)

    def test_a_receiver_by_sor_id_only_is_answered(
        self, router: TestClient, synced_app: App, manifest: Manifest
    ) -> None:
        gln = _reference(manifest, "XMO")
        sor_id = carrier(synced_app, gln)
        answer = post(router, question(receiver_sor_id=sor_id))
        api = api_route(router, route_body(sor_id=sor_id))
        assert shown(answer.text)["address-gln"] == api["address"]["gln"] == gln

    def test_what_the_api_would_refuse_is_marked_on_the_form(self, router: TestClient) -> None:
        answer = post(router, question(None, text_length="many", attachment_size=["x"]))
        assert answer.status_code == 422
        html = answer.text
        assert 'data-problem="invalid-form"' in html
        assert 'id="err-receiver"' in html, "no receiver at all"
        assert 'id="err-text_length"' in html and 'id="err-attachment_size_1"' in html
        assert 'aria-invalid="true"' in html
        assert 'name="text_length" type="number" value="many"' in html, "what was typed stays"

    def test_an_unknown_business_message_is_the_resolvers_refusal(
        self, router: TestClient, manifest: Manifest
    ) -> None:
        gln = _reference(manifest, "XMO")
        answer = post(router, question(gln, business_message="nope"))
        assert answer.status_code == 422
        assert "unknown business message" in answer.text


class TestAMessage:
    @pytest.mark.parametrize(
        ("name", "receiver", "how"),
        [
            ("cc5-S-B-png.xml", "XMO", "paste"),
            ("ack-AE-3.4.4.json", "XMO", "paste"),
            ("hn-SLHJ_H-discharge.json", "Aalborg", "upload"),
            ("xdis91-ec-physio-2014.xml", "XMO", "upload"),
            ("edi-DIS91-1998.edi", "XMO", "upload"),
            ("edi-CTL03.edi", "XMO", "paste"),
        ],
    )
    def test_a_real_message_gets_the_apis_decision(
        self,
        router: TestClient,
        synced_app: App,
        manifest: Manifest,
        name: str,
        receiver: str,
        how: str,
    ) -> None:
        gln = _reference(manifest, receiver)
        body = readdressed(name, gln, carrier(synced_app, gln))
        if how == "paste":
            answer = post(router, {"kind": "message", "message": body.decode("latin-1")})
        else:
            answer = post(router, {"kind": "message"}, files={"upload": (name, body)})
        assert answer.status_code == 200, answer.text
        api = router.post(
            "/v1/route/message",
            content=body,
            headers={**bearer(router.ui_token), "Content-Type": "application/octet-stream"},  # type: ignore[attr-defined]
        ).json()
        page = shown(answer.text)
        assert {k: page[k] for k in expected(api)} == expected(api)
        read = api["message"]
        assert page["message-read"] == (
            f"{read['message_type']} ({read['syntax']}), {read['business_message']}"
        )

    def test_a_fhir_message_can_be_routed_as_if_sent_in_another_syntax(
        self, router: TestClient, synced_app: App, manifest: Manifest
    ) -> None:
        gln = _reference(manifest, "XMO")
        body = readdressed("cc5-S-B-png.xml", gln, carrier(synced_app, gln))
        answer = post(
            router,
            {"kind": "message", "message_sender_syntax": "oioxml"},
            files={"upload": ("m.xml", body)},
        )
        api = router.post(
            "/v1/route/message?sender_syntax=oioxml",
            content=body,
            headers={**bearer(router.ui_token), "Content-Type": "application/fhir+xml"},  # type: ignore[attr-defined]
        ).json()
        assert shown(answer.text)["trace"] == expected(api)["trace"]

    @pytest.mark.parametrize(
        ("data", "files", "status", "problem"),
        [
            ({"message": "hello"}, None, 422, "invalid-message"),
            ({"message": '{"resourceType": '}, None, 400, "invalid-message"),
            ({"message": ""}, None, 400, "no-message"),
            ({"message": "<x/>"}, {"upload": ("m.xml", b"<x/>")}, 400, "paste-or-upload"),
            ({"message": '{"resourceType": "Patient"}'}, None, 422, "invalid-message"),
        ],
        ids=["not-a-message", "malformed", "nothing", "both", "not-a-bundle"],
    )
    def test_what_cannot_be_routed_says_why(
        self,
        router: TestClient,
        data: dict[str, str],
        files: dict[str, Any] | None,
        status: int,
        problem: str,
    ) -> None:
        answer = post(router, {"kind": "message", **data}, files=files)
        assert answer.status_code == status
        assert f'data-problem="{problem}"' in answer.text

    def test_a_message_over_max_bundle_bytes_is_refused(
        self, ui_client: UiClient, synced_app: App, manifest: Manifest
    ) -> None:
        client = ui_client("route:read", lang="en", max_bundle_bytes=20_000)
        gln = _reference(manifest, "XMO")
        body = readdressed("cc5-S-B-png.xml", gln, carrier(synced_app, gln))  # 48 KB
        for how in ("paste", "upload"):
            if how == "paste":
                answer = post(client, {"kind": "message", "message": body.decode()})
            else:
                answer = post(client, {"kind": "message"}, files={"upload": ("m.xml", body)})
            assert answer.status_code == 413, how
            assert 'data-problem="too-large"' in answer.text, how

    def test_a_message_larger_than_other_bodies_may_be_is_taken(
        self, ui_client: UiClient, synced_app: App, manifest: Manifest
    ) -> None:
        client = ui_client("route:read", lang="en")
        gln = _reference(manifest, "XMO")
        body = readdressed("cc5-S-B-png.xml", gln, carrier(synced_app, gln))
        assert len(body) > client.app.state.ctx.settings.max_body_bytes  # type: ignore[attr-defined]
        answer = post(client, {"kind": "message"}, files={"upload": ("m.xml", body)})
        assert answer.status_code == 200 and shown(answer.text)["decision"] == "deliver"


class TestRules:
    def test_a_post_without_the_csrf_token_is_refused(
        self, router: TestClient, manifest: Manifest
    ) -> None:
        data = question(_reference(manifest, "XMO"))
        assert router.post(PATH, data=data).status_code == 403
        answer = router.post(PATH, data={**data, "csrf_token": "forged"})
        assert answer.status_code == 403
        assert 'id="decision"' not in answer.text

    def test_a_restricted_token_gets_its_owners_receivers_and_403_for_others(
        self, ui_client: UiClient, world: World
    ) -> None:
        client = ui_client("route:read", owners=(world.owner_in,), lang="en")
        inside = post(client, question(world.gln_in))
        assert inside.status_code == 200 and shown(inside.text)["address-gln"] == world.gln_in
        outside = post(client, question(world.gln_out))
        assert outside.status_code == 403
        assert 'data-problem="outside-owners"' in outside.text
        assert 'id="decision"' not in outside.text
        api = client.post(
            "/v1/route",
            json=route_body(world.gln_out),
            headers=bearer(client.ui_token),  # type: ignore[attr-defined]
        )
        assert api.status_code == 403

    def test_a_token_without_route_read_is_refused(self, ui_client: UiClient) -> None:
        client = ui_client("audit:read", lang="en")
        assert client.get(PATH).status_code == 403
        token = csrf_of(client.get("/ui/audit").text)
        assert client.post(PATH, data={"csrf_token": token, **question("1")}).status_code == 403

    def test_each_decision_is_logged_as_the_apis_are(
        self, router: TestClient, synced_app: App, manifest: Manifest
    ) -> None:
        gln = _reference(manifest, "XMO")
        post(router, question(gln, message_id="console-1"))
        post(router, question(None))  # refused: not a decision, not logged
        router.app.state.decision_log.flush()  # type: ignore[attr-defined]
        logged = decisions_since(api_uow(synced_app), datetime.now(UTC) - timedelta(hours=1))
        assert [(e.message_id, e.receiver_gln, e.outcome) for e in logged] == [
            ("console-1", gln, "deliver")
        ]
        assert logged[0].token_id is not None

    def test_it_is_in_danish_by_default(self, ui_client: UiClient, manifest: Manifest) -> None:
        client = ui_client("route:read")
        html = post(client, question(_reference(manifest, "XMO"))).text
        assert "Afgørelsen" in html and "Forretningsmeddelelse" in html
