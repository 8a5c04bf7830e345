"""Faults at a webhook receiver: one that trickles its answer while a sync runs, one that
answers a gigabyte, and receivers on addresses the policy refuses.

A receiver is the subscriber's system, not ours: whatever it does, the sync stores its day on
time, the delivery ends by its deadline and is retried later, and nothing is sent where the
address policy says no. Each case records the delivery's state and error as stored.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime, timedelta

from soredi_sync.clients.webhook_address import AddressPolicy
from soredi_sync.clients.webhook_http import HttpcoreWebhookSender
from soredi_sync.daemon.runner import build_daemon
from soredi_sync.observability.metrics import Metrics
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.tokens import create_token
from soredi_sync.services.webhooks import (
    WebhookFilter,
    create_subscription,
    dispatch,
    find_subscription,
    recent_deliveries,
)
from tests.support.api import api_uow
from tests.support.faults.invariants import LastGood
from tests.support.faults.report import Case
from tests.support.receivers import HUGE, OK, TRICKLE, misbehaving

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
DEADLINE = 1.0
BACKOFF = 30.0


def _configure(last_good: LastGood, **values: object) -> None:
    hooks = last_good.app.settings.webhooks
    hooks.timeout = DEADLINE
    hooks.initial_backoff = BACKOFF
    hooks.allow_networks = list(LOOPBACK)
    for name, value in values.items():
        setattr(hooks, name, value)


def _subscribe(last_good: LastGood, name: str, url: str, policy: AddressPolicy | None = None):
    app = last_good.app
    with app.uow() as uow:
        return create_subscription(
            uow,
            name=name,
            url=url,
            webhook_filter=WebhookFilter.build(),
            actor="fault-suite",
            policy=policy or AddressPolicy.of(LOOPBACK),
        ).subscription


def _deliveries(last_good: LastGood, name: str) -> list:
    with last_good.app.uow() as uow:
        sub = find_subscription(uow, name)
        return list(reversed(recent_deliveries(uow, sub.id, limit=100)))


class TestReceiverFaults:
    def test_a_receiver_trickling_its_answer_during_a_sync_holds_up_neither_the_sync_nor_others(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "slow webhook receiver",
            f"the receiver answers one byte every 0.25 s (80 bytes, 20 s) while the daemon's "
            f"full sync of day 1 runs; delivery deadline {DEADLINE:g} s",
        )
        record = last_good.begin(case)
        app = last_good.app
        _configure(last_good)
        app.settings.sources.base_url = last_good.files.base_url
        with misbehaving(TRICKLE, interval=0.25, limit=80) as receiver:
            _subscribe(last_good, "slow", receiver.url)
            daemon = build_daemon(app, metrics=Metrics(process_collectors=False))
            try:
                daemon.jobs.refresh_lease()
                assert daemon.lease.is_leader
                daemon.scheduler.start()
                with last_good.timed():
                    daemon.jobs.full_sync()  # as the scheduler runs it
                answering = not receiver.answered or not receiver.answered[0].done.is_set()
                run = last_good.newest_run()
                assert run.status is RunStatus.SUCCEEDED, run.error
                assert answering, "the sync waited for the receiver"
                (answered,) = receiver.wait_answered()
                ends = time.monotonic() + 30
                while (first := _deliveries(last_good, "slow")[0]).status != "pending" or (
                    first.attempts == 0
                ):
                    assert time.monotonic() < ends, first
                    time.sleep(0.05)
                ready = last_good.api.get("/readyz")
            finally:
                daemon.jobs.request_stop()
                daemon.scheduler.shutdown(wait=True)
                daemon.lease.release()
            assert answered.cut_off and answered.sent < answered.planned
            assert first.last_error == f"no complete answer within the {DEADLINE:g} s deadline"
            assert first.last_attempt_at is not None and first.next_attempt_at is not None
            waited = (first.next_attempt_at - first.last_attempt_at).total_seconds()
            assert waited == BACKOFF
            assert ready.status_code == 200 and ready.json()["snapshot_id"] == run.snapshot_id

            receiver.mode = OK  # the receiver recovers; the retry is due after the backoff
            later = dispatch(
                app.uow_factory,
                app.settings.webhooks,
                app.webhook_sender(),
                now=datetime.now(UTC) + timedelta(seconds=BACKOFF + 1),
            )
            final = _deliveries(last_good, "slow")
        assert later.delivered.delivered == len(final) >= 1
        assert [d.status for d in final] == ["delivered"] * len(final)
        assert final[0].attempts == 2
        record.status = run.status.value
        record.reason = first.last_error or ""
        record.did = (
            f"the sync stored day 1 (snapshot {run.snapshot_id}) and returned while the "
            f"receiver was still answering; the POST, in the webhook job, was "
            f"cut off at the {DEADLINE:g} s deadline after {answered.sent} of {answered.planned} "
            f"answer bytes; the delivery stayed pending, retried {BACKOFF:g} s later and "
            f"delivered (attempt 2); /readyz answered 200 meanwhile"
        )
        record.seconds = round(last_good.elapsed, 2)  # the sync's time
        record.data_lost = "none"

    def test_a_receiver_answering_a_gigabyte_is_read_a_few_kilobytes(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "huge webhook answer",
            "the receiver answers 200 with a 1 GiB body (generated as it is sent)",
        )
        record = last_good.begin(case)
        _configure(last_good, timeout=10.0)
        sync = last_good.sync()
        assert sync.status is RunStatus.SUCCEEDED
        with misbehaving(HUGE, size=1024**3) as receiver:
            _subscribe(last_good, "huge", receiver.url)
            assert last_good.sync().status is RunStatus.UNCHANGED
            last_good.files.set_day(2)
            assert last_good.sync().status is RunStatus.SUCCEEDED
            with last_good.timed():
                app = last_good.app
                report = dispatch(app.uow_factory, app.settings.webhooks, app.webhook_sender())
            (answered,) = receiver.wait_answered()
        (delivery,) = _deliveries(last_good, "huge")
        assert report.delivered.delivered == 1 and delivery.status == "delivered"
        assert delivery.last_status_code == 200
        assert answered.cut_off and answered.sent < 32 * 1024**2
        record.status = delivery.status
        record.reason = f"HTTP {delivery.last_status_code}"
        record.did = (
            f"delivered; at most "
            f"{last_good.app.settings.webhooks.max_answer_bytes} bytes of the body read, then "
            f"the connection closed: the receiver got {answered.sent / 1024**2:.1f} MiB of its "
            f"1,024 MiB out"
        )
        record.seconds = round(last_good.elapsed, 2)
        record.data_lost = "none"

    def test_receivers_on_addresses_the_policy_refuses_get_no_request(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "webhook SSRF",
            "POST /v1/webhooks naming 169.254.169.254 and 127.0.0.1:5432; then a subscription "
            "whose name resolved to a public address at registration and to 127.0.0.1 at "
            "delivery (DNS rebinding)",
        )
        record = last_good.begin(case)
        app = last_good.app
        _configure(last_good, allow_networks=[])
        admin = create_token(api_uow(app), ["webhook:admin"], (), "fault-admin").token
        auth = {"Authorization": f"Bearer {admin}"}
        refused = [
            last_good.api.post("/v1/webhooks", json={"name": f"ssrf-{i}", "url": url}, headers=auth)
            for i, url in enumerate(
                ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/")
            )
        ]
        assert [r.status_code for r in refused] == [422, 422]
        details = [r.json()["detail"] for r in refused]
        assert all(d.startswith("refused by the address policy") for d in details)

        answers = iter([["93.184.216.34"], ["127.0.0.1"]])
        rebinding = AddressPolicy.of(resolve=lambda _host, _port: next(answers))
        with misbehaving(OK) as receiver:
            url = f"http://rebind.invalid:{receiver.port}/hook"
            _subscribe(last_good, "rebind", url, policy=rebinding)
            assert last_good.sync().status is RunStatus.SUCCEEDED
            sender = HttpcoreWebhookSender(
                rebinding, timeout=DEADLINE, max_answer_bytes=4096, user_agent="fault-suite"
            )
            report = dispatch(app.uow_factory, app.settings.webhooks, sender)
            received = len(receiver.answered)
        (delivery,) = _deliveries(last_good, "rebind")
        assert received == 0 and report.delivered.retrying == 1
        assert delivery.status == "pending" and delivery.last_status_code is None
        assert (delivery.last_error or "").startswith(
            "refused by the address policy: 'rebind.invalid' resolves to a loopback address"
        )
        listed = last_good.api.get("/v1/webhooks", headers=auth).json()["webhooks"]
        assert [w["name"] for w in listed] == ["rebind"]
        record.status = "refused"
        record.reason = f"{details[0]} | at delivery: {delivery.last_error}"
        record.did = (
            "both registrations answered 422 and stored nothing; the rebound name got no "
            "connection: the delivery stays pending with the refusal as its error"
        )
        record.data_lost = "none"
