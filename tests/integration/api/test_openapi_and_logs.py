"""The published OpenAPI document, the server wiring, and logs that never carry a token."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api.server import RedactTokens, log_config
from soredi_sync.bootstrap import App
from soredi_sync.sandbox.generate import Manifest
from tests.support.api import PROBLEM, bearer, bundle_json, route_body
from tests.support.cli_runner import Cli

ENDPOINTS = {
    ("post", "/v1/route"),
    ("post", "/v1/route/batch"),
    ("post", "/v1/route/bundle"),
    ("post", "/v1/route/message"),
    ("get", "/v1/units/{sor_id}"),
    ("get", "/v1/glns/{gln}"),
    ("get", "/v1/changes"),
    ("get", "/v1/snapshots/current"),
    ("get", "/v1/audit"),
    ("get", "/v1/adoption"),
    ("get", "/v1/cutover"),
    ("post", "/v1/plans"),
    ("get", "/v1/plans/{plan_id}"),
    ("post", "/v1/plans/{plan_id}/verify"),
    ("post", "/v1/plans/{plan_id}/submit"),
    ("get", "/v1/plans/{plan_id}/worklist"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{webhook_id}"),
    ("delete", "/v1/webhooks/{webhook_id}"),
    ("get", "/v1/webhooks/{webhook_id}/deliveries"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/fhir/metadata"),
    ("get", "/fhir/_history"),
    ("get", "/fhir/Organization"),
    ("post", "/fhir/Organization/_search"),
    ("get", "/fhir/Organization/_history"),
    ("get", "/fhir/Organization/{resource_id}/_history"),
    ("get", "/fhir/Organization/{resource_id}/_history/{version_id}"),
    ("get", "/fhir/Organization/{resource_id}"),
    ("get", "/fhir/Endpoint"),
    ("post", "/fhir/Endpoint/_search"),
    ("get", "/fhir/Endpoint/_history"),
    ("get", "/fhir/Endpoint/{resource_id}/_history"),
    ("get", "/fhir/Endpoint/{resource_id}/_history/{version_id}"),
    ("get", "/fhir/Endpoint/{resource_id}"),
}
FHIR = "application/fhir+json"  # under /fhir errors are OperationOutcomes


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


class TestOpenApi:
    def test_it_lists_every_endpoint(self, openapi: dict[str, Any]) -> None:
        published = {(method, path) for path, item in openapi["paths"].items() for method in item}
        assert published == ENDPOINTS

    def test_v1_endpoints_declare_the_bearer_scheme_and_problem_errors(
        self, openapi: dict[str, Any]
    ) -> None:
        schemes = openapi["components"]["securitySchemes"]
        assert [s["scheme"] for s in schemes.values()] == ["bearer"]
        for path, item in openapi["paths"].items():
            for operation in item.values():
                errors = {c: r for c, r in operation["responses"].items() if c[0] in "45"}
                media_type = FHIR if path.startswith("/fhir/") else PROBLEM
                assert all(media_type in r["content"] for r in errors.values()), path
                if path.startswith("/v1/"):
                    assert operation["security"], path
                    assert {"401", "403"} <= set(errors), path

    def test_the_route_operations_describe_their_bodies_and_answer(
        self, openapi: dict[str, Any]
    ) -> None:
        route = openapi["paths"]["/v1/route"]["post"]
        body_ref = route["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body_ref.endswith("/RouteIn")
        answer = route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert answer.endswith("/RouteOut")
        schema = openapi["components"]["schemas"]["RouteOut"]
        assert {"decision", "address", "snapshot", "trace", "conversion"} <= set(
            schema["properties"]
        )
        for path in ("/v1/route/message", "/v1/route/bundle"):
            body = openapi["paths"][path]["post"]["requestBody"]
            # Typed for generators: FHIR JSON, and any message as bytes; the other labels
            # the server takes are named in the description.
            assert set(body["content"]) == {"application/fhir+json", "application/octet-stream"}
            assert "application/fhir+xml" in body["description"]
            assert "application/edifact" in body["description"]


class TestLogs:
    def test_no_log_record_carries_the_token(
        self,
        client: TestClient,
        issue: Callable[..., str],
        manifest: Manifest,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        xmo = next(g for g, i in manifest.reference_glns.items() if "XMO" in i["label"])
        with caplog.at_level(logging.DEBUG):
            token = issue("route:read", "registry:read")
            revoked = issue("route:read", revoked=True)
            headers = bearer(token)
            client.post("/v1/route", json=route_body(xmo), headers=headers)
            client.post(
                "/v1/route/bundle",
                content=bundle_json(xmo),
                headers={**headers, "Content-Type": "application/fhir+json"},
            )
            client.get("/v1/changes", headers=headers)
            client.get(f"/v1/glns/{xmo}", headers=headers)
            client.post("/v1/route", json=route_body(xmo), headers=bearer(revoked))
            client.get("/v1/units/1", headers=headers)
            client.app.state.decision_log.flush()  # type: ignore[attr-defined]
            client.app.state.verifier.flush_usage()  # type: ignore[attr-defined]
        assert caplog.records, "the test should see some logging"
        for secret in (token, revoked, token[4:20]):
            assert secret not in caplog.text

    def test_the_server_log_filter_redacts_anything_shaped_like_a_token(self) -> None:
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, "GET %s", ("/x?t=sst_abcdefghijkl",), None
        )
        assert RedactTokens().filter(record)
        assert record.getMessage() == "GET /x?t=sst_***"

    def test_every_uvicorn_handler_has_the_redacting_filter(self) -> None:
        config = log_config()
        assert all("redact_tokens" in h["filters"] for h in config["handlers"].values())
        module, _, name = config["filters"]["redact_tokens"]["()"].rpartition(".")
        assert getattr(importlib.import_module(module), name) is RedactTokens


class TestServeCommand:
    def test_serve_runs_one_uvicorn_worker_on_the_given_address(
        self,
        cli: Cli,
        synced_app: App,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        import uvicorn

        seen: dict[str, Any] = {}

        def fake_run(server: uvicorn.Server, *args: object, **kwargs: object) -> None:
            seen["config"] = server.config

        monkeypatch.setattr(uvicorn.Server, "run", fake_run)
        cli("serve", "--port", "8099", "--no-access-log")
        config = seen["config"]
        assert (config.host, config.port, config.workers) == ("127.0.0.1", 8099, 1)
        assert config.access_log is False
        assert "redact_tokens" in config.log_config["filters"]
