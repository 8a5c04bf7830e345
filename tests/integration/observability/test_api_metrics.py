"""GET /metrics on the HTTP API, and the routing decisions it counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App
from soredi_sync.observability.metrics import Metrics
from soredi_sync.sandbox.generate import Manifest
from tests.support.api import QUIET_LOG, bearer, bundle_json, route_body
from tests.support.observability import scrape, value

DECISIONS = "soredi_route_decisions_total"


@pytest.fixture
def client(synced_app: App, metrics: Metrics) -> Iterator[TestClient]:
    with TestClient(create_app(synced_app, ApiSettings(), QUIET_LOG, metrics)) as test_client:
        yield test_client


def _reference(manifest: Manifest, label: str) -> str:
    return next(g for g, info in manifest.reference_glns.items() if label in info["label"])


class TestMetricsEndpoint:
    def test_answers_in_the_prometheus_text_format_without_a_token(
        self, client: TestClient
    ) -> None:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "soredi_leader" in response.text

    def test_is_not_part_of_the_published_api(self, client: TestClient) -> None:
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]

    def test_shows_the_age_of_the_data_the_api_answers_on(self, client: TestClient) -> None:
        age = value(client.get("/metrics").text, "soredi_snapshot_age_seconds")
        assert age is not None and 0 <= age < 3600

    def test_has_no_data_age_before_the_first_snapshot(
        self,
        empty_app: App,
        metrics: Metrics,
    ) -> None:
        with TestClient(create_app(empty_app, ApiSettings(), QUIET_LOG, metrics)) as client:
            text = client.get("/metrics").text
        assert value(text, "soredi_snapshot_age_seconds") is None


class TestDecisionsCounted:
    def test_a_decision_through_post_route_is_counted_with_its_outcome_and_time(
        self,
        client: TestClient,
        metrics: Metrics,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        headers = bearer(issue("route:read"))
        xmo = _reference(manifest, "XMO")
        response = client.post("/v1/route", json=route_body(xmo), headers=headers)
        assert response.status_code == 200, response.text
        outcome = "convert" if response.json()["conversion"] else "deliver"

        text = client.get("/metrics").text
        assert value(text, DECISIONS, decision=outcome, reason="none") == 1
        assert value(text, "soredi_route_decision_seconds_count") == 1
        assert value(text, "soredi_http_request_seconds_count", route="/v1/route") == 1

    def test_a_rejection_is_counted_under_its_reason_code(
        self,
        client: TestClient,
        issue: Callable[..., str],
    ) -> None:
        headers = bearer(issue("route:read"))
        response = client.post("/v1/route", json=route_body("5790000000005"), headers=headers)
        assert response.status_code == 200, response.text
        reason = response.json()["reason"]
        assert response.json()["decision"] == "reject" and reason

        assert value(client.get("/metrics").text, DECISIONS, decision="reject", reason=reason) == 1

    def test_a_bundle_decision_is_counted_on_its_own_route(
        self,
        client: TestClient,
        metrics: Metrics,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        xmo = _reference(manifest, "XMO")
        response = client.post(
            "/v1/route/bundle",
            content=bundle_json(xmo),
            headers={**bearer(issue("route:read")), "Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 200, response.text
        text = scrape(metrics)
        assert value(text, "soredi_route_decision_seconds_count") == 1
        assert value(text, "soredi_http_request_seconds_count", route="/v1/route/bundle") == 1

    def test_a_refused_caller_makes_no_decision(
        self, client: TestClient, manifest: Manifest
    ) -> None:
        xmo = _reference(manifest, "XMO")
        response = client.post("/v1/route", json=route_body(xmo), headers=bearer("sst_nonsense1"))
        assert response.status_code == 401
        assert value(client.get("/metrics").text, "soredi_route_decision_seconds_count") == 0
