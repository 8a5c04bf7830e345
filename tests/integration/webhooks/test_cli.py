"""``soredi-sync webhook``: add (the secret once), list, deliveries, remove, dispatch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.services.webhooks import verify
from tests.support.app import sync_day
from tests.support.receivers import Receiver
from tests.support.webhooks import LOOPBACK


@pytest.fixture
def loopback_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers listen on loopback, which only an operator's allow-list admits."""
    monkeypatch.setenv("SOREDI_WEBHOOKS__ALLOW_NETWORKS", json.dumps(LOOPBACK))


@pytest.mark.usefixtures("day0", "loopback_receivers")
class TestWebhookCommands:
    def test_add_prints_the_secret_once_and_list_never_shows_it(
        self, cli, receiver: Receiver
    ) -> None:
        result = cli(
            "webhook", "add", "north", receiver.url, "--owner", "123,456",
            "--message-type", "fdis91", "--kind", "added", "--kind", "removed",
        )  # fmt: skip
        secret = result.stdout.strip()
        assert secret.startswith("whsec_") and secret not in result.stderr
        assert "not shown again" in result.stderr
        listed = cli("webhook", "list", "--json").stdout
        assert secret not in listed
        (sub,) = json.loads(listed)
        assert sub["name"] == "north" and sub["origin"] == "api" and sub["active"] is True
        assert sub["filters"]["owners"] == ["123", "456"]
        assert sub["filters"]["message_types"] == ["FDIS91"]
        assert sub["filters"]["kinds"] == ["added", "removed"]
        assert sub["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}
        table = cli("webhook", "list").stdout
        assert "north" in table and secret not in table

    def test_dispatch_delivers_and_deliveries_shows_the_state(
        self, cli, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        secret = cli("webhook", "add", "all", receiver.url).stdout.strip()
        sync_day(day0, sandbox_dir, 1)

        summary = cli("webhook", "dispatch").stdout

        assert "enqueued 1 deliveries" in summary and "delivered 1" in summary
        (request,) = receiver.requests
        assert verify(
            secret,
            request.headers["X-Soredi-Timestamp"],
            request.body,
            request.headers["X-Soredi-Signature"],
        )
        (delivery,) = json.loads(cli("webhook", "deliveries", "all", "--json").stdout)
        assert delivery["status"] == "delivered" and delivery["last_status_code"] == 204
        assert delivery["change_count"] == len(request.payload["changes"])
        assert "delivered" in cli("webhook", "deliveries", "all").stdout

    def test_remove_stops_the_subscription_and_keeps_it_listed(
        self, cli, receiver: Receiver
    ) -> None:
        cli("webhook", "add", "gone", receiver.url)
        assert "removed webhook" in cli("webhook", "remove", "gone").stdout
        (sub,) = json.loads(cli("webhook", "list", "--json").stdout)
        assert sub["active"] is False

    def test_unknown_names_and_bad_input_fail_with_a_message(self, cli, receiver: Receiver) -> None:
        assert (
            "no webhook subscription 'nope'"
            in cli("webhook", "deliveries", "nope", expect=4).stderr
        )
        cli("webhook", "remove", "nope", expect=4)
        cli("webhook", "add", "bad", "ftp://127.0.0.1/x", expect=2)
        cli("webhook", "add", "bad", receiver.url, "--gln", "123", expect=2)
        cli("webhook", "add", "twice", receiver.url)
        assert "exists" in cli("webhook", "add", "twice", receiver.url, expect=1).stderr

    def test_the_token_command_accepts_the_webhook_admin_scope(self, cli) -> None:
        token = cli("token", "create", "--scope", "webhook:admin").stdout.strip()
        assert token.startswith("sst_")

    def test_add_refuses_a_private_receiver_and_keeps_url_credentials_out_of_the_list(
        self, cli, receiver: Receiver
    ) -> None:
        refused = cli("webhook", "add", "internal", "http://10.0.0.1/hook", expect=2)
        assert "refused by the address policy" in refused.stderr
        cli("webhook", "add", "basic", receiver.url.replace("http://", "http://ops:hunter2@"))
        listed = cli("webhook", "list", "--json").stdout
        (sub,) = json.loads(listed)
        assert sub["url"] == receiver.url and sub["has_credentials"] is True
        assert "hunter2" not in listed and "hunter2" not in cli("webhook", "list").stdout
