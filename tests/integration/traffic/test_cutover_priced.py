"""The cut-over priced in messages: the logged traffic decided again for a date, checked
against deciding the very requests that were posted again directly."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.api.routers.routing_schemas import RouteIn
from soredi_sync.bootstrap import App
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.domain.routing import Decision, Resolver, RoutingIndex, SnapshotRef
from soredi_sync.services.cutover_traffic import price_cutover
from soredi_sync.services.decision_log import record_decisions
from tests.integration.traffic.conftest import Posted
from tests.support.api import bearer
from tests.support.cli_runner import Cli
from tests.support.decisions import logged

AFTER_THE_CONVERSIONS = date(2027, 2, 1)  # config/routing.toml: they end 2026-12-31


def _directly(app: App, posted: Posted, on: date, owners: frozenset[str] = frozenset()) -> Any:
    """The posted requests that were delivered, decided again for ``on`` straight away."""
    resolver = app.routing().resolver()
    of = app.traffic_owners()
    lost: Counter[tuple[str, str]] = Counter()
    delivered = 0
    for body, result in zip(posted.bodies, posted.answers, strict=True):
        request = RouteIn.model_validate(body).to_request()
        if (
            owners
            and not {
                of.of(request.receiver_sor_id, request.receiver_gln),
                of.of(request.sender_sor_id, request.sender_gln),
            }
            & owners
        ):
            continue
        if result["status"] != 200 or result["decision"]["decision"] != "deliver":
            continue
        delivered += 1
        then = resolver.resolve(replace(request, at=on), on)
        if then.decision is Decision.REJECT:
            assert then.reason is not None
            lost[(request.business_message, then.reason.value)] += 1
    return delivered, lost


def _priced(app: App, on: date, owners: frozenset[str] = frozenset()) -> Any:
    with app.uow() as uow:
        return price_cutover(
            uow,
            app.routing().resolver(),
            app.traffic_owners(),
            on,
            window_days=30,
            today=today_in_denmark(),
            restrict=owners,
        )


class TestPricedCutover:
    def test_the_replay_equals_deciding_the_posted_requests_again_directly(
        self, synced_app: App, posted: Posted
    ) -> None:
        priced = _priced(synced_app, AFTER_THE_CONVERSIONS)
        delivered, lost = _directly(synced_app, posted, AFTER_THE_CONVERSIONS)
        assert priced.logged == len(posted.bodies) and priced.not_replayable == 0
        assert priced.delivered == delivered
        assert priced.lost == sum(lost.values()) > 0
        by_message: Counter[str] = Counter()
        by_reason: Counter[str] = Counter()
        for (message, reason), n in lost.items():
            by_message[message] += n
            by_reason[reason] += n
        assert priced.by_business_message == dict(by_message)
        assert priced.by_reason == dict(by_reason)
        assert sum(priced.by_receiver_owner.values()) == priced.lost
        assert sum(priced.by_vans.values()) == priced.lost
        assert priced.lost_per_day == pytest.approx(priced.lost / 30)

    def test_before_the_conversions_end_no_message_is_lost(
        self, synced_app: App, posted: Posted
    ) -> None:
        on = today_in_denmark()
        priced = _priced(synced_app, on)
        delivered, lost = _directly(synced_app, posted, on)
        assert (priced.delivered, priced.lost) == (delivered, sum(lost.values()))

    def test_an_owner_sees_the_messages_its_units_send_or_receive(
        self, synced_app: App, posted: Posted
    ) -> None:
        everyone = _priced(synced_app, AFTER_THE_CONVERSIONS)
        owner = next(o for o in everyone.by_receiver_owner if o != "(unknown)")
        mine = _priced(synced_app, AFTER_THE_CONVERSIONS, frozenset({owner}))
        delivered, lost = _directly(synced_app, posted, AFTER_THE_CONVERSIONS, frozenset({owner}))
        assert (mine.delivered, mine.lost) == (delivered, sum(lost.values()))
        assert 0 < mine.lost < everyone.lost

    def test_decisions_logged_without_their_facts_are_counted_but_not_replayed(
        self, synced_app: App
    ) -> None:
        record_decisions(synced_app.uow, [logged(datetime.now(UTC), facts=None)] * 4)
        priced = _priced(synced_app, AFTER_THE_CONVERSIONS)
        assert (priced.logged, priced.not_replayable, priced.delivered) == (4, 4, 0)


class TestCommandLine:
    def test_cutover_with_a_traffic_window_adds_the_priced_traffic(
        self, cli: Cli, synced_app: App, posted: Posted
    ) -> None:
        on = AFTER_THE_CONVERSIONS.isoformat()
        result = json.loads(cli("cutover", "--date", on, "--traffic-window", "30", "--json").output)
        priced = _priced(synced_app, AFTER_THE_CONVERSIONS)
        traffic = result["traffic"]
        assert (traffic["lost"], traffic["delivered"], traffic["days"]) == (
            priced.lost,
            priced.delivered,
            30,
        )
        assert traffic["by_reason"] == priced.by_reason
        text = cli("cutover", "--date", on, "--traffic-window", "30", env={"COLUMNS": "200"})
        assert f"{priced.lost:,} of {priced.delivered:,} delivered messages" in text.output
        assert "traffic" not in json.loads(cli("cutover", "--date", on, "--json").output)


class TestApi:
    def test_get_cutover_with_a_traffic_window_prices_it_in_the_tokens_scope(
        self, client: TestClient, synced_app: App, posted: Posted, issue: Callable[..., str]
    ) -> None:
        on = AFTER_THE_CONVERSIONS
        url = f"/v1/cutover?date={on.isoformat()}&traffic_window=30"
        everyone = client.get(url, headers=bearer(issue("audit:read")))
        assert everyone.status_code == 200, everyone.text
        traffic = everyone.json()["traffic"]
        priced = _priced(synced_app, on)
        assert (traffic["lost"], traffic["delivered"], traffic["logged"]) == (
            priced.lost,
            priced.delivered,
            priced.logged,
        )
        assert traffic["by_receiver_owner"] == priced.by_receiver_owner
        owner = next(o for o in priced.by_receiver_owner if o != "(unknown)")
        restricted = client.get(url, headers=bearer(issue("audit:read", owners=(owner,))))
        mine = _priced(synced_app, on, frozenset({owner}))
        assert restricted.json()["traffic"]["lost"] == mine.lost < priced.lost
        plain = client.get(
            f"/v1/cutover?date={on.isoformat()}", headers=bearer(issue("audit:read"))
        )
        assert plain.json()["traffic"] is None


class TestRememberingResolver:
    def test_it_decides_every_question_exactly_as_the_live_resolver_trace_included(
        self, synced_app: App, posted: Posted
    ) -> None:
        live = synced_app.routing().resolver()
        remembering = Resolver(live.index, live.policy, live.message_types, remember_receivers=True)
        questions = [RouteIn.model_validate(body).to_request() for body in posted.bodies]
        for on in (today_in_denmark(), AFTER_THE_CONVERSIONS):
            for question in questions * 2:  # the second time from what it remembered
                asked = replace(question, at=on)
                assert remembering.resolve(asked, on) == live.resolve(asked, on)


class TestOnAnOlderSnapshot:
    def test_a_date_an_older_snapshot_describes_is_decided_on_that_snapshot(
        self, synced_app: App, posted: Posted
    ) -> None:
        with synced_app.uow() as uow:
            older, current = sorted(uow.registry.list_snapshots(), key=lambda s: s.id)
            registry = uow.registry.load_registry(older.id)
        on = older.effective_date
        assert current.effective_date > on
        live = synced_app.routing().resolver()
        then = Resolver(
            RoutingIndex.build(SnapshotRef(older.id, older.taken_at), registry),
            live.policy,
            live.message_types,
        )
        priced = _priced(synced_app, on)
        assert priced.snapshot_id == older.id != live.index.snapshot.id
        lost = 0
        for body, result in zip(posted.bodies, posted.answers, strict=True):
            if result["status"] == 200 and result["decision"]["decision"] == "deliver":
                request = replace(RouteIn.model_validate(body).to_request(), at=on)
                lost += then.resolve(request, on).decision is Decision.REJECT
        assert priced.lost == lost
