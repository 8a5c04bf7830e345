"""Schemathesis against the published OpenAPI document: every operation answers as published.

Each operation of ``/openapi.json`` is fuzzed in process (ASGI, no network) against the API over
a freshly synced tiny sandbox, on SQLite and on PostgreSQL (``database_url``): once with a bearer
token holding every scope and no owner restriction, once with no token at all, when every
``/v1`` operation must answer 401 (problem+json). The checks: no 5xx (``not_a_server_error``),
a documented status code, a documented content type and a body matching the declared schema
(problem documents included). Requests that change state (plans, webhooks, deletions) share
the test's database. SORUS is pointed at a closed loopback port, so ``submit`` with ``sorus``
is the documented 502.

Deterministic and fast: Hypothesis derandomized, no example database, ``MAX_EXAMPLES`` per
operation in the fuzzing phase (schemathesis' examples and coverage phases, the boundary and
malformed values the schema implies, run in full on top). About 30 s per database.

How it is wired, and why:

- The document is built at collection from the same ``create_app`` over an engine that never
  connects (no I/O), so ``@SCHEMA.parametrize()`` makes one test per operation and database;
  ``test_the_fuzzed_document_is_the_one_served`` checks each test app serves exactly it.
  ``schemathesis.pytest.from_fixture`` would load it from the test app itself, but it breaks
  on pytest 9.2 (it sets ``Function._nodeid``, which pytest no longer has).
- Each call goes to the test's own app (``call_and_validate(app=...)``). Schemathesis runs the
  app's lifespan (the decision-log flusher) and keeps it for the process; the fixture ends it
  (``shutdown_lifespans``) before the database is dropped.

Two defects the fuzzing found are fixed and pinned by exact examples below: integers beyond
int64 in ids and cursors (once a 500 from the database, now a 422), and a malformed body sent
without a token (once a 400/422, now the 401 it would have had with a valid body).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi

from soredi_sync.api import create_app
from soredi_sync.api.problems import PROBLEM_MEDIA_TYPE
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.config import RetrySettings
from soredi_sync.observability.metrics import Metrics
from soredi_sync.services.tokens import create_token
from tests.support.api import ALL_SCOPES, QUIET_LOG, api_uow, bearer
from tests.support.app import make_settings

# More for a deeper run: SOREDI_FUZZ_EXAMPLES=500 pytest tests/system/fuzz
MAX_EXAMPLES = int(os.environ.get("SOREDI_FUZZ_EXAMPLES", "25"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The app and its database are per test, shared by its examples on purpose.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Fixed defects, pinned below. Integers beyond 2**63 - 1 once reached the database
# (OverflowError on SQLite, DataError "bigint out of range" on PostgreSQL: a 500).
# operation -> the parameter.
INT64_OVERFLOW = {
    "GET /v1/changes": "cursor",
    "GET /v1/audit": "since",
    "GET /v1/plans/{plan_id}": "plan_id",
    "POST /v1/plans/{plan_id}/verify": "plan_id",
    "POST /v1/plans/{plan_id}/submit": "plan_id",
    "GET /v1/plans/{plan_id}/worklist": "plan_id",
    "GET /v1/webhooks/{webhook_id}": "webhook_id",
    "DELETE /v1/webhooks/{webhook_id}": "webhook_id",
    "GET /v1/webhooks/{webhook_id}/deliveries": "webhook_id",
}
# A malformed JSON body without a token once got 400/422 (FastAPI reads a declared body before
# it solves dependencies); it is now authorized first.
BODY_BEFORE_AUTH = {
    "POST /v1/route": "/v1/route",
    "POST /v1/plans": "/v1/plans",
    "POST /v1/plans/{plan_id}/submit": "/v1/plans/1/submit",
    "POST /v1/webhooks": "/v1/webhooks",
}


def _published_document() -> dict[str, Any]:
    """What ``GET /openapi.json`` serves; the engine is never connected."""
    with bootstrap(make_settings("sqlite://")) as app:
        api = create_app(app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
        return api.openapi()


DOCUMENT = _published_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fuzz_api(synced_app: App) -> Iterator[FastAPI]:
    soap = synced_app.settings.soap
    soap.sorus.address = f"http://127.0.0.1:{_closed_loopback_port()}/sorus"
    soap.retry = RetrySettings(attempts=1, initial_wait=0, max_wait=0)
    yield create_app(synced_app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
    asgi.shutdown_lifespans()


@pytest.fixture
def token(synced_app: App) -> str:
    """Every scope, no owner restriction."""
    return create_token(api_uow(synced_app), ALL_SCOPES, (), "fuzz").token


def test_the_fuzzed_document_is_the_one_served(fuzz_api: FastAPI) -> None:
    response = TestClient(fuzz_api).get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT


# -- with a token holding every scope ---------------------------------------------------------


def _with_token(case: schemathesis.Case, api: FastAPI, token: str) -> None:
    case.call_and_validate(app=api, headers=bearer(token), checks=CHECKS)


@SCHEMA.parametrize()
@FUZZ
def test_every_operation_answers_as_published(
    case: schemathesis.Case, fuzz_api: FastAPI, token: str
) -> None:
    _with_token(case, fuzz_api, token)


# -- with no token ----------------------------------------------------------------------------


def _without_token(case: schemathesis.Case, api: FastAPI) -> None:
    # Schemathesis fills the bearer scheme with an empty "Bearer "; send no header at all.
    for name in [n for n in case.headers or {} if n.lower() == "authorization"]:
        del case.headers[name]
    response = case.call_and_validate(app=api, checks=CHECKS)
    # The coverage phase also tries methods the path does not have: 405, not ours to judge.
    if case.path.startswith("/v1/") and case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, case.as_curl_command()
        assert response.headers["content-type"] == [PROBLEM_MEDIA_TYPE]


@SCHEMA.parametrize()
@FUZZ
def test_without_a_token_every_v1_operation_is_401(
    case: schemathesis.Case, fuzz_api: FastAPI
) -> None:
    _without_token(case, fuzz_api)


# -- the fixed defects, pinned ----------------------------------------------------------------

BEYOND_INT64 = str(2**63)
OVERFLOW_EXAMPLES = {
    "GET /v1/changes": ("GET", f"/v1/changes?cursor={BEYOND_INT64}", None),
    "GET /v1/audit": ("GET", f"/v1/audit?since={BEYOND_INT64}", None),
    "GET /v1/plans/{plan_id}": ("GET", f"/v1/plans/{BEYOND_INT64}", None),
    "POST /v1/plans/{plan_id}/verify": ("POST", f"/v1/plans/{BEYOND_INT64}/verify", None),
    "POST /v1/plans/{plan_id}/submit": (
        "POST",
        f"/v1/plans/{BEYOND_INT64}/submit",
        {"channel": "worklist"},
    ),
    "GET /v1/plans/{plan_id}/worklist": ("GET", f"/v1/plans/{BEYOND_INT64}/worklist", None),
    "GET /v1/webhooks/{webhook_id}": ("GET", f"/v1/webhooks/{BEYOND_INT64}", None),
    "DELETE /v1/webhooks/{webhook_id}": ("DELETE", f"/v1/webhooks/{BEYOND_INT64}", None),
    "GET /v1/webhooks/{webhook_id}/deliveries": (
        "GET",
        f"/v1/webhooks/{BEYOND_INT64}/deliveries",
        None,
    ),
}


def _documented_statuses(label: str) -> set[int]:
    method, path = label.split(" ", 1)
    return {int(code) for code in DOCUMENT["paths"][path][method.lower()]["responses"]}


@pytest.fixture
def plain_client(synced_app: App) -> TestClient:
    """The API with server errors answered (500) rather than raised."""
    api = create_app(synced_app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
    return TestClient(api, raise_server_exceptions=False)


def test_the_pinned_examples_cover_the_known_defects() -> None:
    assert OVERFLOW_EXAMPLES.keys() == INT64_OVERFLOW.keys()


@pytest.mark.parametrize("label", list(OVERFLOW_EXAMPLES))
def test_an_integer_beyond_int64_is_refused_not_a_500(
    plain_client: TestClient, token: str, label: str
) -> None:
    method, url, body = OVERFLOW_EXAMPLES[label]
    response = plain_client.request(method, url, json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    assert response.status_code in _documented_statuses(label)


@pytest.mark.parametrize("body", [b"{", b"\xff"], ids=["broken-json", "undecodable"])
@pytest.mark.parametrize("label", list(BODY_BEFORE_AUTH))
def test_without_a_token_a_malformed_body_is_401(
    plain_client: TestClient, label: str, body: bytes
) -> None:
    response = plain_client.post(
        BODY_BEFORE_AUTH[label], content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("label", list(BODY_BEFORE_AUTH))
def test_with_a_token_lacking_the_scope_a_malformed_body_is_403(
    plain_client: TestClient, synced_app: App, label: str
) -> None:
    from soredi_sync.services.tokens import Scope

    narrow = create_token(api_uow(synced_app), (Scope.AUDIT_READ,), (), "narrow").token
    response = plain_client.post(
        BODY_BEFORE_AUTH[label],
        content=b"{",
        headers={"Content-Type": "application/json", **bearer(narrow)},
    )
    assert response.status_code == 403, response.text


@pytest.mark.parametrize("label", list(BODY_BEFORE_AUTH))
def test_with_the_right_token_a_malformed_body_is_still_a_validation_error(
    plain_client: TestClient, token: str, label: str
) -> None:
    response = plain_client.post(
        BODY_BEFORE_AUTH[label],
        content=b"{",
        headers={"Content-Type": "application/json", **bearer(token)},
    )
    assert response.status_code == 422, response.text
