"""`soredi-sync run` with its API: metrics, readiness, JSON logs and a signed webhook."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.webhooks import verify
from tests.support.daemon import FAST, Daemon, Db
from tests.support.receivers import Receiver
from tests.support.waiting import wait_until

KEY = "hook-key-not-for-logs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class TestService:
    def test_it_serves_metrics_and_readiness_logs_json_and_signs_a_webhook_after_a_sync(
        self,
        database_url: str,
        files: SandboxServer,
        db: Db,
        receiver: Receiver,
        start_daemon: Callable[..., Daemon],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        port = _free_port()
        monkeypatch.setenv("HOOK_KEY", KEY)
        subscriptions = [{"name": "gateway", "url": receiver.url, "secret_env": "HOOK_KEY"}]
        daemon = start_daemon(
            database_url,
            "--port",
            str(port),
            SOURCES__BASE_URL=files.base_url,
            WEBHOOKS__SUBSCRIPTIONS=json.dumps(subscriptions),
            WEBHOOKS__ALLOW_NETWORKS=json.dumps(["127.0.0.0/8"]),  # the receiver is on loopback
            LOGGING__FORMAT="json",
            **FAST,
        )
        base = f"http://127.0.0.1:{port}"

        def succeeded() -> int:
            return sum(status is RunStatus.SUCCEEDED for _i, status, _e, _t in db.runs())

        wait_until(succeeded, 30, "the first sync")
        ready = wait_until(lambda: _get(f"{base}/readyz"), 30, "the API to answer /readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"

        files.set_day(1)  # the next day's changes go to the subscription
        wait_until(lambda: succeeded() == 2, 30, "the sync of day 1")
        wait_until(lambda: receiver.requests, 30, "a webhook delivery")
        delivery = receiver.requests[0]
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        assert verify(
            KEY, headers["x-soredi-timestamp"], delivery.body, headers["x-soredi-signature"]
        )
        assert not verify("another key", headers["x-soredi-timestamp"], delivery.body,
                          headers["x-soredi-signature"])  # fmt: skip
        assert delivery.payload["subscription"] == "gateway" and delivery.payload["changes"]

        metrics = _get(f"{base}/metrics")
        assert metrics is not None and metrics.status_code == 200
        samples = _samples(metrics.text)
        runs = (("source", "sor-filer"), ("status", "succeeded"))
        assert samples[("soredi_sync_runs_total", runs)] == 2
        assert samples[("soredi_leader", ())] == 1
        assert samples[("soredi_snapshot_age_seconds", ())] < 600
        assert samples[("soredi_webhook_deliveries_total", (("status", "delivered"),))] >= 1

        assert daemon.stop(signal.SIGTERM) == 0
        lines = [line for line in daemon.output().splitlines() if line.startswith("{")]
        records = [json.loads(line) for line in lines]
        assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
        assert any(r.get("run_id") for r in records if "Sync run" in r["message"])
        assert KEY not in daemon.output()


def _get(url: str) -> httpx.Response | None:
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return response if response.status_code < 500 else None
