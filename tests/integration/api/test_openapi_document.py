"""The OpenAPI document as a gateway team uses it: committed in ``docs/openapi.json``, with
stable operation ids and tags, one ``Problem`` schema for every error answer, and a client that
``openapi-python-client`` generates from it without a warning and that works against a running
server.

When the first test fails, the API changed without its committed document: regenerate it with
``soredi-sync openapi > docs/openapi.json`` and review the diff.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api import create_app
from soredi_sync.api.openapi import COMMITTED_PATH, build_document, render
from soredi_sync.api.problems import PROBLEM_MEDIA_TYPE, Problem
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.observability.metrics import Metrics
from soredi_sync.sandbox.generate import Manifest
from tests.support.api import QUIET_LOG, World, bearer, bundle_json, route_body
from tests.support.app import carrier, make_settings
from tests.support.cli_runner import Cli
from tests.support.live_server import uvicorn_in_thread
from tests.support.paths import REPO_ROOT
from tests.support.real_messages import readdressed

ROOT = REPO_ROOT
COMMITTED = ROOT / COMMITTED_PATH
PROBLEM_REF = "#/components/schemas/Problem"
REGENERATE = "regenerate it: soredi-sync openapi > docs/openapi.json"

# The operation ids are part of the API: generated clients name their functions after them
# (``route.sync``, ``get_gln.sync``), so a change here breaks every such client.
STABLE_OPERATION_IDS = {
    ("post", "/v1/route"): "route",
    ("post", "/v1/route/batch"): "routeBatch",
    ("post", "/v1/route/message"): "routeMessage",
    ("post", "/v1/route/bundle"): "routeBundle",
    ("get", "/v1/units/{sor_id}"): "getUnit",
    ("get", "/v1/glns/{gln}"): "getGln",
    ("get", "/v1/changes"): "listChanges",
    ("get", "/v1/snapshots/current"): "getCurrentSnapshot",
    ("get", "/v1/audit"): "getAudit",
    ("get", "/v1/adoption"): "getAdoption",
    ("get", "/v1/cutover"): "getCutover",
    ("post", "/v1/plans"): "createPlan",
    ("get", "/v1/plans/{plan_id}"): "getPlan",
    ("post", "/v1/plans/{plan_id}/verify"): "verifyPlan",
    ("post", "/v1/plans/{plan_id}/submit"): "submitPlan",
    ("get", "/v1/plans/{plan_id}/worklist"): "getPlanWorklist",
    ("post", "/v1/webhooks"): "createWebhook",
    ("get", "/v1/webhooks"): "listWebhooks",
    ("get", "/v1/webhooks/{webhook_id}"): "getWebhook",
    ("delete", "/v1/webhooks/{webhook_id}"): "deleteWebhook",
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): "listWebhookDeliveries",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/fhir/metadata"): "getCapabilityStatement",
    ("get", "/fhir/_history"): "listHistory",
    ("get", "/fhir/Organization"): "searchOrganizations",
    ("post", "/fhir/Organization/_search"): "searchOrganizationsByPost",
    ("get", "/fhir/Organization/_history"): "listOrganizationHistory",
    ("get", "/fhir/Organization/{resource_id}/_history"): "listOrganizationVersionHistory",
    ("get", "/fhir/Organization/{resource_id}/_history/{version_id}"): "getOrganizationVersion",
    ("get", "/fhir/Organization/{resource_id}"): "getOrganization",
    ("get", "/fhir/Endpoint"): "searchEndpoints",
    ("post", "/fhir/Endpoint/_search"): "searchEndpointsByPost",
    ("get", "/fhir/Endpoint/_history"): "listEndpointHistory",
    ("get", "/fhir/Endpoint/{resource_id}/_history"): "listEndpointVersionHistory",
    ("get", "/fhir/Endpoint/{resource_id}/_history/{version_id}"): "getEndpointVersion",
    ("get", "/fhir/Endpoint/{resource_id}"): "getEndpoint",
}
VERBS = ("route", "get", "list", "create", "delete", "verify", "submit", "search")
TAGS = ["routing", "registry", "audit", "plans", "webhooks", "health", "fhir"]
# Under /fhir errors are FHIR OperationOutcomes (api/fhir_outcome.py), not problem documents.
FHIR_ERROR = {
    "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
}


def _served() -> dict[str, Any]:
    """``GET /openapi.json`` of an API whose engine is never connected."""
    with bootstrap(make_settings("sqlite://")) as app:
        api = create_app(app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
        response = TestClient(api).get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    return _served()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


# -- the committed document -----------------------------------------------------------------


class TestCommittedDocument:
    def test_the_served_document_is_the_committed_one(self, served: dict[str, Any]) -> None:
        committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
        assert served == committed, f"{COMMITTED_PATH} is not what the API serves; {REGENERATE}"

    def test_it_is_committed_pretty_with_sorted_keys_and_a_trailing_newline(
        self, served: dict[str, Any]
    ) -> None:
        text = COMMITTED.read_text(encoding="utf-8")
        assert text == render(served), (
            f"{COMMITTED_PATH} is not in its committed form; {REGENERATE}"
        )
        assert text.endswith("}\n") and text.startswith('{\n  "components": {')

    def test_the_openapi_command_prints_the_committed_document(self, cli: Cli) -> None:
        result = cli("openapi")
        assert result.output == COMMITTED.read_text(encoding="utf-8")

    def test_the_module_builds_what_the_api_serves(self, served: dict[str, Any]) -> None:
        assert build_document() == served


# -- names a generated client keeps -----------------------------------------------------------


class TestOperationNames:
    def test_every_operation_has_its_stable_operation_id(self, served: dict[str, Any]) -> None:
        published = {(m, p): op["operationId"] for m, p, op in _operations(served)}
        assert published == STABLE_OPERATION_IDS

    def test_operation_ids_are_unique_camel_case_verbs(self) -> None:
        ids = list(STABLE_OPERATION_IDS.values())
        assert len(set(ids)) == len(ids)
        for operation_id in ids:
            assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", operation_id), operation_id
            assert operation_id.startswith(VERBS), operation_id

    def test_every_operation_has_one_declared_tag_and_every_tag_is_used(
        self, served: dict[str, Any]
    ) -> None:
        assert [t["name"] for t in served["tags"]] == TAGS
        assert all(t["description"] for t in served["tags"])
        used = set()
        for method, path, operation in _operations(served):
            assert len(operation["tags"]) == 1 and operation["tags"][0] in TAGS, (method, path)
            used.add(operation["tags"][0])
        assert used == set(TAGS)


# -- one Problem schema -----------------------------------------------------------------------


class TestProblemSchema:
    def test_every_error_answer_refers_to_the_one_problem_component_or_under_fhir_to_an_outcome(
        self, served: dict[str, Any]
    ) -> None:
        errors = 0
        for method, path, operation in _operations(served):
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    errors += 1
                    expected = (
                        FHIR_ERROR
                        if path.startswith("/fhir/")
                        else {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
                    )
                    assert response["content"] == expected, (method, path, status)
        assert errors > 100

    def test_the_problem_component_has_the_rfc_members_and_the_extensions_sent(
        self, served: dict[str, Any]
    ) -> None:
        problem = served["components"]["schemas"]["Problem"]
        assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
        assert {"bundle_problem", "errors", "data_age_seconds"} <= set(problem["properties"])
        assert problem["additionalProperties"] is True
        issue = problem["properties"]["errors"]["items"]["$ref"]
        assert served["components"]["schemas"][issue.rsplit("/", 1)[1]]["required"] == [
            "loc",
            "msg",
            "type",
        ]

    def test_no_other_component_is_a_copy_of_the_problem(self, served: dict[str, Any]) -> None:
        copies = [
            name
            for name, schema in served["components"]["schemas"].items()
            if name != "Problem"
            and {"title", "status", "instance"} <= set(schema.get("properties", {}))
        ]
        assert copies == []

    def test_the_problems_the_api_sends_read_as_the_problem_schema(
        self, client: TestClient, issue: Callable[..., str], world: World
    ) -> None:
        token = bearer(issue("route:read", "registry:read"))
        answers = {
            "not-found": client.get("/v1/glns/5790000000005", headers=token),
            "unauthorized": client.get(f"/v1/glns/{world.gln_in}"),
            "validation": client.post("/v1/route", json={"receiver": {}}, headers=token),
            "invalid-bundle": client.post(
                "/v1/route/message",
                content=bundle_json(None),
                headers={**token, "Content-Type": "application/fhir+json"},
            ),
        }
        for kind, response in answers.items():
            assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE, kind
            problem = Problem.model_validate(response.json())
            assert problem.type == f"urn:soredi-sync:problem:{kind}"
            assert problem.model_extra == {}, kind  # every member sent is declared
        assert Problem.model_validate(answers["validation"].json()).errors
        assert Problem.model_validate(answers["invalid-bundle"].json()).bundle_problem


# -- a client generated by openapi-python-client ----------------------------------------------


def _generate_client(document: Path, into: Path) -> subprocess.CompletedProcess[str]:
    """``openapi-python-client generate`` as a gateway team runs it: defaults, no config file.
    Its post hooks format the code with ruff, which it installs beside itself."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(into),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ModuleType]]:
    """(the generator's output, the generated package), generated from the committed document."""
    into = tmp_path_factory.mktemp("generated") / "soredi-sync-client"
    result = _generate_client(COMMITTED, into)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    sys.path.insert(0, str(into))
    try:
        yield output, importlib.import_module("soredi_sync_client")
    finally:
        sys.path.remove(str(into))
        for name in [n for n in sys.modules if n.partition(".")[0] == "soredi_sync_client"]:
            del sys.modules[name]


