"""POST /v1/route/batch: a gateway routes its queue in one call, one answer per question in the
same order, each the answer POST /v1/route gives for that question alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api.routers.routing_schemas import MAX_BATCH
from soredi_sync.bootstrap import App
from soredi_sync.services.decision_log import decisions_since
from tests.support.api import (
    api_uow,
    assert_problem,
    bearer,
    make_client,
    route_body,
    watch_quick_path,
)

Headers = dict[str, str]


@pytest.fixture
def token(issue: Callable[..., str]) -> Headers:
    return bearer(issue("route:read", name="queue-gateway"))


def _questions(synced_app: App) -> list[dict[str, Any]]:
    """Every GLN of the sandbox in each sender syntax, a receiver by SOR-ID, an unknown GLN,
    message ids and attachments."""
    registry = synced_app.routing().resolver().index.registry
    questions: list[dict[str, Any]] = []
    for number, gln in enumerate(sorted(registry.glns)):
        for syntax in ("fhir", "oioxml", "edifact"):
            questions.append(
                route_body(
                    gln,
                    sender_syntax=syntax,
                    message_id=f"q-{number}-{syntax}",
                    attachments=[{"mime_type": "application/pdf", "size": 1000 * number}],
                )
            )
    questions.append(route_body(sor_id=sorted(registry.units)[0]))
    questions.append(route_body("5790000000000"))
    return questions


def _without_age(answer: dict[str, Any]) -> dict[str, Any]:
    """A decision without the snapshot's age (which is measured to each call's own now)."""
    return {**answer, "snapshot": {**answer["snapshot"], "age_seconds": None}}


def test_each_answer_is_the_single_routes_answer_in_the_order_asked(
    client: TestClient, synced_app: App, token: Headers
) -> None:
    questions = _questions(synced_app)
    response = client.post("/v1/route/batch", json={"requests": questions}, headers=token)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(questions)))
    assert {r["status"] for r in results} == {200}
    assert {r["decision"]["decision"] for r in results} == {"deliver", "reject"}
    snapshots = {r["decision"]["snapshot"]["id"] for r in results}
    assert len(snapshots) == 1
    for question, result in zip(questions, results, strict=True):
        alone = client.post("/v1/route", json=question, headers=token)
        assert alone.status_code == 200
        assert result["problem"] is None
        assert _without_age(result["decision"]) == _without_age(alone.json())


def test_a_question_that_cannot_be_decided_is_its_own_problem_and_the_others_are_decided(
    client: TestClient, synced_app: App, token: Headers
) -> None:
    good = route_body(sorted(synced_app.routing().resolver().index.registry.glns)[0])
    unknown = {**good, "business_message": "telegram"}
    response = client.post(
        "/v1/route/batch", json={"requests": [good, unknown, good]}, headers=token
    )
    assert response.status_code == 200, response.text
    first, bad, last = response.json()["results"]
    assert (first["status"], last["status"]) == (200, 200)
    assert bad["status"] == 422 and bad["decision"] is None
    single = client.post("/v1/route", json=unknown, headers=token)
    expected = assert_problem(single, 422, "routing-input")
    assert bad["problem"] == {**expected, "instance": "/v1/route/batch"}


def test_an_owner_restricted_token_gets_a_403_item_for_a_receiver_outside_its_owners(
    client: TestClient, issue: Callable[..., str], world: Any
) -> None:
    restricted = bearer(issue("route:read", owners=(world.owner_in,)))
    body = {"requests": [route_body(world.gln_in), route_body(world.gln_out)]}
    inside, outside = client.post("/v1/route/batch", json=body, headers=restricted).json()[
        "results"
    ]
    assert inside["status"] == 200 and inside["decision"]["address"]["gln"] == world.gln_in
    assert outside["status"] == 403 and outside["decision"] is None
    assert outside["problem"]["type"] == "urn:soredi-sync:problem:forbidden"


def test_every_decision_goes_to_the_decision_log(
    client: TestClient, synced_app: App, token: Headers
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    questions = _questions(synced_app)[:25]
    client.post("/v1/route/batch", json={"requests": questions}, headers=token)
    client.app.state.decision_log.flush()  # type: ignore[attr-defined]
    logged = decisions_since(api_uow(synced_app), started)
    assert [e.message_id for e in logged] == [q.get("message_id") for q in questions]
    assert {e.caller for e in logged} == {"queue-gateway"}


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_an_empty_or_too_long_batch_is_422(
    client: TestClient, synced_app: App, token: Headers, count: int
) -> None:
    gln = sorted(synced_app.routing().resolver().index.registry.glns)[0]
    body = {"requests": [route_body(gln)] * count}
    problem = assert_problem(client.post("/v1/route/batch", json=body, headers=token), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "requests"]


def test_a_full_batch_fits_the_body_limit_and_is_answered(
    client: TestClient, synced_app: App, token: Headers
) -> None:
    gln = sorted(synced_app.routing().resolver().index.registry.glns)[0]
    body = {"requests": [route_body(gln, topic="x" * 2000)] * MAX_BATCH}  # ~2.2 MB
    response = client.post("/v1/route/batch", json=body, headers=token)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == MAX_BATCH


def test_one_invalid_question_makes_the_whole_batch_422_naming_it(
    client: TestClient, synced_app: App, token: Headers
) -> None:
    gln = sorted(synced_app.routing().resolver().index.registry.glns)[0]
    body = {"requests": [route_body(gln), {**route_body(gln), "colour": "blue"}]}
    problem = assert_problem(client.post("/v1/route/batch", json=body, headers=token), 422)
    assert problem["errors"][0]["loc"][:3] == ["body", "requests", 1]


def test_before_any_sync_the_batch_is_503(empty_app: App) -> None:
    from soredi_sync.services.tokens import create_token

    token = create_token(api_uow(empty_app), ("route:read",), (), "early").token
    with make_client(empty_app) as client:
        response = client.post(
            "/v1/route/batch",
            json={"requests": [route_body("5790000000000")]},
            headers=bearer(token),
        )
    assert_problem(response, 503, "no-snapshot")


def test_the_ordinary_batch_is_answered_at_once_and_an_invalid_one_by_fastapi(
    client: TestClient, synced_app: App, token: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = watch_quick_path(monkeypatch, "_batch_at_once")
    gln = sorted(synced_app.routing().resolver().index.registry.glns)[0]
    ordinary = client.post("/v1/route/batch", json={"requests": [route_body(gln)]}, headers=token)
    invalid = client.post("/v1/route/batch", json={"requests": []}, headers=token)
    assert (ordinary.status_code, invalid.status_code) == (200, 422)
    assert seen == [True, False]
