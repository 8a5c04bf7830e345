"""``soredi-sync sandbox traffic`` against the real API on loopback, over the synced sandbox:
what it sends is what the decision log holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App
from soredi_sync.config import RetrySettings
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.observability.metrics import Metrics
from soredi_sync.ports.records import DecisionEntry
from soredi_sync.sandbox.traffic import TrafficSender, traffic_from_sandbox
from soredi_sync.sandbox.traffic_mix import TrafficDay, TrafficRequest
from soredi_sync.services.decision_log import decisions_since
from tests.support.api import QUIET_LOG, api_uow
from tests.support.cli_runner import Cli
from tests.support.live_server import uvicorn_in_thread

SYNCED_DAY = "1"  # synced_app holds days 0 and 1 of sandbox_dir; 1 is current


@pytest.fixture
def api(synced_app: App) -> Iterator[tuple[str, FastAPI]]:
    """The API over ``synced_app`` on a loopback port: its URL and the app (its decision log)."""
    asgi = create_app(synced_app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
    with uvicorn_in_thread(asgi) as (host, port):
        yield f"http://{host}:{port}", asgi


def traffic_of(
    synced_app: App, sandbox_dir: Path, *, days: int, per_day: int, seed: int
) -> list[TrafficDay]:
    """The traffic the command builds from the synced day of the sandbox, up to today."""
    return traffic_from_sandbox(
        sandbox_dir,
        int(SYNCED_DAY),
        synced_app.reference,
        last_day=today_in_denmark(),
        days=days,
        per_day=per_day,
        seed=seed,
    )


def questions(traffic: list[TrafficDay]) -> list[TrafficRequest]:
    return [request for day in traffic for request in day.requests]


def logged(synced_app: App, asgi: FastAPI) -> list[DecisionEntry]:
    asgi.state.decision_log.flush()
    return decisions_since(api_uow(synced_app), datetime.now(UTC) - timedelta(hours=1), 100_000)


class TestSandboxTraffic:
    def test_the_decision_log_holds_each_request_sent_over_three_days_all_answered(
        self,
        cli: Cli,
        synced_app: App,
        sandbox_dir: Path,
        api: tuple[str, FastAPI],
        issue: Callable[..., str],
    ) -> None:
        url, asgi = api
        token = issue("route:read", name="traffic")
        result = cli(
            "sandbox", "traffic", "--dir", str(sandbox_dir), "--day", SYNCED_DAY,
            "--days", "3", "--per-day", "80", "--seed", "7", "--url", url,
            env={"SOREDI_TRAFFIC_TOKEN": token},
        )  # fmt: skip
        traffic = traffic_of(synced_app, sandbox_dir, days=3, per_day=80, seed=7)
        sent = {q.message_id: q for q in questions(traffic)}
        lines = result.output.splitlines()
        today = today_in_denmark()
        days = [today - timedelta(days=n) for n in (2, 1, 0)]
        assert [line.split(":")[0] for line in lines[:3]] == [str(d) for d in days]
        assert all("80 requests" in line and "; 0 errors" in line for line in lines[:3])
        assert lines[3].startswith("total: 240 requests") and "; 0 errors in 3 batches" in lines[3]
        assert token not in result.output

        entries = logged(synced_app, asgi)
        assert sorted(e.message_id or "" for e in entries) == sorted(sent)
        assert Counter(e.facts["at"] for e in entries if e.facts) == {
            d.isoformat(): 80 for d in days
        }
        for entry in entries:
            question = sent[entry.message_id or ""]
            assert entry.caller == "traffic"
            assert (entry.business_message, entry.sender_syntax) == (
                question.business_message,
                question.sender_syntax,
            )
            if question.by_sor_id:
                assert (entry.receiver_gln, entry.receiver_sor_id) == (
                    None,
                    question.receiver.sor_id,
                )
            else:
                assert (entry.receiver_gln, entry.receiver_sor_id) == (question.receiver.gln, None)
            assert (entry.sender_gln, entry.sender_sor_id) == (
                question.sender.gln,
                question.sender.sor_id,
            )
        outcomes = Counter(e.outcome for e in entries)
        assert outcomes["deliver"] > outcomes["reject"] > 0
        assert f"{outcomes['deliver']} deliver, {outcomes['reject']} reject" in lines[3]

    def test_without_the_sender_the_questions_are_answered_and_logged_without_one(
        self,
        synced_app: App,
        sandbox_dir: Path,
        api: tuple[str, FastAPI],
        issue: Callable[..., str],
    ) -> None:
        url, asgi = api
        traffic = traffic_of(synced_app, sandbox_dir, days=2, per_day=30, seed=3)
        with httpx.Client(timeout=30) as http:
            sender = TrafficSender(
                http, url, issue("route:read"), retry=RetrySettings(), with_sender=False
            )
            counts = sender.send(traffic)
        assert (counts.requests, counts.statuses[200]) == (60, 60)
        entries = logged(synced_app, asgi)
        assert {e.message_id for e in entries} == {q.message_id for q in questions(traffic)}
        assert {(e.sender_gln, e.sender_sor_id) for e in entries} == {(None, None)}

    def test_a_token_without_route_read_stops_the_run_with_the_problem_and_not_the_token(
        self,
        cli: Cli,
        synced_app: App,
        sandbox_dir: Path,
        api: tuple[str, FastAPI],
        issue: Callable[..., str],
    ) -> None:
        url, asgi = api
        token = issue("registry:read")
        result = cli(
            "sandbox", "traffic", "--dir", str(sandbox_dir), "--day", SYNCED_DAY,
            "--per-day", "10", "--url", url, "--token", token, expect=1,
        )  # fmt: skip
        assert "answered HTTP 403" in result.output
        assert "stopped after 0 requests" in result.output
        assert token not in result.output
        assert logged(synced_app, asgi) == []

    def test_a_day_the_sandbox_does_not_hold_is_a_usage_error_before_anything_is_sent(
        self, cli: Cli, sandbox_dir: Path
    ) -> None:
        result = cli(
            "sandbox", "traffic", "--dir", str(sandbox_dir), "--day", "9",
            "--url", "http://127.0.0.1:9", "--token", "t", expect=1,
        )  # fmt: skip
        assert "holds days 0..2, not 9" in result.output
