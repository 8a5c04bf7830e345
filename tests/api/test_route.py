"""POST /v1/route and POST /v1/route/bundle as a conversion gateway calls them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.tokens import create_token

from .conftest import (
    TestClient,
    api_uow,
    assert_problem,
    bearer,
    bundle_json,
    bundle_xml,
    make_client,
    route_body,
)

DECISION_FIELDS = {
    "decision",
    "reason",
    "message_type",
    "message_types",
    "syntax",
    "conversion",
    "attachments",
    "address",
    "warnings",
    "snapshot",
    "decided_on",
    "trace",
    "message_id",
}


def _reference(manifest: Manifest, label: str) -> str:
    return next(g for g, info in manifest.reference_glns.items() if label in info["label"])


@pytest.fixture
def router_token(issue: Callable[..., str]) -> dict[str, str]:
    return bearer(issue("route:read", name="gateway-1"))


class TestRoute:
    def test_fhir_to_a_legacy_system_is_converted_by_the_receivers_vans(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        xmo = _reference(manifest, "XMO")
        body = route_body(
            xmo, attachments=[{"mime_type": "application/pdf", "size": 20_000}], message_id="m-1"
        )
        response = client.post("/v1/route", json=body, headers=router_token)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        data = response.json()
        assert set(data) == DECISION_FIELDS
        assert data["decision"] == "deliver" and data["reason"] is None
        assert data["message_type"] == "XDIS91" and data["syntax"] == "oioxml"
        assert data["conversion"] == [{"step": "fhir->oioxml", "by": "51000035003"}]
        assert data["attachments"] == [
            {"mime_type": "application/pdf", "size": 20_000, "carried_as": "XBIN01"}
        ]
        assert data["address"]["gln"] == xmo
        assert data["snapshot"]["id"] == 2 and data["snapshot"]["age_seconds"] >= 0
        assert data["message_id"] == "m-1"
        assert [t["rule"] for t in data["trace"]][0] == "receiver"
        assert data["trace"][-1] == {
            "rule": "decision",
            "outcome": "deliver",
            "detail": "XDIS91 (oioxml)",
        }

    def test_the_server_side_decision_time_is_in_the_server_timing_header(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        body = route_body(_reference(manifest, "VENA"))
        response = client.post("/v1/route", json=body, headers=router_token)
        name, _, duration = response.headers["server-timing"].partition(";dur=")
        assert name == "decide" and float(duration) >= 0

    def test_a_rejection_is_a_200_answer_with_its_reason(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        body = route_body(_reference(manifest, "XMO"), at="2027-02-01")
        data = client.post("/v1/route", json=body, headers=router_token).json()
        assert data["decision"] == "reject"
        assert data["reason"] == "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE"
        assert data["decided_on"] == "2027-02-01"
        assert data["message_type"] is None and data["conversion"] == []

    def test_a_receiver_by_sor_id_is_addressed_through_the_gln_it_inherits(
        self,
        client: TestClient,
        router_token: dict[str, str],
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        vena = _reference(manifest, "VENA")
        view = client.get(f"/v1/glns/{vena}", headers=bearer(issue("registry:read"))).json()
        inheritor = view["inheritors"][0]["sor_id"]
        data = client.post(
            "/v1/route", json=route_body(sor_id=inheritor), headers=router_token
        ).json()
        assert data["address"] == {
            "sor_id": inheritor,
            "gln": vena,
            "inherited_from": view["owners"][0]["sor_id"],
        }

    def test_an_unknown_receiver_is_rejected_not_an_error(
        self, client: TestClient, router_token: dict[str, str]
    ) -> None:
        data = client.post(
            "/v1/route", json=route_body("5790000000005"), headers=router_token
        ).json()
        assert data["decision"] == "reject" and data["reason"] == "RECEIVER_UNKNOWN"


class TestRouteInput:
    def test_an_unknown_business_message_is_a_422_problem_that_lists_the_known_ones(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        body = route_body(_reference(manifest, "VENA"), business_message="love-letter")
        problem = assert_problem(
            client.post("/v1/route", json=body, headers=router_token), 422, "routing-input"
        )
        assert "love-letter" in problem["detail"] and "correspondence" in problem["detail"]

    def test_an_unknown_sender_syntax_is_a_422_problem(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        body = route_body(_reference(manifest, "VENA"), sender_syntax="morse")
        assert_problem(
            client.post("/v1/route", json=body, headers=router_token), 422, "routing-input"
        )

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"business_message": "correspondence", "sender_syntax": "fhir"}, ["body", "receiver"]),
            (route_body(), ["body", "receiver"]),
            (route_body("57900"), ["body", "receiver", "gln"]),
            (route_body(sor_id="abc"), ["body", "receiver", "sor_id"]),
            (route_body("5790000121786", atachments=[]), ["body", "atachments"]),
            (
                route_body("5790000121786", attachments=[{"mime_type": "x/y", "size": -1}]),
                ["body", "attachments", 0, "size"],
            ),
            (route_body("5790000121786", message_id="x" * 201), ["body", "message_id"]),
        ],
        ids=[
            "no-receiver",
            "empty-receiver",
            "short-gln",
            "letters-in-sor-id",
            "misspelt-field",
            "negative-size",
            "long-message-id",
        ],
    )
    def test_an_invalid_body_is_a_422_problem_that_points_at_the_field(
        self,
        client: TestClient,
        router_token: dict[str, str],
        body: dict[str, object],
        loc: list[object],
    ) -> None:
        problem = assert_problem(
            client.post("/v1/route", json=body, headers=router_token), 422, "validation"
        )
        assert loc in [error["loc"] for error in problem["errors"]]

    def test_a_body_that_is_not_json_is_a_422_problem(
        self, client: TestClient, router_token: dict[str, str]
    ) -> None:
        response = client.post(
            "/v1/route",
            content=b"{not json",
            headers={**router_token, "Content-Type": "application/json"},
        )
        assert_problem(response, 422, "validation")

    def test_without_a_snapshot_the_answer_is_a_503_problem(self, empty_app: App) -> None:
        token = create_token(api_uow(empty_app), ["route:read"]).token
        with make_client(empty_app) as client:
            response = client.post(
                "/v1/route", json=route_body("5790000121786"), headers=bearer(token)
            )
        assert_problem(response, 503, "no-snapshot")


class TestRouteBundle:
    @pytest.mark.parametrize(
        ("encode", "content_type"),
        [
            (bundle_xml, "application/fhir+xml"),
            (bundle_json, "application/fhir+json; fhirVersion=4.0"),
        ],
        ids=["xml", "json"],
    )
    def test_a_bundle_gets_the_same_decision_as_its_facts_would(
        self,
        client: TestClient,
        router_token: dict[str, str],
        manifest: Manifest,
        encode: Callable[..., bytes],
        content_type: str,
    ) -> None:
        xmo = _reference(manifest, "XMO")
        response = client.post(
            "/v1/route/bundle",
            content=encode(xmo),
            headers={**router_token, "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["decision"] == "deliver" and data["message_type"] == "XDIS91"
        assert data["address"]["gln"] == xmo
        assert data["message_id"] == "hdr-1"  # MessageHeader.id
        plain = client.post(
            "/v1/route", json=route_body(xmo, text_length=3), headers=router_token
        ).json()
        assert (plain["decision"], plain["message_type"], plain["conversion"]) == (
            data["decision"],
            data["message_type"],
            data["conversion"],
        )

    def test_the_sender_syntax_can_be_given_in_the_query(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        response = client.post(
            "/v1/route/bundle?sender_syntax=oioxml",
            content=bundle_json(_reference(manifest, "XMO")),
            headers={**router_token, "Content-Type": "application/fhir+json"},
        )
        data = response.json()
        assert data["decision"] == "deliver" and data["conversion"] == []

    def test_a_bundle_that_is_not_a_care_communication_is_a_422_problem(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        body = bundle_json(_reference(manifest, "XMO"), event="acknowledgement-message")
        problem = assert_problem(
            client.post(
                "/v1/route/bundle",
                content=body,
                headers={**router_token, "Content-Type": "application/fhir+json"},
            ),
            422,
            "invalid-bundle",
        )
        assert problem["bundle_problem"] == "wrong-event"

    def test_a_body_that_is_not_fhir_at_all_is_a_400_problem(
        self, client: TestClient, router_token: dict[str, str]
    ) -> None:
        problem = assert_problem(
            client.post(
                "/v1/route/bundle",
                content=b'<Bundle xmlns="http://hl7.org/fhir"><type value=',
                headers={**router_token, "Content-Type": "application/fhir+xml"},
            ),
            400,
            "invalid-bundle",
        )
        assert problem["bundle_problem"]

    def test_another_content_type_is_a_415_problem(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        response = client.post(
            "/v1/route/bundle",
            content=bundle_json(_reference(manifest, "XMO")),
            headers={**router_token, "Content-Type": "text/plain"},
        )
        assert_problem(response, 415, "unsupported-media-type")

    def test_a_body_over_the_configured_limit_is_a_413_problem(
        self, synced_app: App, issue: Callable[..., str], manifest: Manifest
    ) -> None:
        body = bundle_json(_reference(manifest, "XMO"))
        with make_client(synced_app, max_bundle_bytes=len(body) - 1) as client:
            response = client.post(
                "/v1/route/bundle",
                content=body,
                headers={**bearer(issue("route:read")), "Content-Type": "application/fhir+json"},
            )
        assert_problem(response, 413, "too-large")
