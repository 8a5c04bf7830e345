"""Calling the HTTP API in tests: a TestClient over an App, bearer headers, request bodies,
and the check that an answer is an RFC 9457 problem.

The fixtures built on these (``client``, ``issue``, ``world``) live in ``tests/fixtures/api.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings, DecisionLogSettings
from soredi_sync.bootstrap import App
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.tokens import Scope
from tests.support.fhir import care_communication, json_to_xml, organization

PROBLEM = "application/problem+json"
ALL_SCOPES = tuple(Scope)

# A flush interval far longer than any test, so only flush() and shutdown write the log.
QUIET_LOG = DecisionLogSettings(flush_seconds=3600)


def api_uow(app: App) -> Callable[[], UnitOfWork]:
    return lambda: app.uow()


def make_client(app: App, **api_settings: Any) -> TestClient:
    return TestClient(create_app(app, ApiSettings(**api_settings), QUIET_LOG))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class World:
    """Two institution owners of the synced snapshot and, for each, a unit and a GLN."""

    owner_in: str
    unit_in: str
    gln_in: str
    owner_out: str
    unit_out: str
    gln_out: str


def route_body(gln: str | None = None, sor_id: str | None = None, **fields: Any) -> dict[str, Any]:
    receiver = {k: v for k, v in {"gln": gln, "sor_id": sor_id}.items() if v is not None}
    return {
        "receiver": receiver,
        "business_message": "correspondence",
        "sender_syntax": "fhir",
        **fields,
    }


def bundle_json(gln: str | None, sor_id: str | None = None, **kwargs: Any) -> bytes:
    bundle = care_communication(receiver=organization("rcv", gln, sor_id), **kwargs)
    return json.dumps(bundle).encode()


def bundle_xml(gln: str | None, sor_id: str | None = None, **kwargs: Any) -> bytes:
    return json_to_xml(care_communication(receiver=organization("rcv", gln, sor_id), **kwargs))


def assert_problem(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and ``type`` ending in ``kind``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if kind is not None:
        assert body["type"] == f"urn:soredi-sync:problem:{kind}"
    return body


def watch_quick_path(monkeypatch: Any, name: str) -> list[bool]:
    """For each request that reaches ``routing.<name>`` (a quick handler, ``at_once.py``):
    whether it answered (True) or left the request to FastAPI (False)."""
    from soredi_sync.api.routers import routing

    seen: list[bool] = []
    quick = getattr(routing, name)

    async def spy(request: Any) -> Any:
        answer = await quick(request)
        seen.append(answer is not None)
        return answer

    monkeypatch.setattr(routing, name, spy)
    return seen
