"""Registry reads, health probes and the problem shape of every error the API gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.sandbox.generate import Manifest
from tests.support.api import World, assert_problem, bearer, make_client


@pytest.fixture
def reader(issue: Callable[..., str]) -> dict[str, str]:
    return bearer(issue("registry:read"))


class TestUnits:
    def test_a_unit_comes_with_its_tree_effective_gln_and_message_types(
        self, client: TestClient, reader: dict[str, str], world: World
    ) -> None:
        response = client.get(f"/v1/units/{world.unit_in}", headers=reader)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["snapshot"]["id"] == 2
        assert data["unit"]["sor_id"] == world.unit_in
        assert data["unit"]["owner_sor_id"] == world.owner_in
        assert data["effective"]["gln"] == world.gln_in
        assert data["effective"]["path"][0] == world.unit_in
        assert data["gln"]["gln"] == world.gln_in
        assert data["message_types"] and {"message_type", "version_code"} == set(
            data["message_types"][0]
        )
        assert all(a["owner_sor_id"] == world.owner_in for a in data["ancestors"])

    def test_a_unit_as_it_was_on_an_earlier_date(
        self, client: TestClient, reader: dict[str, str], world: World, manifest: Manifest
    ) -> None:
        day0 = manifest.day(0).snapshot_date
        data = client.get(f"/v1/units/{world.unit_in}?at={day0}", headers=reader).json()
        assert data["snapshot"]["id"] == 1

    def test_an_unknown_unit_is_a_404_problem(
        self, client: TestClient, reader: dict[str, str]
    ) -> None:
        problem = assert_problem(client.get("/v1/units/1", headers=reader), 404, "not-found")
        assert "'1'" in problem["detail"]

    def test_a_sor_id_with_letters_is_a_422_problem(
        self, client: TestClient, reader: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/units/abc", headers=reader), 422, "validation")


class TestGlns:
    def test_a_gln_comes_with_its_vans_types_and_the_units_using_it(
        self, client: TestClient, reader: dict[str, str], world: World
    ) -> None:
        data = client.get(f"/v1/glns/{world.gln_in}", headers=reader).json()
        assert data["gln"]["gln"] == world.gln_in
        assert "vans" in data["gln"]
        assert world.unit_in in [u["sor_id"] for u in data["owners"]]
        assert isinstance(data["inheritors"], list)
        assert data["message_types"]

    def test_an_unknown_gln_is_a_404_problem(
        self, client: TestClient, reader: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/glns/5790000000005", headers=reader), 404, "not-found")

    def test_a_gln_of_the_wrong_length_is_a_422_problem(
        self, client: TestClient, reader: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/glns/57900001", headers=reader), 422, "validation")


class TestChanges:
    def test_the_feed_pages_with_the_cursor_it_returns(
        self, client: TestClient, reader: dict[str, str]
    ) -> None:
        first = client.get("/v1/changes?cursor=0&limit=5", headers=reader).json()
        assert len(first["changes"]) == 5
        assert first["next_cursor"] == first["changes"][-1]["cursor"]
        rest = client.get(
            f"/v1/changes?cursor={first['next_cursor']}&limit=10000", headers=reader
        ).json()
        cursors = [c["cursor"] for c in first["changes"] + rest["changes"]]
        assert cursors == sorted(set(cursors))
        assert {c["snapshot_id"] for c in rest["changes"]} == {2}
        empty = client.get(f"/v1/changes?cursor={rest['next_cursor']}", headers=reader).json()
        assert empty == {"changes": [], "next_cursor": rest["next_cursor"]}

    def test_a_limit_out_of_range_is_a_422_problem(
        self, client: TestClient, reader: dict[str, str]
    ) -> None:
        assert_problem(client.get("/v1/changes?limit=0", headers=reader), 422, "validation")


class TestSnapshots:
    def test_the_current_snapshot_with_its_age_and_the_feeds_cursor(
        self, client: TestClient, reader: dict[str, str], manifest: Manifest
    ) -> None:
        data = client.get("/v1/snapshots/current", headers=reader).json()
        snapshot = data["snapshot"]
        assert snapshot["id"] == 2 and snapshot["age_seconds"] >= 0
        assert snapshot["effective_date"] == manifest.day(1).snapshot_date
        assert snapshot["unit_count"] == manifest.day(1).counts["units"]
        last = client.get("/v1/changes?cursor=0&limit=10000", headers=reader).json()
        assert data["last_change_cursor"] == last["next_cursor"]

    def test_without_a_snapshot_it_is_a_503_problem(self, empty_app: App) -> None:
        from soredi_sync.services.tokens import create_token
        from tests.support.api import api_uow

        token = create_token(api_uow(empty_app), ["registry:read"]).token
        with make_client(empty_app) as client:
            response = client.get("/v1/snapshots/current", headers=bearer(token))
        assert_problem(response, 503, "no-snapshot")


class TestHealth:
    def test_healthz_answers_without_a_token(self, client: TestClient) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}

    def test_readyz_is_ready_once_a_snapshot_exists(
        self, client: TestClient, synced_app: App
    ) -> None:
        response = client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["snapshot_id"]) == ("ready", 2)
        with synced_app.uow() as uow:
            confirmed = uow.runs.last_confirmed_at()
        assert confirmed is not None
        # The age of the data: since the last sync that confirmed it (the session's, copied).
        expected = (datetime.now(UTC) - confirmed).total_seconds()
        assert abs(body["data_age_seconds"] - expected) < 5

    def test_readyz_is_a_503_problem_before_the_first_sync(self, empty_app: App) -> None:
        with make_client(empty_app) as client:
            assert_problem(client.get("/readyz"), 503, "no-snapshot")

    def test_readyz_is_a_503_problem_when_the_database_does_not_answer(
        self, synced_app: App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from sqlalchemy.exc import OperationalError

        def broken() -> object:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

        with make_client(synced_app) as client:
            monkeypatch.setattr(synced_app, "uow", broken)
            assert_problem(client.get("/readyz"), 503, "database-unavailable")


class TestProblems:
    def test_an_unknown_path_is_a_404_problem(self, client: TestClient) -> None:
        problem = assert_problem(client.get("/v1/nothing-here"), 404)
        assert problem["type"] == "about:blank" and problem["title"] == "Not Found"

    def test_a_wrong_method_is_a_405_problem(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/route"), 405)
