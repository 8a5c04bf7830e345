"""Fixtures of the traffic tests: a realistic day of traffic routed through the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.sandbox.traffic_mix import build_traffic
from tests.support.api import bearer


@dataclass
class Posted:
    bodies: list[dict[str, Any]]
    answers: list[dict[str, Any]]


@pytest.fixture
def posted(client: TestClient, synced_app: App, issue: Callable[..., str]) -> Posted:
    """A realistic day of traffic (the sandbox's generator) routed through the API and logged."""
    reference = synced_app.reference
    (day,) = build_traffic(
        synced_app.routing().resolver().index.registry,
        reference.message_types,
        reference.audit_context.owner_kinds,
        last_day=today_in_denmark(),
        days=1,
        per_day=400,
        seed=7,
    )
    bodies = [request.body() for request in day.requests]
    answer = client.post(
        "/v1/route/batch", json={"requests": bodies}, headers=bearer(issue("route:read"))
    )
    assert answer.status_code == 200, answer.text
    client.app.state.decision_log.flush()  # type: ignore[attr-defined]
    return Posted(bodies, answer.json()["results"])