@contextmanager
def live_server(app: App) -> Iterator[str]:
    """The API over ``app`` served by uvicorn in a thread on a free loopback port; its URL."""
    asgi = create_app(app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
    with uvicorn_in_thread(asgi) as (host, port):
        yield f"http://{host}:{port}"


@pytest.mark.slow  # the generator and its ruff hooks take a few seconds
class TestGeneratedClient:
    def test_openapi_python_client_generates_it_without_a_warning(
        self, generated: tuple[str, ModuleType]
    ) -> None:
        output, _package = generated
        assert "warning" not in output.lower(), output
        assert "error" not in output.lower(), output

    def test_the_generated_client_routes_reads_a_gln_and_parses_a_404_as_a_problem(
        self,
        generated: tuple[str, ModuleType],
        synced_app: App,
        issue: Callable[..., str],
        manifest: Manifest,
        world: World,
    ) -> None:
        from soredi_sync_client import AuthenticatedClient
        from soredi_sync_client.api.registry import get_gln
        from soredi_sync_client.api.routing import route, route_message
        from soredi_sync_client.models import GlnViewOut, Problem, RouteIn, RouteOut
        from soredi_sync_client.types import File

        xmo = next(g for g, i in manifest.reference_glns.items() if "XMO" in i["label"])
        edifact = readdressed("edi-DIS91-1998.edi", xmo, carrier(synced_app, xmo))
        token = issue("route:read", "registry:read")
        with live_server(synced_app) as url:
            with AuthenticatedClient(base_url=url, token=token, timeout=30) as api:
                decided = route.sync_detailed(client=api, body=RouteIn.from_dict(route_body(xmo)))
                held = route_message.sync_detailed(client=api, body=File(payload=edifact))
                found = get_gln.sync_detailed(world.gln_in, client=api)
                missing = get_gln.sync_detailed("5790000000005", client=api)

        assert decided.status_code == 200
        assert isinstance(decided.parsed, RouteOut)
        assert decided.parsed.decision == "deliver"
        assert decided.parsed.address.gln == xmo

        # An EDIFACT interchange, which no generated type describes, goes as bytes.
        assert held.status_code == 200, held.content
        assert isinstance(held.parsed, RouteOut)
        assert (held.parsed.message.syntax, held.parsed.message.message_type) == (
            "edifact",
            "DIS91",
        )

        assert found.status_code == 200
        assert isinstance(found.parsed, GlnViewOut)
        assert found.parsed.gln.gln == world.gln_in

        assert missing.status_code == 404
        assert isinstance(missing.parsed, Problem)
        assert missing.parsed.status == 404
        assert missing.parsed.type_ == "urn:soredi-sync:problem:not-found"
        assert missing.parsed.instance == "/v1/glns/5790000000005"
