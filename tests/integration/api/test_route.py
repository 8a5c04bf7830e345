"""POST /v1/route, POST /v1/route/message and its older name POST /v1/route/bundle as a
conversion gateway calls them.

The messages sent whole are the real ones of the shared reference folder
(``shared/reference/messages``), read where they lie. Their receivers are real units that the
sandbox does not hold, so a test readdresses a message to a sandbox receiver: every occurrence of
the receiver's GLN and SOR-ID, and nothing else, is replaced (:func:`readdressed`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.domain.routing import WarningCode
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.tokens import create_token
from tests.support.api import (
    api_uow,
    assert_problem,
    bearer,
    bundle_json,
    bundle_xml,
    make_client,
    route_body,
)
from tests.support.app import carrier
from tests.support.real_messages import readdressed

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
    "message",
}
WARNING_CODES = {code.value for code in WarningCode}


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
            {
                "index": 1,
                "title": None,
                "mime_type": "application/pdf",
                "declared_type": "application/pdf",
                "sniffed_type": None,
                "size": 20_000,
                "content": "data",
                "carried_as": "XBIN01",
            }
        ]
        assert data["message"] is None  # nothing was read: the question came as facts
        assert data["address"]["gln"] == xmo
        assert data["snapshot"]["id"] == 2 and data["snapshot"]["age_seconds"] >= 0
        assert data["message_id"] == "m-1"
        assert "receiver" in [t["rule"] for t in data["trace"]]
        assert data["trace"][-1] == {
            "rule": "decision",
            "outcome": "deliver",
            "detail": "XDIS91 (oioxml)",
        }

    def test_warnings_come_as_a_stable_code_and_a_sentence_and_attachments_with_their_facts(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        xmo = _reference(manifest, "XMO")
        body = route_body(
            xmo,
            text_length=40_000,
            category="xyz",
            category_coded=False,
            attachments=[
                {"mime_type": "application/pdf", "size": 20_000, "title": "Epikrise"},
                {"mime_type": "", "size": 0, "title": "Billede", "content": "link"},
            ],
        )
        data = client.post("/v1/route", json=body, headers=router_token).json()
        # Conversion to XDIS91 refuses a link-only attachment by default, and names it.
        assert data["decision"] == "reject"
        assert data["reason"] == "ATTACHMENT_LINK_NOT_CONVERTIBLE"
        assert "Billede" in json.dumps(data["trace"])
        del body["attachments"][1]
        data = client.post("/v1/route", json=body, headers=router_token).json()
        assert data["decision"] == "deliver" and data["message_type"] == "XDIS91"
        for warning in data["warnings"]:
            assert set(warning) == {"code", "message"}
            assert warning["code"] in WARNING_CODES and warning["message"]
        codes = [w["code"] for w in data["warnings"]]
        assert {"TEXT_OVER_LEGACY_LIMIT", "CATEGORY_MISSING"} <= set(codes)
        assert data["attachments"][0]["title"] == "Epikrise"
        assert data["attachments"][0]["carried_as"] == "XBIN01"

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


class TestRouteMessage:
    """A message as held, of any syntax: the route reads it and decides for its receiver."""

    @pytest.mark.parametrize(
        ("name", "content_type", "receiver", "read", "delivered"),
        [
            # (file, Content-Type, sandbox receiver, what is read, (type delivered, conversion))
            (
                "xdis91-ec-physio-2014.xml",
                "application/xml",
                "XMO",
                ("oioxml", "XDIS91", "correspondence"),
                ("XDIS91", []),
            ),
            (
                "xctl03-ec-receipt.xml",
                "text/xml; charset=windows-1252",
                "XMO",
                ("oioxml", "XCTL03", "acknowledgement"),
                ("XCTL03", []),
            ),
            (
                "edi-DIS91-1998.edi",
                "Application/EDIFACT",
                "XMO",
                ("edifact", "DIS91", "correspondence"),
                ("DIS91", []),
            ),
            (
                "edi-CTL03.edi",
                "application/x-edifact",
                "XMO",
                ("edifact", "CTL03", "acknowledgement"),
                ("CTL03", []),
            ),
            (
                "ack-AA-3.3.1.1.xml",
                "application/fhir+xml",
                "XMO",
                ("fhir", "FCTL", "acknowledgement"),
                ("XCTL03", ["fhir->oioxml"]),
            ),
            (
                "hn-SLHJ_H-discharge.json",
                "application/fhir+json",
                "Aalborg",
                ("fhir", "FDIS20", "hospital-notification"),
                ("FDIS20", []),
            ),
        ],
        ids=[
            "oioxml-xdis91",
            "oioxml-xctl03",
            "edifact-dis91",
            "edifact-ctl03",
            "fhir-ack",
            "fhir-hn",
        ],
    )
    def test_a_real_message_of_any_syntax_is_read_and_routed_to_its_receiver(
        self,
        client: TestClient,
        router_token: dict[str, str],
        synced_app: App,
        manifest: Manifest,
        name: str,
        content_type: str,
        receiver: str,
        read: tuple[str, str, str],
        delivered: tuple[str, list[str]],
    ) -> None:
        gln = _reference(manifest, receiver)
        body = readdressed(name, gln, carrier(synced_app, gln))
        response = client.post(
            "/v1/route/message",
            content=body,
            headers={**router_token, "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
        data = response.json()
        assert set(data) == DECISION_FIELDS
        assert data["message"] == dict(
            zip(("syntax", "message_type", "business_message"), read, strict=True)
        )
        assert data["decision"] == "deliver", data["trace"]
        assert (data["message_type"], [c["step"] for c in data["conversion"]]) == delivered
        assert data["address"]["gln"] == gln
        assert data["message_id"]

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
            "/v1/route/message",
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

    def test_a_real_attachment_declared_png_over_jpeg_bytes_travels_as_jpeg_with_a_warning(
        self,
        client: TestClient,
        router_token: dict[str, str],
        synced_app: App,
        manifest: Manifest,
    ) -> None:
        xmo = _reference(manifest, "XMO")
        body = readdressed("cc5-S-B-png.xml", xmo, carrier(synced_app, xmo))
        data = client.post(
            "/v1/route/message",
            content=body,
            headers={**router_token, "Content-Type": "application/fhir+xml"},
        ).json()
        assert data["message"]["message_type"] == "FDIS91"
        assert data["decision"] == "deliver" and data["message_type"] == "XDIS91"
        assert [w["code"] for w in data["warnings"]] == ["ATTACHMENT_TYPE_MISMATCH"]
        assert data["attachments"] == [
            {
                "index": 1,
                "title": "madpyramiden",
                "mime_type": "image/jpeg",
                "declared_type": "image/png",
                "sniffed_type": "image/jpeg",
                "size": 10_334,
                "content": "data",
                "carried_as": "XBIN01",
            }
        ]

    def test_the_bundle_route_is_the_same_route_under_its_older_name(
        self,
        client: TestClient,
        router_token: dict[str, str],
        synced_app: App,
        manifest: Manifest,
    ) -> None:
        xmo = _reference(manifest, "XMO")
        answers = []
        for path in ("/v1/route/message", "/v1/route/bundle"):
            for name in ("xdis91-ec-physio-2014.xml", "ack-AE-3.4.4.json"):
                response = client.post(
                    path,
                    content=readdressed(name, xmo, carrier(synced_app, xmo)),
                    headers=router_token,
                )
                assert response.status_code == 200, response.text
                data = response.json()
                answers.append({k: v for k, v in data.items() if k not in ("snapshot", "trace")})
        assert answers[:2] == answers[2:]
        assert [a["message"]["message_type"] for a in answers[:2]] == ["XDIS91", "FCTL"]

    def test_the_sender_syntax_overrides_a_fhir_messages_own_but_not_a_legacy_ones(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest
    ) -> None:
        xmo = _reference(manifest, "XMO")
        data = client.post(
            "/v1/route/bundle?sender_syntax=oioxml",
            content=bundle_json(xmo),
            headers={**router_token, "Content-Type": "application/fhir+json"},
        ).json()
        assert data["decision"] == "deliver" and data["conversion"] == []
        assert data["message"]["syntax"] == "fhir"  # what was read, whatever it is routed as
        problem = assert_problem(
            client.post(
                "/v1/route/message?sender_syntax=fhir",
                content=readdressed("xdis91-ec-physio-2014.xml", xmo),
                headers={**router_token, "Content-Type": "application/xml"},
            ),
            422,
            "routing-input",
        )
        assert "XDIS91 (oioxml)" in problem["detail"]

    @pytest.mark.parametrize("path", ["/v1/route/message", "/v1/route/bundle"])
    def test_what_cannot_be_read_is_400_what_cannot_be_routed_422_another_media_type_415(
        self, client: TestClient, router_token: dict[str, str], manifest: Manifest, path: str
    ) -> None:
        def post(content: bytes, content_type: str) -> Any:
            return client.post(
                path, content=content, headers={**router_token, "Content-Type": content_type}
            )

        problem = assert_problem(
            post(b'<Bundle xmlns="http://hl7.org/fhir"><type value=', "application/fhir+xml"),
            400,
            "invalid-bundle",
        )
        assert problem["bundle_problem"]
        problem = assert_problem(
            post(json.dumps({"resourceType": "Patient"}).encode(), "application/fhir+json"),
            422,
            "invalid-bundle",
        )
        assert problem["bundle_problem"] == "not-a-bundle"
        assert_problem(
            post(bundle_json(_reference(manifest, "XMO")), "application/pdf"),
            415,
            "unsupported-media-type",
        )

    @pytest.mark.parametrize("path", ["/v1/route/message", "/v1/route/bundle"])
    def test_a_body_over_the_bundle_limit_is_a_413_problem(
        self, synced_app: App, issue: Callable[..., str], manifest: Manifest, path: str
    ) -> None:
        body = readdressed("edi-CTL03.edi", _reference(manifest, "XMO"))
        with make_client(synced_app, max_body_bytes=10, max_bundle_bytes=len(body) - 1) as client:
            headers = {**bearer(issue("route:read")), "Content-Type": "application/edifact"}
            response = client.post(path, content=body, headers=headers)
            assert_problem(response, 413, "too-large")
        with make_client(synced_app, max_body_bytes=10, max_bundle_bytes=len(body)) as client:
            assert client.post(path, content=body, headers=headers).status_code == 200
