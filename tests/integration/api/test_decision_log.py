"""The decision log: what a served decision leaves behind, how it is buffered, kept and shown."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from soredi_sync.bootstrap import App
from soredi_sync.domain.routing import RouteRequest
from soredi_sync.domain.routing.facts import question_of
from soredi_sync.ports.records import DecisionEntry
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.decision_log import (
    BackgroundFlusher,
    DecisionLog,
    decision_entry,
    decisions_since,
    purge_decisions,
    record_decisions,
    retention_cutoff,
)
from tests.support.api import (
    api_uow,
    assert_problem,
    bearer,
    bundle_json,
    make_client,
    route_body,
)
from tests.support.decisions import logged
from tests.support.fhir import SENDER

HOUR_AGO = timedelta(hours=1)


def _xmo(manifest: Manifest) -> str:
    return next(g for g, i in manifest.reference_glns.items() if "XMO" in i["label"])


def _entry(decided_at: datetime, message_id: str = "m") -> DecisionEntry:
    return logged(decided_at, message_id=message_id)


def _logged(app: App) -> list[DecisionEntry]:
    return decisions_since(api_uow(app), datetime.now(UTC) - HOUR_AGO)


class TestDecisionsServed:
    def test_each_decision_is_logged_with_caller_receiver_outcome_and_snapshot(
        self,
        client: TestClient,
        synced_app: App,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        xmo = _xmo(manifest)
        headers = bearer(issue("route:read", name="gateway-a"))
        client.post("/v1/route", json=route_body(xmo, message_id="m-1"), headers=headers)
        client.post(
            "/v1/route", json=route_body(xmo, message_id="m-2", at="2027-02-01"), headers=headers
        )
        assert _logged(synced_app) == [], "nothing is written on the request path"
        assert client.app.state.decision_log.flush() == 2  # type: ignore[attr-defined]
        first, second = _logged(synced_app)
        assert first.caller == "gateway-a" and first.token_id is not None
        assert (first.message_id, first.receiver_gln, first.receiver_sor_id) == ("m-1", xmo, None)
        assert (first.outcome, first.reason, first.message_type) == ("deliver", None, "XDIS91")
        assert (first.business_message, first.sender_syntax) == ("correspondence", "fhir")
        assert first.address_gln == xmo and first.snapshot_id == 2
        assert first.decided_at.tzinfo is not None
        assert abs(datetime.now(UTC) - first.decided_at) < timedelta(minutes=1)
        assert (second.message_id, second.outcome) == ("m-2", "reject")
        assert second.reason == "MSG_RECEIVER_UNABLE_TO_RECEIVE_MSG_TYPE"

    def test_refused_requests_are_not_decisions_and_are_not_logged(
        self,
        client: TestClient,
        synced_app: App,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        xmo = _xmo(manifest)
        client.post("/v1/route", json=route_body(xmo))  # 401
        client.post(
            "/v1/route",
            json=route_body(xmo, business_message="nope"),
            headers=bearer(issue("route:read")),
        )  # 422
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        assert _logged(synced_app) == []

    def test_shutting_the_api_down_writes_what_is_buffered(
        self, synced_app: App, issue: Callable[..., str], manifest: Manifest
    ) -> None:
        with make_client(synced_app) as client:
            client.post(
                "/v1/route", json=route_body(_xmo(manifest)), headers=bearer(issue("route:read"))
            )
        assert len(_logged(synced_app)) == 1

    def test_the_background_thread_writes_a_full_batch_without_waiting(
        self, synced_app: App, issue: Callable[..., str], manifest: Manifest
    ) -> None:
        from soredi_sync.api import create_app
        from soredi_sync.api.settings import ApiSettings, DecisionLogSettings

        api = create_app(
            synced_app, ApiSettings(), DecisionLogSettings(flush_seconds=3600, batch_size=3)
        )
        headers = bearer(issue("route:read"))
        with TestClient(api) as client:
            for _ in range(3):
                client.post("/v1/route", json=route_body(_xmo(manifest)), headers=headers)
            deadline = datetime.now(UTC) + timedelta(seconds=10)
            while api.state.decision_log.pending and datetime.now(UTC) < deadline:
                threading.Event().wait(0.01)
            assert api.state.decision_log.pending == 0
        assert len(_logged(synced_app)) == 3


class _BrokenUow:
    def __enter__(self) -> _BrokenUow:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    def __exit__(self, *exc: object) -> None:
        pass


class TestDecisionLogBuffer:
    def test_when_the_database_fails_the_entries_wait_for_the_next_flush(
        self, synced_app: App, caplog: pytest.LogCaptureFixture
    ) -> None:
        healthy = api_uow(synced_app)
        failing = [True]

        def uow() -> object:
            return _BrokenUow() if failing[0] else healthy()

        log = DecisionLog(uow, batch_size=10)  # type: ignore[arg-type]
        now = datetime.now(UTC)
        log.record(_entry(now, "a"))
        log.record(_entry(now, "b"))
        with caplog.at_level(logging.WARNING):
            assert log.flush() == 0
        assert "keeping them" in caplog.text
        assert log.pending == 2
        failing[0] = False
        assert log.flush() == 2
        assert [e.message_id for e in _logged(synced_app)] == ["a", "b"]

    def test_beyond_max_pending_entries_are_dropped_and_the_drop_is_reported(
        self, synced_app: App, caplog: pytest.LogCaptureFixture
    ) -> None:
        log = DecisionLog(api_uow(synced_app), max_pending=2)
        now = datetime.now(UTC)
        for name in "abc":
            log.record(_entry(now, name))
        with caplog.at_level(logging.WARNING):
            assert log.flush() == 2
        assert "dropped 1 decisions" in caplog.text
        assert [e.message_id for e in _logged(synced_app)] == ["a", "b"]

    def test_over_long_values_are_cut_to_the_column_widths(self, synced_app: App) -> None:
        service = synced_app.routing()
        request = RouteRequest(
            "correspondence", "fhir", receiver_gln="1" * 40, message_id="x" * 500
        )
        decision = service.resolver().resolve(request, service.today())
        entry = decision_entry(request, decision, caller="c" * 300, decided_at=datetime.now(UTC))
        record_decisions(api_uow(synced_app), [entry])
        (stored,) = _logged(synced_app)
        assert len(stored.message_id or "") == 200 and len(stored.caller) == 100
        assert stored.receiver_gln == "1" * 13


class TestBackgroundFlusher:
    def test_it_runs_every_job_when_woken_and_once_more_when_stopped(self) -> None:
        calls: list[str] = []
        woken = threading.Event()

        def job() -> None:
            calls.append("job")
            woken.set()

        def failing() -> None:
            raise RuntimeError("boom")

        flusher = BackgroundFlusher([failing, job], interval=3600)
        flusher.start()
        flusher.wake()
        assert woken.wait(5)
        flusher.stop()
        assert len(calls) >= 2  # the woken run and the final run; the failing job hurt nothing


class TestRetention:
    def test_purge_deletes_only_decisions_older_than_the_cutoff(self, synced_app: App) -> None:
        now = datetime.now(UTC)
        record_decisions(
            api_uow(synced_app),
            [_entry(now - timedelta(days=91), "old"), _entry(now - timedelta(days=89), "kept")],
        )
        assert purge_decisions(api_uow(synced_app), retention_cutoff(now, 90)) == 1
        left = decisions_since(api_uow(synced_app), now - timedelta(days=365))
        assert [e.message_id for e in left] == ["kept"]


@pytest.mark.usefixtures("synced_app")
class TestDecisionsCommand:
    def test_decisions_since_a_duration_lists_what_the_api_served(
        self,
        cli,
        client: TestClient,
        issue: Callable[..., str],
        manifest: Manifest,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("COLUMNS", "200")  # one table row per line
        headers = bearer(issue("route:read", name="gateway-b"))
        client.post("/v1/route", json=route_body(_xmo(manifest), message_id="m-9"), headers=headers)
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        data = json.loads(cli("decisions", "--since", "1h", "--json").output)
        assert [(d["caller"], d["message_id"], d["outcome"]) for d in data] == [
            ("gateway-b", "m-9", "deliver")
        ]
        table = cli("decisions", "--since", "15m").output
        assert "gateway-b" in table and "m-9" in table and "XDIS91" in table

    def test_decisions_since_a_date_time_and_the_limit(self, cli, synced_app: App) -> None:
        now = datetime.now(UTC)
        record_decisions(
            api_uow(synced_app),
            [_entry(now - timedelta(days=2), "older"), *(_entry(now, f"n{i}") for i in range(3))],
        )
        since = (now - timedelta(days=1)).replace(tzinfo=None).isoformat(timespec="seconds")
        data = json.loads(cli("decisions", "--since", since, "--limit", "2", "--json").output)
        assert [d["message_id"] for d in data] == ["n0", "n1"]

    def test_purge_uses_the_configured_retention(
        self, cli, synced_app: App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOREDI_DECISION_LOG__RETENTION_DAYS", "7")
        now = datetime.now(UTC)
        record_decisions(
            api_uow(synced_app),
            [_entry(now - timedelta(days=8), "old"), _entry(now - timedelta(days=6), "kept")],
        )
        assert "purged 1 decisions" in cli("decisions", "--purge").output

    @pytest.mark.parametrize("args", [[], ["--since", "1h", "--purge"], ["--since", "yesterday"]])
    def test_it_needs_exactly_one_of_since_or_purge_and_a_readable_since(
        self, cli, args: list[str]
    ) -> None:
        assert cli("decisions", *args, expect=2).exit_code == 2


class TestDecisionFacts:
    def test_each_logged_question_decided_again_from_the_log_gets_the_decision_it_got(
        self,
        client: TestClient,
        synced_app: App,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        xmo = _xmo(manifest)
        headers = bearer(issue("route:read"))
        pdf = {"mime_type": "application/pdf", "size": 250_000, "title": "Epikrise Jens Hansen"}
        questions = [
            route_body(xmo, message_id="plain"),
            route_body(xmo, message_id="long", text_length=40_000, topic="x" * 90),
            route_body(xmo, message_id="attached", attachments=[pdf, {**pdf, "content": "link"}]),
            route_body(xmo, message_id="later", at="2027-02-01", category_coded=False),
        ]
        answers = client.post("/v1/route/batch", json={"requests": questions}, headers=headers)
        bundle = bundle_json(xmo)
        message = client.post(
            "/v1/route/message",
            content=bundle,
            headers={**headers, "Content-Type": "application/fhir+json"},
        )
        assert answers.status_code == 200 and message.status_code == 200, message.text
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        logged = _logged(synced_app)
        served = [r["decision"] for r in answers.json()["results"]] + [message.json()]
        assert len(logged) == len(served) == 5
        resolver = synced_app.routing().resolver()
        for entry, answer in zip(logged, served, strict=True):
            assert entry.facts is not None
            assert "Jens Hansen" not in json.dumps(entry.facts)  # no content
            again = resolver.resolve(
                question_of(
                    entry.facts,
                    business_message=entry.business_message,
                    sender_syntax=entry.sender_syntax,
                    receiver_gln=entry.receiver_gln,
                    receiver_sor_id=entry.receiver_sor_id,
                ),
                synced_app.routing().today(),
            )
            assert (again.decision.value, again.reason and again.reason.value) == (
                answer["decision"],
                answer["reason"],
            )
            assert [w.code.value for w in again.warnings] == [w["code"] for w in answer["warnings"]]
            assert [(c.step, c.by) for c in again.conversion] == [
                (c["step"], c["by"]) for c in answer["conversion"]
            ]
        assert logged[-1].facts is not None and logged[-1].facts["ids"]  # the message's own


class TestSenderAndConversion:
    def test_a_question_naming_its_sender_is_logged_with_it_and_with_its_conversion_steps(
        self,
        client: TestClient,
        synced_app: App,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        xmo = _xmo(manifest)
        headers = bearer(issue("route:read"))
        sender = {"gln": "5790001382445", "sor_id": "1084101000016009"}
        single = client.post(
            "/v1/route",
            json={**route_body(xmo, message_id="one"), "sender": sender},
            headers=headers,
        )
        batch = client.post(
            "/v1/route/batch",
            json={
                "requests": [
                    {**route_body(xmo, message_id="gln-only"), "sender": {"gln": sender["gln"]}},
                    route_body(xmo, message_id="unknown-sender"),
                    route_body(xmo, message_id="rejected", at="2027-02-01"),
                ]
            },
            headers=headers,
        )
        assert single.status_code == batch.status_code == 200, batch.text
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        logged = {e.message_id: e for e in _logged(synced_app)}
        assert (logged["one"].sender_gln, logged["one"].sender_sor_id) == tuple(sender.values())
        assert (logged["gln-only"].sender_gln, logged["gln-only"].sender_sor_id) == (
            sender["gln"],
            None,
        )
        assert (logged["unknown-sender"].sender_gln, logged["unknown-sender"].sender_sor_id) == (
            None,
            None,
        )
        steps = ",".join(c["step"] for c in single.json()["conversion"])
        assert steps == "fhir->oioxml"  # the XMO receiver takes XDIS91 only
        assert logged["one"].conversion == logged["unknown-sender"].conversion == steps
        assert logged["rejected"].outcome == "reject" and logged["rejected"].conversion is None

    def test_a_message_is_logged_with_the_sender_it_names(
        self,
        client: TestClient,
        synced_app: App,
        issue: Callable[..., str],
        manifest: Manifest,
    ) -> None:
        answer = client.post(
            "/v1/route/message",
            content=bundle_json(_xmo(manifest)),
            headers={**bearer(issue("route:read")), "Content-Type": "application/fhir+json"},
        )
        assert answer.status_code == 200, answer.text
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        (entry,) = _logged(synced_app)
        assert (entry.sender_gln, entry.sender_sor_id) == SENDER

    @pytest.mark.parametrize(
        "sender",
        [{"gln": "579000138244"}, {"sor_id": "x"}, {"gln": "5790001382445", "name": "A"}, "x"],
        ids=["short-gln", "bad-sor-id", "unknown-field", "not-an-object"],
    )
    def test_a_malformed_sender_is_refused_like_any_malformed_field(
        self,
        client: TestClient,
        issue: Callable[..., str],
        manifest: Manifest,
        sender: object,
    ) -> None:
        body = {**route_body(_xmo(manifest)), "sender": sender}
        answer = client.post("/v1/route", json=body, headers=bearer(issue("route:read")))
        assert_problem(answer, 422)
