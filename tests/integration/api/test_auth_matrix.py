"""The full auth matrix: every ``/v1`` operation of the published OpenAPI document × every
kind of token.

The operations are read from the document (built by the same ``create_app``, without a
database), so a new endpoint without an entry in ``MATRIX`` fails here, and so does an entry
for an operation that is gone. For each operation the entry says which scope it needs, how to
build a valid request about data inside or outside a token's owners, what a token with the
scope gets, and the owner rule an owner-restricted token meets:

- ``TARGET``: answered inside its owners, 403 outside (routing, units, GLNs; audit, adoption
  and cut-over narrowed with ``?owner=``; plans of its owners);
- ``ALWAYS``: answered either way (``/v1/snapshots/current`` is no owner's data);
- ``NEVER``: 403 either way, the endpoint needs an unrestricted token (the change feed,
  webhooks).

Token kinds: none, an unknown token, a revoked one (401 each), one with every scope but the
operation's (403), one with the scope (answered), and one with the scope restricted to
``world.owner_in``, asked about data inside and outside that owner. ``test_auth.py`` covers the
routing and registry edge cases (malformed headers, several owners, foreign GLNs).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.observability.metrics import Metrics
from soredi_sync.services.plans import create_plan
from soredi_sync.services.tokens import Scope, new_token
from soredi_sync.services.webhooks import WebhookFilter, create_subscription
from tests.support.api import (
    ALL_SCOPES,
    QUIET_LOG,
    World,
    assert_problem,
    bearer,
    bundle_json,
    route_body,
)
from tests.support.app import make_settings
from tests.support.real_messages import readdressed


def _published_operations() -> dict[str, dict[str, Any]]:
    """``"METHOD /path"`` → its OpenAPI operation, for every ``/v1`` operation published."""
    with bootstrap(make_settings("sqlite://")) as app:  # never connected
        api = create_app(app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
        document = api.openapi()
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    }


OPERATIONS = _published_operations()


class Rule(enum.Enum):
    TARGET = "target"
    ALWAYS = "always"
    NEVER = "never"
    ITEMS = "items"  # a batch: 200, and each item outside the token's owners a 403 item


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, client: TestClient, headers: dict[str, str]) -> Any:
        return client.request(
            self.method,
            self.url,
            json=self.json,
            content=self.content,
            headers={**self.headers, **headers},
        )


class Setup:
    """What the requests are about: the two owners of ``world``, and plans and webhooks made
    on demand (through the services, not the API under test)."""

    def __init__(self, app: App, world: World) -> None:
        self.app = app
        self.world = world
        self._plans: dict[bool, int] = {}

    def owner(self, inside: bool) -> str:
        return self.world.owner_in if inside else self.world.owner_out

    def unit(self, inside: bool) -> str:
        return self.world.unit_in if inside else self.world.unit_out

    def gln(self, inside: bool) -> str:
        return self.world.gln_in if inside else self.world.gln_out

    def plan(self, inside: bool) -> int:
        """A plan over the inside (or outside) owner."""
        if inside not in self._plans:
            with self.app.uow() as uow:
                plan = create_plan(
                    uow,
                    self.app.reference.audit_context,
                    actor="matrix",
                    owners=[self.owner(inside)],
                    switch_to="carecommunication",
                )
            self._plans[inside] = plan.id
        return self._plans[inside]

    def webhook(self, _inside: bool) -> int:
        with self.app.uow() as uow:
            created = create_subscription(
                uow,
                name="matrix",
                url="https://gateway.example/hook",
                webhook_filter=WebhookFilter.build(),
                actor="matrix",
            )
        return created.subscription.id


def _get(url: str) -> Callable[[Setup, bool], Call]:
    """A GET of ``url``, formatted with ``owner``, ``unit`` and ``gln`` (inside or outside)."""

    def build(s: Setup, inside: bool) -> Call:
        return Call(
            "GET", url.format(owner=s.owner(inside), unit=s.unit(inside), gln=s.gln(inside))
        )

    return build


def _plan(method: str, tail: str = "", body: Any = None) -> Callable[[Setup, bool], Call]:
    return lambda s, inside: Call(method, f"/v1/plans/{s.plan(inside)}{tail}", json=body)


def _webhook(method: str, tail: str = "") -> Callable[[Setup, bool], Call]:
    return lambda s, inside: Call(method, f"/v1/webhooks/{s.webhook(inside)}{tail}")


@dataclass(frozen=True)
class Entry:
    scope: Scope
    rule: Rule
    build: Callable[[Setup, bool], Call]  # (setup, inside its owners) -> a valid request
    ok: int = 200  # what a token with the scope gets for it


MATRIX: dict[str, Entry] = {
    # routing
    "POST /v1/route": Entry(
        Scope.ROUTE_READ,
        Rule.TARGET,
        lambda s, inside: Call("POST", "/v1/route", json=route_body(s.gln(inside))),
    ),
    "POST /v1/route/batch": Entry(
        Scope.ROUTE_READ,
        Rule.ITEMS,
        lambda s, inside: Call(
            "POST",
            "/v1/route/batch",
            json={"requests": [route_body(s.gln(inside)), route_body(s.gln(inside))]},
        ),
    ),
    "POST /v1/route/bundle": Entry(
        Scope.ROUTE_READ,
        Rule.TARGET,
        lambda s, inside: Call(
            "POST",
            "/v1/route/bundle",
            content=bundle_json(s.gln(inside)),
            headers={"Content-Type": "application/fhir+json"},
        ),
    ),
    "POST /v1/route/message": Entry(
        Scope.ROUTE_READ,
        Rule.TARGET,
        # A real OIOXML letter (XDIS91), sent to the GLN inside or outside the token's owners.
        lambda s, inside: Call(
            "POST",
            "/v1/route/message",
            content=readdressed("xdis91-ec-physio-2014.xml", s.gln(inside)),
            headers={"Content-Type": "application/xml"},
        ),
    ),
    # registry
    "GET /v1/units/{sor_id}": Entry(Scope.REGISTRY_READ, Rule.TARGET, _get("/v1/units/{unit}")),
    "GET /v1/glns/{gln}": Entry(Scope.REGISTRY_READ, Rule.TARGET, _get("/v1/glns/{gln}")),
    "GET /v1/changes": Entry(Scope.REGISTRY_READ, Rule.NEVER, _get("/v1/changes")),
    "GET /v1/snapshots/current": Entry(
        Scope.REGISTRY_READ, Rule.ALWAYS, _get("/v1/snapshots/current")
    ),
    # audit
    "GET /v1/audit": Entry(Scope.AUDIT_READ, Rule.TARGET, _get("/v1/audit?owner={owner}")),
    "GET /v1/adoption": Entry(Scope.AUDIT_READ, Rule.TARGET, _get("/v1/adoption?owner={owner}")),
    "GET /v1/cutover": Entry(
        Scope.AUDIT_READ,
        Rule.TARGET,
        _get("/v1/cutover?" + urlencode({"date": "2027-01-04"}) + "&owner={owner}"),
    ),
    # change plans
    "POST /v1/plans": Entry(
        Scope.PLAN_WRITE,
        Rule.TARGET,
        lambda s, inside: Call(
            "POST", "/v1/plans", json={"owner": s.owner(inside), "switch_to": "carecommunication"}
        ),
        ok=201,
    ),
    "GET /v1/plans/{plan_id}": Entry(Scope.PLAN_WRITE, Rule.TARGET, _plan("GET")),
    "POST /v1/plans/{plan_id}/verify": Entry(
        Scope.PLAN_WRITE, Rule.TARGET, _plan("POST", "/verify")
    ),
    "POST /v1/plans/{plan_id}/submit": Entry(
        Scope.PLAN_WRITE, Rule.TARGET, _plan("POST", "/submit", {"channel": "worklist"})
    ),
    "GET /v1/plans/{plan_id}/worklist": Entry(
        Scope.PLAN_WRITE, Rule.TARGET, _plan("GET", "/worklist")
    ),
    # webhooks
    "POST /v1/webhooks": Entry(
        Scope.WEBHOOK_ADMIN,
        Rule.NEVER,
        lambda s, inside: Call(
            "POST", "/v1/webhooks", json={"name": "new", "url": "https://gateway.example/hook"}
        ),
        ok=201,
    ),
    "GET /v1/webhooks": Entry(Scope.WEBHOOK_ADMIN, Rule.NEVER, _get("/v1/webhooks")),
    "GET /v1/webhooks/{webhook_id}": Entry(Scope.WEBHOOK_ADMIN, Rule.NEVER, _webhook("GET")),
    "DELETE /v1/webhooks/{webhook_id}": Entry(
        Scope.WEBHOOK_ADMIN, Rule.NEVER, _webhook("DELETE"), ok=204
    ),
    "GET /v1/webhooks/{webhook_id}/deliveries": Entry(
        Scope.WEBHOOK_ADMIN, Rule.NEVER, _webhook("GET", "/deliveries")
    ),
}


class Kind(enum.Enum):
    NONE = "none"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    WRONG_SCOPE = "wrong-scope"
    UNRESTRICTED = "unrestricted"
    RESTRICTED_INSIDE = "restricted-inside"
    RESTRICTED_OUTSIDE = "restricted-outside"


def expected_status(entry: Entry, kind: Kind) -> int:
    if kind in (Kind.NONE, Kind.UNKNOWN, Kind.REVOKED):
        return 401
    if kind is Kind.WRONG_SCOPE:
        return 403
    if kind is Kind.UNRESTRICTED:
        return entry.ok
    if kind is Kind.RESTRICTED_INSIDE:
        return 403 if entry.rule is Rule.NEVER else entry.ok
    return entry.ok if entry.rule in (Rule.ALWAYS, Rule.ITEMS) else 403


def _headers(kind: Kind, entry: Entry, issue: Callable[..., str], world: World) -> dict[str, str]:
    if kind is Kind.NONE:
        return {}
    if kind is Kind.UNKNOWN:
        return bearer(new_token())
    if kind is Kind.REVOKED:
        return bearer(issue(*ALL_SCOPES, revoked=True))
    if kind is Kind.WRONG_SCOPE:
        return bearer(issue(*(s for s in ALL_SCOPES if s is not entry.scope)))
    if kind is Kind.UNRESTRICTED:
        return bearer(issue(entry.scope))
    return bearer(issue(entry.scope, owners=(world.owner_in,)))


def test_every_published_v1_operation_has_an_entry_and_every_entry_an_operation() -> None:
    assert sorted(OPERATIONS) == sorted(MATRIX)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_the_published_operation_needs_the_bearer_token_and_the_scope_of_its_entry(
    label: str,
) -> None:
    operation = OPERATIONS[label]
    entry = MATRIX.get(label)
    assert entry is not None, f"{label} has no entry in MATRIX"
    assert operation["security"] == [{"HTTPBearer": []}]
    assert {"401", "403"} <= operation["responses"].keys()
    assert f"`{entry.scope.value}`" in operation["description"]


@pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_auth_matrix(
    client: TestClient,
    synced_app: App,
    world: World,
    issue: Callable[..., str],
    label: str,
    kind: Kind,
) -> None:
    entry = MATRIX.get(label)
    assert entry is not None, f"{label} has no entry in MATRIX"
    inside = kind is not Kind.RESTRICTED_OUTSIDE and kind is not Kind.UNRESTRICTED
    call = entry.build(Setup(synced_app, world), inside)
    response = call.send(client, _headers(kind, entry, issue, world))
    status = expected_status(entry, kind)
    if status == 401:
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    elif status == 403:
        problem = assert_problem(response, 403, "forbidden")
        if kind is Kind.WRONG_SCOPE:
            assert entry.scope.value in problem["detail"]
    else:
        assert response.status_code == status, response.text
        if entry.rule is Rule.ITEMS:
            items = response.json()["results"]
            expected = 403 if kind is Kind.RESTRICTED_OUTSIDE else 200
            assert [item["status"] for item in items] == [expected] * len(items), items
            if expected == 403:
                assert all(item["problem"]["type"].endswith("forbidden") for item in items)
