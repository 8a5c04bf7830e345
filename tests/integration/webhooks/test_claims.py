"""Deliveries are claimed before they are sent, stuck ones are reported, and the daemon sends
them in a job of their own (both engines)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from soredi_sync.bootstrap import App
from soredi_sync.daemon.runner import build_daemon
from soredi_sync.observability.metrics import Metrics
from soredi_sync.ports.webhooks import ABANDONED
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.health import webhook_health
from soredi_sync.services.webhooks import DeliverReport, deactivate_subscription, enqueue
from soredi_sync.services.webhooks import delivery as delivery_module
from tests.support.api import make_client
from tests.support.app import sync_day
from tests.support.receivers import OK, TRICKLE, MisbehavingReceiver, misbehaving
from tests.support.webhooks import (
    deliver,
    deliveries_of,
    delivery_rows,
    dispatch,
    make_app,
    subscribe,
    t0,
    uow,
    webhook_settings,
)


class TestClaims:
    def test_two_dispatchers_racing_send_each_delivery_exactly_once(
        self, database_url: str, sandbox_dir: Path
    ) -> None:
        settings = webhook_settings(batch_size=4, max_concurrency=3)
        with (
            misbehaving(OK, delay=0.02) as receiver,
            make_app(database_url, settings) as first,
            make_app(database_url, settings) as second,  # another replica: its own engine
        ):
            sync_day(first, sandbox_dir, 0)
            for name in ("a", "b", "c", "d", "e"):
                subscribe(first, name, receiver.url)
            sync_day(first, sandbox_dir, 1)
            with uow(first) as work:
                enqueue(work, first.settings.webhooks)
            total = delivery_rows(first)
            start = threading.Barrier(2)
            reports: list[DeliverReport] = []

            def run(app: App) -> None:
                start.wait()
                reports.append(deliver(app))

            racers = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(120)
            sent = [a.headers["X-Soredi-Delivery"] for a in receiver.answered]
            states = {d.status for n in "abcde" for d in deliveries_of(first, n)}
        assert total > 5  # several deliveries per subscription, so the race has room
        assert len(reports) == 2
        assert sorted(sent) == sorted(set(sent)) and len(sent) == total
        assert sum(r.delivered for r in reports) == total
        assert states == {"delivered"}

    def test_a_delivery_in_flight_is_not_sent_again_by_another_dispatcher(
        self, database_url: str, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A short claim margin, so that a POST outliving its claim would show within seconds.
        monkeypatch.setattr(delivery_module, "CLAIM_MARGIN_SECONDS", 0.5)
        settings = webhook_settings(timeout=1.0)
        with (
            misbehaving(TRICKLE, interval=0.1, limit=40) as receiver,  # 4 s to answer
            make_app(database_url, settings) as app,
            make_app(database_url, settings) as other,
        ):
            sync_day(app, sandbox_dir, 0)
            subscribe(app, "slow", receiver.url)
            sync_day(app, sandbox_dir, 1)
            sending = threading.Thread(target=dispatch, args=(app,))
            sending.start()
            while not receiver.answered:
                time.sleep(0.02)
            while sending.is_alive():  # the retry job of another replica, again and again
                deliver(other)
                time.sleep(0.1)
            sending.join()
            (answered,) = receiver.wait_answered()
            (delivery,) = deliveries_of(app, "slow")
        assert answered.cut_off
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "no complete answer within the 1 s deadline"

    def test_a_claim_that_ran_out_on_the_last_allowed_attempt_fails_the_delivery(
        self, database_url: str, sandbox_dir: Path
    ) -> None:
        with (
            misbehaving(OK) as receiver,
            make_app(database_url, webhook_settings(max_attempts=1)) as app,
        ):
            sync_day(app, sandbox_dir, 0)
            subscribe(app, "once", receiver.url)
            sync_day(app, sandbox_dir, 1)
            start = t0()
            with uow(app) as work:
                enqueue(work, app.settings.webhooks, now=start)
            with uow(app) as work:
                (claimed,) = work.webhooks.claim_due(start, start + timedelta(seconds=90), "dead")
                work.commit()
            # ... the dispatcher dies mid-POST of the only attempt allowed.
            report = dispatch(app, now=start + timedelta(seconds=90))
            (delivery,) = deliveries_of(app, "once")
        assert receiver.answered == [] and report.delivered == DeliverReport()
        assert (delivery.status, delivery.attempts, delivery.last_error) == (
            "failed",
            1,
            ABANDONED,
        )

    def test_a_dispatcher_whose_claim_was_taken_over_does_not_record_its_outcome(
        self, day0: App, sandbox_dir: Path
    ) -> None:
        subscribe(day0, "taken", "http://127.0.0.1:9/hook")
        sync_day(day0, sandbox_dir, 1)
        start = t0()
        with uow(day0) as work:
            enqueue(work, day0.settings.webhooks, now=start)
        with uow(day0) as work:
            (first,) = work.webhooks.claim_due(start, start + timedelta(seconds=1), "first")
            work.commit()
        later = start + timedelta(seconds=2)
        with uow(day0) as work:
            (second,) = work.webhooks.claim_due(later, later + timedelta(seconds=60), "second")
            work.commit()
        with uow(day0) as work:
            assert not work.webhooks.record_delivered(first.id, later, 204, "first")
            assert work.webhooks.record_delivered(second.id, later, 204, "second")
            work.commit()
        (delivery,) = deliveries_of(day0, "taken")
        assert (first.id, first.attempts, second.attempts) == (second.id, 1, 2)
        assert (delivery.status, delivery.attempts) == ("delivered", 2)

    def test_removing_a_subscription_cancels_its_delivery_being_sent(
        self, day0: App, sandbox_dir: Path
    ) -> None:
        sub = subscribe(day0, "removed", "http://127.0.0.1:9/hook").subscription
        sync_day(day0, sandbox_dir, 1)
        start = t0()
        with uow(day0) as work:
            enqueue(work, day0.settings.webhooks, now=start)
        with uow(day0) as work:
            (claimed,) = work.webhooks.claim_due(start, start + timedelta(seconds=60), "me")
            work.commit()
        with uow(day0) as work:
            deactivate_subscription(work, sub.id, actor="test")
        with uow(day0) as work:
            assert not work.webhooks.record_delivered(claimed.id, start, 204, "me")
        (delivery,) = deliveries_of(day0, "removed")
        assert delivery.status == "cancelled"


def _samples(metrics: Metrics) -> dict[str, float]:
    text = metrics.exposition()[0].decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


class TestStuck:
    def test_only_a_first_delivery_due_too_long_or_with_its_claim_run_out_is_stuck(
        self, database_url: str, sandbox_dir: Path
    ) -> None:
        settings = webhook_settings(batch_size=10, stuck_after_seconds=60)
        with make_app(database_url, settings) as app:
            sync_day(app, sandbox_dir, 0)
            subscribe(app, "a", "http://127.0.0.1:9/a")
            subscribe(app, "b", "http://127.0.0.1:9/b")
            sync_day(app, sandbox_dir, 1)
            start = t0()
            with uow(app) as work:
                enqueue(work, app.settings.webhooks, now=start)

            def stuck(seconds: float) -> tuple[int, object]:
                with app.uow() as work:
                    health = webhook_health(work, settings, start + timedelta(seconds=seconds))
                return health.stuck, health.oldest_stuck_since

            assert len(deliveries_of(app, "a")) > 1  # later ones wait behind the first
            assert stuck(59) == (0, None)
            assert stuck(61) == (2, start)  # one per subscription: the first of each
            claimed_at = start + timedelta(seconds=61)
            with uow(app) as work:
                (claim,) = work.webhooks.claim_due(
                    claimed_at, claimed_at + timedelta(seconds=30), "me", limit=1
                )
                work.commit()
            assert stuck(90) == (1, start)  # a is being sent; b is still stuck
            assert stuck(92) == (2, start)  # a's claim ran out at 91 s
            with uow(app) as work:
                work.webhooks.record_failed_attempt(
                    claim.id,
                    claimed_at,
                    status_code=500,
                    error="HTTP 500",
                    retry_at=start + timedelta(seconds=3600),
                    holder="me",
                )
                work.commit()
            assert stuck(600) == (1, start)  # a waits for its retry: not stuck

    def test_stuck_deliveries_show_in_readyz_without_failing_it_and_in_the_metric(
        self, database_url: str, sandbox_dir: Path
    ) -> None:
        settings = webhook_settings(stuck_after_seconds=60)
        with make_app(database_url, settings) as app:
            sync_day(app, sandbox_dir, 0)
            subscribe(app, "a", "http://127.0.0.1:9/a")
            sync_day(app, sandbox_dir, 1)
            with uow(app) as work:
                enqueue(work, app.settings.webhooks, now=t0() - timedelta(hours=2))
            metrics = Metrics(process_collectors=False)
            daemon = build_daemon(app, metrics=metrics)
            with make_client(app) as client:
                ready = client.get("/readyz")
            samples = _samples(metrics)
            daemon.lease.release()
        assert ready.status_code == 200, ready.text
        body = ready.json()["webhooks"]
        assert body["stuck_deliveries"] == 1 and body["stuck_after_seconds"] == 60
        assert body["oldest_stuck_since"] is not None
        assert samples["soredi_webhook_deliveries_stuck"] == 1


class TestInTheDaemon:
    def test_a_sync_is_not_held_by_a_receiver_that_trickles_its_answer(
        self, database_url: str, files: SandboxServer
    ) -> None:
        receiver = MisbehavingReceiver(TRICKLE, interval=0.1, limit=50).start()  # 5 s
        app = make_app(database_url, webhook_settings(timeout=1.0))
        app.settings.sources.base_url = files.base_url
        daemon = build_daemon(app, metrics=Metrics(process_collectors=False))
        try:
            daemon.jobs.refresh_lease()
            assert daemon.lease.is_leader
            daemon.scheduler.start()
            daemon.jobs.full_sync()
            subscribe(app, "slow", receiver.url)
            files.set_day(1)

            daemon.jobs.full_sync()  # stores day 1, queues its changes, wakes the webhook job

            still_answering = not receiver.answered or not receiver.answered[0].done.is_set()
            with app.uow() as work:
                snapshot = work.registry.current_snapshot()
            (answered,) = receiver.wait_answered()
            deadline = time.monotonic() + 30
            while (d := deliveries_of(app, "slow"))[0].attempts == 0 or d[0].status != "pending":
                assert time.monotonic() < deadline, d
                time.sleep(0.05)
        finally:
            daemon.jobs.request_stop()
            daemon.scheduler.shutdown(wait=True)
            daemon.lease.release()
            receiver.stop()
            app.close()
        assert snapshot is not None and snapshot.id == 2
        assert still_answering  # the sync returned while the receiver was still answering
        assert answered.cut_off
        (delivery,) = d
        assert delivery.last_error == "no complete answer within the 1 s deadline"
        assert ("webhook enqueue", "done") in daemon.jobs.log.events
