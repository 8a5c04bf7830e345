"""Enqueue and delivery end to end: a sandbox sync, a loopback receiver, the real database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from soredi_sync.bootstrap import App
from soredi_sync.config import WebhookConfig
from soredi_sync.db.webhook_repository import SqlAlchemyWebhookRepository
from soredi_sync.domain.model import GlnMode
from soredi_sync.ports.records import ChangeRecord
from soredi_sync.services.webhooks import (
    DispatchReport,
    enqueue,
    find_subscription,
    recent_deliveries,
    sync_configured,
    verify,
)
from tests.support.app import sync_day
from tests.support.receivers import HANG, Receiver
from tests.support.sandbox import SWITCHED
from tests.support.webhooks import (
    all_changes,
    deliveries_of,
    delivery_rows,
    dispatch,
    make_app,
    subscribe,
    t0,
    uow,
    webhook_settings,
)


def changes_of_snapshot(app: App, snapshot_id: int) -> list[ChangeRecord]:
    return [c for c in all_changes(app) if c.snapshot_id == snapshot_id]


def owners_of(app: App) -> Callable[[ChangeRecord], set[str]]:
    """Who owns a change on the current snapshot, worked out independently of the service."""
    with app.uow() as work:
        snapshot = work.registry.current_snapshot()
        assert snapshot is not None
        registry = work.registry.load_registry(snapshot.id)
    units = registry.units
    carriers: dict[str, list[str]] = {}
    for unit in units.values():
        if unit.gln_mode is GlnMode.OWN and unit.gln:
            carriers.setdefault(unit.gln, []).append(unit.sor_id)

    def owners(change: ChangeRecord) -> set[str]:
        if change.entity == "unit":
            return {units[change.key].owner_sor_id}
        assert change.gln is not None
        holders = carriers.get(change.gln) or [registry.glns[change.gln].owner_sor_id]
        return {units[s].owner_sor_id for s in holders if s in units}

    return owners


class TestDelivery:
    def test_a_signed_delivery_of_the_syncs_changes_arrives_and_verifies(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        created = subscribe(day0, "all", receiver.url)
        sync_day(day0, sandbox_dir, 1)

        report = dispatch(day0)

        assert report.enqueued.deliveries == 1 and report.delivered.delivered == 1
        (request,) = receiver.requests
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert verify(
            created.secret,
            headers["x-soredi-timestamp"],
            request.body,
            headers["x-soredi-signature"],
        )
        assert headers["x-soredi-subscription"] == "all"
        assert headers["content-type"] == "application/json"
        payload = request.payload
        (delivery,) = deliveries_of(day0, "all")
        assert headers["x-soredi-delivery"] == str(delivery.id) == str(payload["delivery_id"])
        expected = changes_of_snapshot(day0, 2)
        assert request.cursors == [c.cursor for c in expected]
        assert payload["changes"][0] == {
            "cursor": expected[0].cursor,
            "snapshot_id": 2,
            "entity": expected[0].entity,
            "key": expected[0].key,
            "gln": expected[0].gln,
            "kind": expected[0].kind,
            "details": expected[0].details,
        }
        assert payload["subscription"] == "all" and payload["sequence"] == 1
        assert payload["snapshot_ids"] == [2]
        assert (payload["cursor"], payload["next_cursor"]) == (0, expected[-1].cursor)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "delivered",
            1,
            204,
        )
        assert (delivery.first_change_id, delivery.last_change_id, delivery.change_count) == (
            expected[0].cursor,
            expected[-1].cursor,
            len(expected),
        )

    def test_credentials_in_the_url_go_as_basic_auth_and_not_in_the_url(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "basic", receiver.url.replace("http://", "http://hook:pa%20ss@"))
        sync_day(day0, sandbox_dir, 1)
        dispatch(day0)
        (request,) = receiver.requests
        assert request.headers["Authorization"] == "Basic aG9vazpwYSBzcw=="  # hook:pa ss
        with uow(day0) as work:
            sub = find_subscription(work, "basic")
        assert sub.url == receiver.url and sub.has_credentials

    def test_a_configured_receiver_on_a_refused_address_is_skipped_and_gets_nothing(
        self,
        database_url: str,
        sandbox_dir: Path,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        config = WebhookConfig(
            name="internal",
            url=receiver.url.replace("http://", "http://ops:hunter2@"),
            secret=SecretStr("whsec_i"),
        )
        with make_app(database_url, webhook_settings(config, allow_networks=[])) as app:
            sync_day(app, sandbox_dir, 0)
            report = dispatch(app)
            sync_day(app, sandbox_dir, 1)
            dispatch(app)
        assert report.configured.skipped == ("internal",) and receiver.requests == []
        assert "refused by the address policy: '127.0.0.1' is a loopback address" in caplog.text
        assert "hunter2" not in caplog.text

    def test_a_signature_does_not_verify_with_another_subscriptions_secret(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "first", receiver.url)
        second = subscribe(day0, "second", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        dispatch(day0)
        by_name = {r.headers["X-Soredi-Subscription"]: r for r in receiver.requests}
        first = by_name["first"]
        assert not verify(
            second.secret,
            first.headers["X-Soredi-Timestamp"],
            first.body,
            first.headers["X-Soredi-Signature"],
        )

    def test_more_changes_than_a_batch_go_in_several_ordered_deliveries_with_no_gap(
        self, database_url: str, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        with make_app(database_url, webhook_settings(batch_size=10)) as app:
            sync_day(app, sandbox_dir, 0)
            subscribe(app, "small-batches", receiver.url)
            sync_day(app, sandbox_dir, 1)
            dispatch(app)
            expected = [c.cursor for c in changes_of_snapshot(app, 2)]
        payloads = [r.payload for r in receiver.requests]
        assert len(payloads) == -(-len(expected) // 10)
        assert [p["sequence"] for p in payloads] == list(range(1, len(payloads) + 1))
        assert [c for r in receiver.requests for c in r.cursors] == expected
        assert all(len(p["changes"]) <= 10 for p in payloads)
        assert [p["cursor"] for p in payloads[1:]] == [p["next_cursor"] for p in payloads[:-1]]

    def test_a_configured_subscription_is_signed_with_the_key_from_the_environment(
        self,
        database_url: str,
        sandbox_dir: Path,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("TEST_HOOK_SECRET", "whsec_from-the-environment")
        config = WebhookConfig(name="ops", url=receiver.url, secret_env="TEST_HOOK_SECRET")
        with make_app(database_url, webhook_settings(config)) as app:
            sync_day(app, sandbox_dir, 0)
            dispatch(app)  # registers the subscription at the end of the feed
            sync_day(app, sandbox_dir, 1)
            dispatch(app)
        (request,) = receiver.requests
        assert verify(
            "whsec_from-the-environment",
            request.headers["X-Soredi-Timestamp"],
            request.body,
            request.headers["X-Soredi-Signature"],
        )


class TestFilters:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"glns": [SWITCHED[0]]}, lambda c, owners, owner: c.gln == SWITCHED[0]),
            (
                {"message_types": ["FDIS91"]},
                lambda c, owners, owner: c.entity == "capability" and c.key.endswith(":FDIS91"),
            ),
            ({"kinds": ["changed"]}, lambda c, owners, owner: c.kind == "changed"),
            ({"entities": ["gln"]}, lambda c, owners, owner: c.entity == "gln"),
            ({"owners": ["OWNER"]}, lambda c, owners, owner: owner in owners(c)),
            (
                {"owners": ["OWNER"], "message_types": ["fdis91", "FCTL"], "kinds": ["added"]},
                lambda c, owners, owner: (
                    owner in owners(c)
                    and c.key.rsplit(":", 1)[-1] in ("FDIS91", "FCTL")
                    and c.entity == "capability"
                    and c.kind == "added"
                ),
            ),
            (
                {"glns": [SWITCHED[0], SWITCHED[1]], "kinds": ["added", "removed"]},
                lambda c, owners, owner: c.gln in SWITCHED[:2] and c.kind in ("added", "removed"),
            ),
        ],
        ids=["gln", "message-type", "kind", "entity", "owner", "owner-type-kind", "or-within"],
    )
    def test_a_filter_selects_exactly_the_matching_changes(
        self,
        day0: App,
        sandbox_dir: Path,
        receiver: Receiver,
        filters: dict[str, list[str]],
        expected: Callable[..., bool],
    ) -> None:
        owner = sorted(owners_of(day0)(_change_of(SWITCHED[0])))[0]
        filters = {k: [owner if v == "OWNER" else v for v in vs] for k, vs in filters.items()}
        subscribe(day0, "filtered", receiver.url, **filters)
        sync_day(day0, sandbox_dir, 1)

        dispatch(day0)

        owners = owners_of(day0)
        want = [c.cursor for c in changes_of_snapshot(day0, 2) if expected(c, owners, owner)]
        got = [c for r in receiver.requests for c in r.cursors]
        assert want, "the filter should select something on day 1"
        assert len(want) < len(changes_of_snapshot(day0, 2)), "and not everything"
        assert got == want

    def test_a_subscription_whose_filter_matches_nothing_gets_no_delivery_but_moves_on(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "nothing", receiver.url, glns=["5790000000005"])
        sync_day(day0, sandbox_dir, 1)
        report = dispatch(day0)
        assert receiver.requests == [] and report.enqueued.deliveries == 0
        with uow(day0) as work:
            assert find_subscription(work, "nothing").cursor == all_changes(day0)[-1].cursor


def _change_of(gln: str) -> ChangeRecord:
    """A stand-in capability change of ``gln``, to ask who owns the GLN."""
    return ChangeRecord(0, 0, "capability", f"{gln}:FDIS91", gln, "added", {})


class TestRetries:
    def test_a_failed_post_is_retried_after_the_backoff_then_delivered(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "flaky", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        receiver.answers.extend([500])
        start = t0()

        first = dispatch(day0, now=start)
        (delivery,) = deliveries_of(day0, "flaky")
        assert first.delivered.retrying == 1
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending",
            1,
            500,
        )
        assert delivery.last_error == "HTTP 500 Internal Server Error"
        assert delivery.next_attempt_at == start + timedelta(seconds=10)

        dispatch(day0, now=start + timedelta(seconds=9))  # not due yet
        assert len(receiver.requests) == 1

        dispatch(day0, now=start + timedelta(seconds=10))
        (delivery,) = deliveries_of(day0, "flaky")
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "delivered",
            2,
            204,
        )
        assert delivery.last_error is None and delivery.next_attempt_at is None
        first_try, second_try = receiver.requests
        assert first_try.body == second_try.body
        assert first_try.headers["X-Soredi-Delivery"] == second_try.headers["X-Soredi-Delivery"]

    def test_after_max_attempts_a_delivery_is_failed_and_says_why(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "down", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        receiver.default = 503
        start = t0()

        reports: list[DispatchReport] = []
        for seconds in (0, 10, 30, 70, 200):  # backoff 10 s, then 20 s; then it is failed
            reports.append(dispatch(day0, now=start + timedelta(seconds=seconds)))

        assert len(receiver.requests) == 3
        assert [r.delivered.retrying for r in reports[:3]] == [1, 1, 0]
        assert reports[2].delivered.failed == 1
        (delivery,) = deliveries_of(day0, "down")
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "failed",
            3,
            503,
        )
        assert delivery.next_attempt_at is None and delivery.delivered_at is None
        assert delivery.last_attempt_at == start + timedelta(seconds=30)

    def test_a_receiver_that_does_not_answer_in_time_counts_as_a_failed_attempt(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "slow", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        receiver.answers.append(HANG)
        dispatch(day0, now=t0())
        (delivery,) = deliveries_of(day0, "slow")
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending",
            1,
            None,
        )
        assert delivery.last_error == "no complete answer within the 0.5 s deadline"

    def test_a_refused_connection_counts_as_a_failed_attempt_without_saying_how_it_failed(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        url = receiver.url
        receiver.stop()  # nobody listens on the port any more
        subscribe(day0, "gone", url)
        sync_day(day0, sandbox_dir, 1)
        report = dispatch(day0, now=t0())
        (delivery,) = deliveries_of(day0, "gone")
        assert report.delivered.retrying == 1
        # The same words for a closed, a filtered and a TLS-only port: no port-state oracle.
        assert delivery.status == "pending" and delivery.last_error == (
            "could not connect (refused, unreachable, timed out or TLS failed)"
        )

    def test_a_later_delivery_waits_while_an_earlier_one_of_its_subscription_is_pending(
        self, database_url: str, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        with make_app(database_url, webhook_settings(batch_size=50)) as app:
            sync_day(app, sandbox_dir, 0)
            subscribe(app, "ordered", receiver.url)
            sync_day(app, sandbox_dir, 1)
            receiver.answers.append(500)
            start = t0()
            dispatch(app, now=start)
            assert len(receiver.requests) == 1  # the second waits behind the first
            first, second = deliveries_of(app, "ordered")
            assert (first.status, second.status) == ("pending", "pending")
            assert second.attempts == 0

            dispatch(app, now=start + timedelta(seconds=10))

            sequences = [r.payload["sequence"] for r in receiver.requests]
            assert sequences == [1, 1, 2]
            assert [d.status for d in deliveries_of(app, "ordered")] == ["delivered"] * 2

    def test_one_failing_receiver_does_not_hold_back_another_subscription(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "broken", "http://127.0.0.1:9/broken")  # nobody listens there
        subscribe(day0, "healthy", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        dispatch(day0, now=t0())
        assert [d.status for d in deliveries_of(day0, "broken")] == ["pending"]
        assert [d.status for d in deliveries_of(day0, "healthy")] == ["delivered"]


class TestCrashes:
    def test_a_crash_between_enqueue_and_delivery_loses_nothing(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "crash", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        with uow(day0) as work:
            enqueue(work, day0.settings.webhooks)
        # ... and the process dies here, before deliver_due. The next dispatch sends it once.
        report = dispatch(day0)
        assert report.enqueued.deliveries == 0 and report.delivered.delivered == 1
        (request,) = receiver.requests
        assert request.cursors == [c.cursor for c in changes_of_snapshot(day0, 2)]

    def test_a_crash_inside_enqueue_leaves_neither_a_delivery_nor_a_moved_cursor(
        self,
        day0: App,
        sandbox_dir: Path,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        subscribe(day0, "atomic", receiver.url)
        sync_day(day0, sandbox_dir, 1)

        def die(*_args: object) -> None:
            raise RuntimeError("killed")

        with monkeypatch.context() as patch:
            patch.setattr(SqlAlchemyWebhookRepository, "advance", die)
            with pytest.raises(RuntimeError), uow(day0) as work:
                enqueue(work, day0.settings.webhooks)
        assert delivery_rows(day0) == 0

        dispatch(day0)
        dispatch(day0)
        (request,) = receiver.requests
        assert request.cursors == [c.cursor for c in changes_of_snapshot(day0, 2)]

    def test_a_delivery_claimed_by_a_dispatcher_that_died_is_sent_again_later(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "claimed", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        start = t0()
        with uow(day0) as work:
            enqueue(work, day0.settings.webhooks, now=start)
        with uow(day0) as work:
            (claimed,) = work.webhooks.claim_due(start, start + timedelta(seconds=90))
            work.commit()
        # ... the dispatcher dies mid-POST. Until its claim runs out nobody sends it again.
        dispatch(day0, now=start + timedelta(seconds=60))
        assert receiver.requests == []
        dispatch(day0, now=start + timedelta(seconds=90))
        (request,) = receiver.requests
        assert request.headers["X-Soredi-Delivery"] == str(claimed.id)

    def test_enqueueing_twice_makes_no_second_batch(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        subscribe(day0, "once", receiver.url)
        sync_day(day0, sandbox_dir, 1)
        for _ in range(2):
            with uow(day0) as work:
                enqueue(work, day0.settings.webhooks)
        assert delivery_rows(day0) == 1


class TestNewSubscriptions:
    def test_a_new_subscription_gets_only_changes_made_after_it(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        sync_day(day0, sandbox_dir, 1)
        subscribe(day0, "late", receiver.url)
        assert dispatch(day0).enqueued.deliveries == 0

        sync_day(day0, sandbox_dir, 2)
        dispatch(day0)

        got = [c for r in receiver.requests for c in r.cursors]
        assert got == [c.cursor for c in changes_of_snapshot(day0, 3)]


class TestConfiguredSubscriptions:
    def test_configured_subscriptions_are_added_updated_deactivated_and_restarted(
        self, day0: App, sandbox_dir: Path, receiver: Receiver
    ) -> None:
        first = WebhookConfig(name="a", url=receiver.url, secret=SecretStr("whsec_a"))
        second = WebhookConfig(name="b", url=receiver.url, secret=SecretStr("whsec_b"))
        with uow(day0) as work:
            report = sync_configured(work, webhook_settings(first, second))
        assert report.added == ("a", "b")
        with day0.session_factory() as session:
            from soredi_sync.db.models import WebhookSubscription

            rows = session.scalars(select(WebhookSubscription)).all()
            assert {(r.name, r.origin, r.secret, r.active) for r in rows} == {
                ("a", "config", None, True),
                ("b", "config", None, True),
            }

        sync_day(day0, sandbox_dir, 1)
        with uow(day0) as work:
            enqueue(work, day0.settings.webhooks)  # b gets a pending delivery
        narrowed = first.model_copy(update={"kinds": ["added"]})
        with uow(day0) as work:
            report = sync_configured(work, webhook_settings(narrowed))
        assert (report.updated, report.deactivated) == (("a",), ("b",))
        with uow(day0) as work:
            a, b = find_subscription(work, "a"), find_subscription(work, "b")
            b_deliveries = recent_deliveries(work, b.id)
        assert a.active and a.filters == {"kinds": ("added",)}
        assert a.cursor == all_changes(day0)[-1].cursor  # enqueued above: the cursor stays
        assert not b.active
        assert [d.status for d in b_deliveries] == ["cancelled"]

        sync_day(day0, sandbox_dir, 2)
        with uow(day0) as work:
            report = sync_configured(work, webhook_settings(narrowed, second))
            restarted = find_subscription(work, "b")
        assert report.reactivated == ("b",)
        assert restarted.active and restarted.cursor == all_changes(day0)[-1].cursor

        with uow(day0) as work:
            again = sync_configured(work, webhook_settings(narrowed, second))
        assert again == type(again)()  # nothing to do the second time

    def test_a_configured_name_taken_by_an_api_subscription_is_skipped(
        self, day0: App, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        subscribe(day0, "taken", receiver.url)
        config = WebhookConfig(name="taken", url=receiver.url, secret=SecretStr("whsec_x"))
        with uow(day0) as work:
            report = sync_configured(work, webhook_settings(config))
            sub = find_subscription(work, "taken")
        assert report.skipped == ("taken",) and sub.origin == "api"
        assert "an API subscription has that name" in caplog.text


class TestLogs:
    def test_no_log_record_carries_a_secret_or_a_signature(
        self,
        database_url: str,
        sandbox_dir: Path,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        configured = WebhookConfig(
            name="configured", url=receiver.url, secret=SecretStr("whsec_configured-secret")
        )
        with (
            caplog.at_level(logging.DEBUG),
            make_app(database_url, webhook_settings(configured)) as app,
        ):
            sync_day(app, sandbox_dir, 0)
            dispatch(app)
            created = subscribe(app, "api", receiver.url)
            sync_day(app, sandbox_dir, 1)
            receiver.answers.extend([500, HANG])
            start = t0()
            dispatch(app, now=start)
            dispatch(app, now=start + timedelta(seconds=10))
        assert len(receiver.requests) >= 2
        assert "Delivered webhook delivery" in caplog.text
        assert "failed (attempt 1 of 3)" in caplog.text
        for secret in (created.secret, "whsec_configured-secret"):
            assert secret[6:22] not in caplog.text
        for request in receiver.requests:
            signature = request.headers["X-Soredi-Signature"].removeprefix("sha256=")
            assert len(signature) == 64 and signature[:16] not in caplog.text
