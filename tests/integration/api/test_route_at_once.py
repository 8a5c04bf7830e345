"""POST /v1/route answers the ordinary request (a JSON body RouteIn takes, a bearer token with
route:read) without FastAPI's generic handling, and leaves every other request to FastAPI, whose
answers (401, 403, 422, ...) are therefore exactly what they were."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api.routers import routing
from soredi_sync.bootstrap import App
from tests.support.api import assert_problem, bearer, route_body, watch_quick_path


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each POST /v1/route: whether the quick path answered it."""
    return watch_quick_path(monkeypatch, "_route_at_once")


@pytest.fixture
def gln(synced_app: App) -> str:
    return sorted(synced_app.routing().resolver().index.registry.glns)[0]


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
def test_the_ordinary_request_is_answered_at_once_with_the_decision(
    client: TestClient,
    issue: Callable[..., str],
    answered: list[bool],
    gln: str,
    content_type: str,
) -> None:
    body = route_body(gln, message_id="m-1")
    headers = {**bearer(issue("route:read")), "Content-Type": content_type}
    response = client.post("/v1/route", content=routing.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    assert answered == [True]
    assert response.json()["address"]["gln"] == gln
    assert response.json()["message_id"] == "m-1"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["server-timing"].startswith("decide;dur=")


def test_the_quick_and_the_standard_answers_are_the_same(
    client: TestClient, issue: Callable[..., str], answered: list[bool], gln: str
) -> None:
    token = bearer(issue("route:read"))
    body = route_body(gln, attachments=[{"mime_type": "application/pdf", "size": 9}])
    quick = client.post("/v1/route", json=body, headers=token).json()
    # A content type FastAPI takes as JSON and the quick path leaves to it.
    standard = client.post(
        "/v1/route",
        content=routing.dumps(body),
        headers={**token, "Content-Type": "application/vnd.gateway+json"},
    ).json()
    assert answered == [True, False]
    for answer in (quick, standard):
        answer["snapshot"]["age_seconds"] = None
    assert quick == standard


@pytest.mark.parametrize(
    ("kind", "status", "problem", "reached"),
    [
        # A missing or unknown token is answered by api/limits.py before any route.
        ("no token", 401, "unauthorized", []),
        ("unknown token", 401, "unauthorized", []),
        ("wrong scope", 403, "forbidden", [False]),
        ("invalid body", 422, "validation", [False]),
        ("not json", 422, "validation", [False]),
    ],
)
def test_every_other_request_is_left_to_fastapi_and_answered_as_before(
    client: TestClient,
    issue: Callable[..., str],
    answered: list[bool],
    gln: str,
    kind: str,
    status: int,
    problem: str,
    reached: list[bool],
) -> None:
    headers = bearer(issue("route:read"))
    content = routing.dumps(route_body(gln))
    if kind == "no token":
        headers = {}
    elif kind == "unknown token":
        headers = bearer("sst_" + "x" * 40)
    elif kind == "wrong scope":
        headers = bearer(issue("registry:read"))
    elif kind == "invalid body":
        content = routing.dumps({**route_body(gln), "colour": "blue"})
    else:
        content = b"{not json"
    response = client.post(
        "/v1/route", content=content, headers={**headers, "Content-Type": "application/json"}
    )
    assert answered == reached
    assert_problem(response, status, problem)
