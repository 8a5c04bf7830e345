"""Sending due deliveries through a fake sender: claims, signatures, retries and what is stored.

No HTTP and no sync: one subscription and deliveries stored by hand, :func:`deliver_due` with a
fixed clock, and a sender that records each POST and answers as scripted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from soredi_sync.bootstrap import App
from soredi_sync.ports.records import Delivery
from soredi_sync.ports.webhooks import SendResult, Target
from soredi_sync.services.webhooks import (
    CreatedSubscription,
    DeliverReport,
    canonical_json,
    deliver_due,
    recent_deliveries,
    verify,
)
from tests.support.webhooks import subscribe, t0, uow


@dataclass
class Sent:
    target: Target
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeSender:
    """Records every POST; answers with ``answers`` in order (an exception is raised), then 204."""

    answers: list[SendResult | Exception] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def send(self, target: Target, body: bytes, headers: Sequence[tuple[str, str]]) -> SendResult:
        self.sent.append(Sent(target, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else SendResult(204, "No Content")
        if isinstance(answer, Exception):
            raise answer
        return answer


def queue(app: App, created: CreatedSubscription, count: int = 1) -> list[dict[str, Any]]:
    """Store ``count`` pending deliveries of one change each, due now; their payloads."""
    sub = created.subscription
    payloads = []
    with uow(app) as work:
        for n in range(1, count + 1):
            payload: dict[str, Any] = {
                "subscription": sub.name,
                "sequence": n,
                "cursor": n - 1,
                "next_cursor": n,
                "snapshot_ids": [1],
                "changes": [{"cursor": n, "entity": "gln", "key": "5790000000005"}],
            }
            delivery_id = work.webhooks.add_delivery(
                subscription_id=sub.id,
                created_at=t0() - timedelta(minutes=1),
                first_change_id=n,
                last_change_id=n,
                change_count=1,
                payload=payload,
            )
            payloads.append({**payload, "delivery_id": delivery_id})
        work.commit()
    return payloads


def send(app: App, sender: FakeSender, at: datetime) -> DeliverReport:
    return deliver_due(app.uow_factory, app.settings.webhooks, sender, clock=lambda: at)


def stored(app: App, created: CreatedSubscription) -> list[Delivery]:
    with uow(app) as work:
        return list(reversed(recent_deliveries(work, created.subscription.id)))


class TestDeliverDue:
    def test_a_2xx_answer_delivers_the_signed_payload_to_the_url_with_its_credentials_apart(
        self, app: App
    ) -> None:
        created = subscribe(app, "hook", "http://ops:pw@127.0.0.1:9/hook")
        (payload,) = queue(app, created)
        sender = FakeSender()
        at = t0()

        report = send(app, sender, at)

        assert report == DeliverReport(delivered=1)
        (post,) = sender.sent
        assert post.target == Target("http://127.0.0.1:9/hook", "ops:pw")
        assert post.body == canonical_json(payload)
        assert post.headers["X-Soredi-Delivery"] == str(payload["delivery_id"])
        assert post.headers["X-Soredi-Subscription"] == "hook"
        assert post.headers["X-Soredi-Timestamp"] == str(int(at.timestamp()))
        assert verify(
            created.secret,
            post.headers["X-Soredi-Timestamp"],
            post.body,
            post.headers["X-Soredi-Signature"],
            now=at.timestamp(),
        )
        (delivery,) = stored(app, created)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "delivered",
            1,
            204,
        )
        assert delivery.delivered_at == at and delivery.next_attempt_at is None

    def test_an_error_answer_is_retried_after_a_doubling_backoff_then_failed_for_good(
        self, app: App
    ) -> None:
        created = subscribe(app, "down", "http://127.0.0.1:9/hook")
        queue(app, created)
        sender = FakeSender([SendResult(503, "Service Unavailable")] * 3)
        start = t0()

        first = send(app, sender, start)
        early = send(app, sender, start + timedelta(seconds=9))  # the backoff is 10 s
        second = send(app, sender, start + timedelta(seconds=10))
        (waiting,) = stored(app, created)
        third = send(app, sender, start + timedelta(seconds=30))  # then 20 s

        assert (first, early, second) == (
            DeliverReport(retrying=1),
            DeliverReport(),
            DeliverReport(retrying=1),
        )
        assert waiting.next_attempt_at == start + timedelta(seconds=30)
        assert third == DeliverReport(failed=1)  # max_attempts is 3
        assert len(sender.sent) == 3 and sender.sent[0].body == sender.sent[2].body
        (delivery,) = stored(app, created)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "failed",
            3,
            503,
        )
        assert delivery.last_error == "HTTP 503 Service Unavailable"
        assert delivery.next_attempt_at is None and delivery.delivered_at is None

    def test_a_failure_without_an_answer_is_stored_as_its_class_never_its_detail(
        self, app: App
    ) -> None:
        created = subscribe(app, "closed", "http://127.0.0.1:9/hook")
        queue(app, created)
        failure = SendResult(
            None,
            error="could not connect (refused, unreachable, timed out or TLS failed)",
            detail="ConnectError: [Errno 111] Connection refused",
        )

        report = send(app, FakeSender([failure]), t0())

        (delivery,) = stored(app, created)
        assert report == DeliverReport(retrying=1)
        assert (delivery.status, delivery.last_status_code) == ("pending", None)
        assert delivery.last_error == failure.error

    def test_a_later_delivery_waits_while_the_first_of_its_subscription_fails(
        self, app: App
    ) -> None:
        created = subscribe(app, "ordered", "http://127.0.0.1:9/hook")
        first, _second = queue(app, created, count=2)
        sender = FakeSender([SendResult(500, "Internal Server Error")])
        start = t0()

        send(app, sender, start)
        assert [p.headers["X-Soredi-Delivery"] for p in sender.sent] == [str(first["delivery_id"])]
        assert [d.status for d in stored(app, created)] == ["pending", "pending"]

        report = send(app, sender, start + timedelta(seconds=10))

        assert report == DeliverReport(delivered=2)
        assert [json.loads(p.body)["sequence"] for p in sender.sent] == [1, 1, 2]

    def test_a_sender_that_raises_leaves_the_delivery_pending_for_its_retry(self, app: App) -> None:
        created = subscribe(app, "buggy", "http://127.0.0.1:9/hook")
        queue(app, created)
        start = t0()

        report = send(app, FakeSender([RuntimeError("a bug")]), start)

        (delivery,) = stored(app, created)
        assert report == DeliverReport(retrying=1)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "internal error while sending"
        assert delivery.next_attempt_at == start + timedelta(seconds=10)
