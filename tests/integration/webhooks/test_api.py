"""``/v1/webhooks``: scope ``webhook:admin``, unrestricted tokens only; create, read, remove."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from soredi_sync.bootstrap import App
from soredi_sync.config import WebhookConfig
from soredi_sync.services.tokens import Scope
from soredi_sync.services.webhooks import sync_configured
from tests.support.api import ALL_SCOPES, World, assert_problem, bearer
from tests.support.app import sync_day
from tests.support.receivers import Receiver
from tests.support.webhooks import LOOPBACK, dispatch, uow, webhook_settings

Issue = Callable[..., str]

BODY = {"name": "region-north", "url": "http://127.0.0.1:9/hook", "message_types": ["FDIS91"]}

CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("post", "/v1/webhooks", BODY),
    ("get", "/v1/webhooks", None),
    ("get", "/v1/webhooks/1", None),
    ("delete", "/v1/webhooks/1", None),
    ("get", "/v1/webhooks/1/deliveries", None),
]
IDS = ["create", "list", "get", "delete", "deliveries"]


def call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    if body is None:
        return client.request(method, path, headers=headers)
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture(autouse=True)
def loopback_allowed(synced_app: App) -> None:
    """The receivers here listen on loopback, which only an operator's allow-list admits."""
    synced_app.settings.webhooks.allow_networks = [ip_network(n) for n in LOOPBACK]


@pytest.fixture
def admin(issue: Issue) -> dict[str, str]:
    return bearer(issue("webhook:admin", name="ops"))


def create(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/webhooks", json={**BODY, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


class TestAuth:
    @pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=IDS)
    def test_no_token_is_a_401_problem(
        self, client: TestClient, method: str, path: str, body: Any
    ) -> None:
        assert_problem(call(client, method, path, body, {}), 401, "unauthorized")

    @pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=IDS)
    def test_a_token_without_the_webhook_admin_scope_is_a_403_problem(
        self, client: TestClient, issue: Issue, method: str, path: str, body: Any
    ) -> None:
        others = [s for s in ALL_SCOPES if s is not Scope.WEBHOOK_ADMIN]
        response = call(client, method, path, body, bearer(issue(*others)))
        assert "webhook:admin" in assert_problem(response, 403, "forbidden")["detail"]

    @pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=IDS)
    def test_an_owner_restricted_token_is_a_403_problem_even_with_the_scope(
        self, client: TestClient, issue: Issue, world: World, method: str, path: str, body: Any
    ) -> None:
        token = issue("webhook:admin", owners=(world.owner_in,))
        response = call(client, method, path, body, bearer(token))
        assert "restricted to owners" in assert_problem(response, 403, "forbidden")["detail"]

    def test_a_revoked_token_is_a_401_problem(self, client: TestClient, issue: Issue) -> None:
        token = issue("webhook:admin", revoked=True)
        assert_problem(client.get("/v1/webhooks", headers=bearer(token)), 401)


