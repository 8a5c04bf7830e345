"""The auth matrix: every endpoint × {no token, malformed, unknown, revoked, wrong scope,
right scope, owner-restricted inside, owner-restricted outside}."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.services.tokens import TOKEN_PREFIX, Scope, new_token
from tests.support.api import ALL_SCOPES, World, assert_problem, bundle_json, route_body


@dataclass(frozen=True)
class Endpoint:
    name: str
    scope: Scope
    # What an owner-restricted token gets: "target" (200 inside its owners, 403 outside),
    # "always" (200 either way) or "never" (403 either way).
    owner_rule: str

    def call(self, client: TestClient, world: World, headers: dict[str, str], inside: bool) -> Any:
        gln = world.gln_in if inside else world.gln_out
        unit = world.unit_in if inside else world.unit_out
        if self.name == "route":
            return client.post("/v1/route", json=route_body(gln), headers=headers)
        if self.name == "route-by-sor-id":
            return client.post("/v1/route", json=route_body(sor_id=unit), headers=headers)
        if self.name == "route-bundle":
            return client.post(
                "/v1/route/bundle",
                content=bundle_json(gln),
                headers={**headers, "Content-Type": "application/fhir+json"},
            )
        if self.name == "unit":
            return client.get(f"/v1/units/{unit}", headers=headers)
        if self.name == "gln":
            return client.get(f"/v1/glns/{gln}", headers=headers)
        if self.name == "changes":
            return client.get("/v1/changes", headers=headers)
        assert self.name == "snapshot"
        return client.get("/v1/snapshots/current", headers=headers)


ENDPOINTS = [
    Endpoint("route", Scope.ROUTE_READ, "target"),
    Endpoint("route-by-sor-id", Scope.ROUTE_READ, "target"),
    Endpoint("route-bundle", Scope.ROUTE_READ, "target"),
    Endpoint("unit", Scope.REGISTRY_READ, "target"),
    Endpoint("gln", Scope.REGISTRY_READ, "target"),
    Endpoint("changes", Scope.REGISTRY_READ, "never"),
    Endpoint("snapshot", Scope.REGISTRY_READ, "always"),
]


@pytest.fixture(params=ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    return request.param  # type: ignore[no-any-return]


Issue = Callable[..., str]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestAuthentication:
    def test_no_token_is_a_401_problem_with_a_bearer_challenge(
        self, client: TestClient, world: World, endpoint: Endpoint
    ) -> None:
        response = endpoint.call(client, world, {}, inside=True)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "header",
        ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-one-of-ours", "sst_abc"],
        ids=["basic", "empty-bearer", "foreign-token", "no-scheme"],
    )
    def test_a_malformed_authorization_header_is_a_401_problem(
        self, client: TestClient, world: World, endpoint: Endpoint, header: str
    ) -> None:
        response = endpoint.call(client, world, {"Authorization": header}, inside=True)
        assert_problem(response, 401, "unauthorized")

    def test_an_unknown_token_is_a_401_problem(
        self, client: TestClient, world: World, endpoint: Endpoint
    ) -> None:
        token = new_token()
        assert token.startswith(TOKEN_PREFIX)
        assert_problem(endpoint.call(client, world, _bearer(token), inside=True), 401)

    def test_a_revoked_token_is_a_401_problem(
        self, client: TestClient, world: World, endpoint: Endpoint, issue: Issue
    ) -> None:
        token = issue(*ALL_SCOPES, revoked=True)
        assert_problem(endpoint.call(client, world, _bearer(token), inside=True), 401)


class TestScopes:
    def test_a_token_without_the_endpoints_scope_is_a_403_problem(
        self, client: TestClient, world: World, endpoint: Endpoint, issue: Issue
    ) -> None:
        others = [s for s in ALL_SCOPES if s != endpoint.scope]
        problem = assert_problem(
            endpoint.call(client, world, _bearer(issue(*others)), inside=True), 403, "forbidden"
        )
        assert endpoint.scope.value in problem["detail"]

    def test_a_token_with_the_endpoints_scope_is_answered(
        self, client: TestClient, world: World, endpoint: Endpoint, issue: Issue
    ) -> None:
        response = endpoint.call(client, world, _bearer(issue(endpoint.scope)), inside=False)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"


class TestOwnerRestriction:
    def test_inside_its_owners_a_restricted_token_is_answered(
        self, client: TestClient, world: World, endpoint: Endpoint, issue: Issue
    ) -> None:
        token = issue(endpoint.scope, owners=(world.owner_in,))
        response = endpoint.call(client, world, _bearer(token), inside=True)
        if endpoint.owner_rule == "never":
            assert_problem(response, 403, "forbidden")
        else:
            assert response.status_code == 200, response.text

    def test_outside_its_owners_a_restricted_token_is_a_403_problem(
        self, client: TestClient, world: World, endpoint: Endpoint, issue: Issue
    ) -> None:
        token = issue(endpoint.scope, owners=(world.owner_in,))
        response = endpoint.call(client, world, _bearer(token), inside=False)
        if endpoint.owner_rule == "always":
            assert response.status_code == 200, response.text
        else:
            assert_problem(response, 403, "forbidden")

    def test_a_token_for_several_owners_is_answered_for_each(
        self, client: TestClient, world: World, issue: Issue
    ) -> None:
        token = issue(Scope.REGISTRY_READ, owners=(world.owner_in, world.owner_out))
        for unit in (world.unit_in, world.unit_out):
            assert client.get(f"/v1/units/{unit}", headers=_bearer(token)).status_code == 200

    def test_a_restricted_token_gets_no_decision_for_an_unknown_receiver(
        self, client: TestClient, world: World, issue: Issue
    ) -> None:
        token = issue(Scope.ROUTE_READ, owners=(world.owner_in,))
        response = client.post(
            "/v1/route", json=route_body("5790000000005"), headers=_bearer(token)
        )
        assert_problem(response, 403, "forbidden")

    def test_pairing_its_own_sor_id_with_a_foreign_gln_is_a_403_problem(
        self, client: TestClient, world: World, issue: Issue
    ) -> None:
        # The resolver decides on the given GLN when the two disagree, so the GLN is checked too.
        token = issue(Scope.ROUTE_READ, owners=(world.owner_in,))
        body = route_body(world.gln_out, sor_id=world.unit_in)
        assert_problem(client.post("/v1/route", json=body, headers=_bearer(token)), 403)