class TestCrud:
    def test_create_answers_201_with_the_secret_which_is_never_shown_again(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        created = create(client, admin, owners=["123"], kinds=["added", "removed"])
        assert created["secret"].startswith("whsec_")
        assert created["name"] == "region-north" and created["origin"] == "api"
        assert created["active"] is True and created["created_by"] == "token:ops"
        assert created["filters"] == {
            "glns": [],
            "owners": ["123"],
            "message_types": ["FDIS91"],
            "kinds": ["added", "removed"],
            "entities": [],
        }
        assert created["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}
        listed = client.get("/v1/webhooks", headers=admin)
        one = client.get(f"/v1/webhooks/{created['id']}", headers=admin)
        for response in (listed, one):
            assert response.status_code == 200
            assert created["secret"] not in response.text and "secret" not in response.text
        assert [w["name"] for w in listed.json()["webhooks"]] == ["region-north"]
        assert one.json() == {k: v for k, v in created.items() if k != "secret"}

    def test_a_new_subscription_starts_at_the_end_of_the_feed(
        self, client: TestClient, admin: dict[str, str], synced_app: App
    ) -> None:
        with synced_app.uow() as work:
            end = work.registry.last_cursor()
        assert end > 0
        assert create(client, admin)["cursor"] == end

    def test_delete_answers_204_and_leaves_the_subscription_listed_inactive(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        created = create(client, admin)
        response = client.delete(f"/v1/webhooks/{created['id']}", headers=admin)
        assert response.status_code == 204 and response.content == b""
        assert client.get(f"/v1/webhooks/{created['id']}", headers=admin).json()["active"] is False
        again = client.delete(f"/v1/webhooks/{created['id']}", headers=admin)
        assert again.status_code == 204

    def test_the_name_of_a_removed_subscription_can_be_used_again_with_a_new_secret(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        first = create(client, admin)
        client.delete(f"/v1/webhooks/{first['id']}", headers=admin)
        second = create(client, admin, url="http://127.0.0.1:10/other")
        assert second["id"] == first["id"] and second["active"] is True
        assert second["secret"] != first["secret"] and second["url"].endswith("/other")

    def test_a_name_in_use_is_a_409_problem(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        create(client, admin)
        response = client.post("/v1/webhooks", json=BODY, headers=admin)
        assert_problem(response, 409, "webhook-conflict")

    def test_a_configured_subscription_is_listed_but_cannot_be_deleted_or_shadowed(
        self, client: TestClient, admin: dict[str, str], synced_app: App
    ) -> None:
        config = WebhookConfig(
            name="configured", url="http://127.0.0.1:9/c", secret=SecretStr("whsec_c")
        )
        with uow(synced_app) as work:
            sync_configured(work, webhook_settings(config))
        (listed,) = client.get("/v1/webhooks", headers=admin).json()["webhooks"]
        assert (listed["name"], listed["origin"]) == ("configured", "config")
        deleted = client.delete(f"/v1/webhooks/{listed['id']}", headers=admin)
        assert "configuration" in assert_problem(deleted, 409, "webhook-conflict")["detail"]
        shadow = client.post("/v1/webhooks", json={**BODY, "name": "configured"}, headers=admin)
        assert_problem(shadow, 409, "webhook-conflict")

    @pytest.mark.parametrize(
        "fields",
        [
            {"url": "ftp://127.0.0.1/hook"},
            {"url": "not a url"},
            {"name": "has space"},
            {"message_types": ["FDIS 91"]},
        ],
        ids=["scheme", "url", "name", "message-type"],
    )
    def test_an_invalid_subscription_is_a_422_problem(
        self, client: TestClient, admin: dict[str, str], fields: dict[str, Any]
    ) -> None:
        response = client.post("/v1/webhooks", json={**BODY, **fields}, headers=admin)
        assert_problem(response, 422, "invalid-webhook")

    @pytest.mark.parametrize(
        "fields",
        [{"glns": ["123"]}, {"owners": ["x"]}, {"kinds": ["moved"]}, {"secret": "mine"}],
        ids=["gln", "owner", "kind", "unknown-field"],
    )
    def test_a_malformed_body_is_a_422_validation_problem(
        self, client: TestClient, admin: dict[str, str], fields: dict[str, Any]
    ) -> None:
        response = client.post("/v1/webhooks", json={**BODY, **fields}, headers=admin)
        assert_problem(response, 422, "validation")

    @pytest.mark.parametrize("path", ["/v1/webhooks/99", "/v1/webhooks/99/deliveries"])
    def test_an_unknown_subscription_is_a_404_problem(
        self, client: TestClient, admin: dict[str, str], path: str
    ) -> None:
        assert_problem(client.get(path, headers=admin), 404, "not-found")
        assert_problem(client.delete("/v1/webhooks/99", headers=admin), 404, "not-found")


class TestDeliveryState:
    def test_the_deliveries_endpoint_shows_each_delivery_and_its_state(
        self,
        client: TestClient,
        admin: dict[str, str],
        synced_app: App,
        sandbox_dir: Path,
        receiver: Receiver,
    ) -> None:
        created = create(client, admin, url=receiver.url, message_types=[])
        sync_day(synced_app, sandbox_dir, 2)
        receiver.answers.append(500)
        dispatch(synced_app)

        response = client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=admin)

        assert response.status_code == 200
        body = response.json()
        (delivery,) = body["deliveries"]
        assert body["webhook_id"] == created["id"]
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert delivery["last_status_code"] == 500 and delivery["next_attempt_at"]
        assert delivery["change_count"] > 0
        summary = client.get(f"/v1/webhooks/{created['id']}", headers=admin).json()
        assert summary["deliveries"] == {"pending": 1, "delivered": 0, "failed": 0}
        only_failed = client.get(
            f"/v1/webhooks/{created['id']}/deliveries?status=failed", headers=admin
        )
        assert only_failed.json()["deliveries"] == []


class TestReceiverAddresses:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8000/v1/route",  # the API itself
            "http://127.0.0.1:5432/",  # the database port
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/hook",
            "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://2130706433/hook",
        ],
    )
    def test_a_non_public_receiver_is_refused_with_a_422_unless_the_operator_allows_it(
        self, client: TestClient, admin: dict[str, str], synced_app: App, url: str
    ) -> None:
        synced_app.settings.webhooks.allow_networks = []
        response = client.post("/v1/webhooks", json={**BODY, "url": url}, headers=admin)
        detail = assert_problem(response, 422, "invalid-webhook")["detail"]
        assert detail.startswith("refused by the address policy")
        assert client.get("/v1/webhooks", headers=admin).json()["webhooks"] == []

    def test_credentials_in_the_url_are_stored_apart_and_never_shown(
        self, client: TestClient, admin: dict[str, str]
    ) -> None:
        created = create(client, admin, url="http://hook-user:s3cr%40t@127.0.0.1:9/hook")
        assert created["url"] == "http://127.0.0.1:9/hook"
        assert created["has_credentials"] is True
        listed = client.get("/v1/webhooks", headers=admin)
        one = client.get(f"/v1/webhooks/{created['id']}", headers=admin)
        for text in (listed.text, one.text, str(created)):
            assert "s3cr" not in text and "hook-user" not in text
        assert one.json()["has_credentials"] is True
        plain = create(client, admin, name="plain")
        assert plain["has_credentials"] is False
