"""The decision log counted per day: from real decisions, recounted safely, kept after the
retention, restricted by owner, and from the command line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.domain.traffic import CONVERTED, NATIVE, REJECTED
from soredi_sync.ports.records import DecisionEntry
from soredi_sync.services.decision_log import decisions_since, purge_decisions, record_decisions
from soredi_sync.services.traffic import day_bounds, rebuild_traffic, update_traffic
from tests.support.api import World, api_uow, bearer, route_body
from tests.support.cli_runner import Cli
from tests.support.decisions import logged

NOON = timedelta(hours=12)


def _counts(app: App, first: date, last: date, owners: frozenset[str] = frozenset()) -> list:
    with app.uow() as uow:
        return uow.traffic.counts(first, last, owners)


def _by_day(app: App, first: date, last: date) -> dict[date, int]:
    found: Counter[date] = Counter()
    for c in _counts(app, first, last):
        found[c.day] += c.messages
    return dict(found)


class TestFromTheApi:
    def test_counts_of_served_decisions_match_the_log_by_day_receiver_sender_and_delivery(
        self, client: TestClient, synced_app: App, issue: Callable[..., str], world: World
    ) -> None:
        today = today_in_denmark()
        days = [today - timedelta(days=2), today - timedelta(days=1), None]
        sender = {"gln": world.gln_out}
        questions = [
            {
                **route_body(gln, at=day.isoformat() if day else None, message_id=f"m{i}"),
                **({"sender": sender} if i % 2 else {}),
            }
            for i, (day, gln) in enumerate(
                (day, gln) for day in days for gln in (world.gln_in, world.gln_out, world.gln_in)
            )
        ]
        answer = client.post(
            "/v1/route/batch", json={"requests": questions}, headers=bearer(issue("route:read"))
        )
        assert answer.status_code == 200, answer.text
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        logged = decisions_since(api_uow(synced_app), datetime.now(UTC) - timedelta(hours=1))
        assert len(logged) == len(questions)

        done = update_traffic(synced_app.uow, synced_app.traffic_owners(), datetime.now(UTC))
        assert done.days == (today,) and done.decisions == len(questions)

        counts = _counts(synced_app, days[0], today)
        assert _by_day(synced_app, days[0], today) == {day or today: 3 for day in days}
        expected = Counter(
            (
                e.address_gln or e.receiver_gln,
                e.sender_gln,
                REJECTED if e.outcome == "reject" else CONVERTED if e.conversion else NATIVE,
                e.reason,
                e.conversion,
            )
            for e in logged
        )
        found: Counter[tuple[object, ...]] = Counter()
        for c in counts:
            found[(c.receiver_gln, c.sender_gln, c.delivery, c.reason, c.conversion)] += c.messages
        assert found == expected
        owners = {c.receiver_gln: c.receiver_owner for c in counts}
        assert owners == {world.gln_in: world.owner_in, world.gln_out: world.owner_out}
        assert {c.sender_owner for c in counts if c.sender_gln} == {world.owner_out}
        assert all(c.logged_on == today for c in counts)

    def test_a_restricted_reader_sees_only_traffic_its_owners_send_or_receive(
        self, client: TestClient, synced_app: App, issue: Callable[..., str], world: World
    ) -> None:
        questions = [
            {**route_body(world.gln_in), "sender": {"gln": world.gln_out}},
            route_body(world.gln_out),
            route_body(world.gln_in),
        ]
        client.post(
            "/v1/route/batch", json={"requests": questions}, headers=bearer(issue("route:read"))
        )
        client.app.state.decision_log.flush()  # type: ignore[attr-defined]
        update_traffic(synced_app.uow, synced_app.traffic_owners(), datetime.now(UTC))
        today = today_in_denmark()
        mine = _counts(synced_app, today, today, frozenset({world.owner_out}))
        assert sum(c.messages for c in mine) == 2  # the one it sends, the one it receives
        assert all(world.owner_out in (c.receiver_owner, c.sender_owner) for c in mine)


def _entry(decided_at: datetime, **fields: object) -> DecisionEntry:
    return logged(decided_at, **{"message_id": None, "facts": {"v": 1}, **fields})


class TestRecounting:
    def test_counting_again_changes_nothing_and_a_day_is_counted_whole_once_it_is_over(
        self, synced_app: App
    ) -> None:
        today = today_in_denmark()
        days = [today - timedelta(days=n) for n in (3, 2, 1, 0)]
        record_decisions(
            synced_app.uow,
            [_entry(day_bounds(d)[0] + NOON) for d in days for _ in range(d.day % 3 + 1)],
        )
        owners = synced_app.traffic_owners()
        first = update_traffic(synced_app.uow, owners, datetime.now(UTC))
        before = _counts(synced_app, days[0], today)
        again = rebuild_traffic(synced_app.uow, owners, datetime.now(UTC))
        assert first.days == again.days == tuple(days)
        assert first.counted_through == days[2]  # today is still being logged
        assert _counts(synced_app, days[0], today) == before
        assert _by_day(synced_app, days[0], today) == {d: d.day % 3 + 1 for d in days}
        record_decisions(synced_app.uow, [_entry(datetime.now(UTC))])
        later = update_traffic(synced_app.uow, owners, datetime.now(UTC))
        assert later.days == (today,)  # only the day not counted whole
        assert _by_day(synced_app, today, today) == {today: today.day % 3 + 2}

    def test_days_the_retention_cut_into_keep_their_counts_when_the_log_is_recounted(
        self, synced_app: App
    ) -> None:
        today = today_in_denmark()
        days = [today - timedelta(days=n) for n in (3, 2, 1)]
        record_decisions(
            synced_app.uow,
            [_entry(day_bounds(d)[0] + NOON + timedelta(hours=h)) for d in days for h in (-6, 6)],
        )
        owners = synced_app.traffic_owners()
        update_traffic(synced_app.uow, owners, datetime.now(UTC))
        assert _by_day(synced_app, days[0], today) == dict.fromkeys(days, 2)

        purge_decisions(synced_app.uow, day_bounds(days[1])[0] + NOON)  # into the second day
        done = rebuild_traffic(synced_app.uow, owners, datetime.now(UTC))
        assert done.days[0] == days[2]  # the first day the log still holds whole
        assert _by_day(synced_app, days[0], today) == dict.fromkeys(days, 2)


class TestCommandLine:
    def test_rebuild_then_show_ranks_receivers_by_messages(
        self, cli: Cli, synced_app: App, world: World
    ) -> None:
        now = datetime.now(UTC)
        record_decisions(
            synced_app.uow,
            [_entry(now, address_gln=world.gln_in, address_sor_id=world.unit_in)] * 3
            + [_entry(now, address_gln=world.gln_out, outcome="reject", reason="RECEIVER_CLOSED")],
        )
        rebuilt = cli("traffic", "rebuild")
        assert "recounted 4 decisions logged on 1 day(s)" in rebuilt.output
        shown = json.loads(cli("traffic", "show", "--window", "7", "--json").output)
        assert [(t["receiver"]["gln"], t["messages"], t["rejected"]) for t in shown["totals"]] == [
            (world.gln_in, 3, 0),
            (world.gln_out, 1, 1),
        ]
        mine = json.loads(cli("traffic", "show", "--owner", world.owner_out, "--json").output)
        assert [t["receiver"]["gln"] for t in mine["totals"]] == [world.gln_out]
        text = cli("traffic", "show", "--by", "pair").output
        assert world.gln_in in text and "(not named)" in text


class TestAuditByTraffic:
    def test_findings_are_ranked_by_the_messages_converted_and_rejected_at_their_gln(
        self, cli: Cli, synced_app: App
    ) -> None:
        findings = json.loads(cli("audit", "--format", "json").output)["findings"]
        glns = list(dict.fromkeys(f["gln"] for f in findings if f["gln"]))
        quiet, busy, costly = glns[:3]
        now = datetime.now(UTC)
        converted = {"conversion": "fhir->oioxml"}
        record_decisions(
            synced_app.uow,
            [_entry(now, address_gln=busy) for _ in range(10)]  # native: costs nothing
            + [_entry(now, address_gln=busy, **converted) for _ in range(2)]
            + [_entry(now, address_gln=costly, **converted) for _ in range(3)]
            + [_entry(now, address_gln=costly, outcome="reject", reason="RECEIVER_CLOSED")],
        )
        cli("traffic", "update")
        ranked = json.loads(cli("audit", "--by-traffic", "--format", "json").output)
        assert ranked["total"] == len(findings) and ranked["costing"] == sum(
            1 for f in findings if f["gln"] in (busy, costly)
        )
        rows = ranked["findings"]
        assert {r["gln"] for r in rows[: ranked["costing"]]} == {busy, costly}
        first = rows[0]
        assert (first["gln"], first["messages_cost"], first["converted"], first["rejected"]) == (
            costly,
            4,
            3,
            1,
        )
        busy_row = next(r for r in rows if r["gln"] == busy)
        assert (busy_row["messages_cost"], busy_row["native"]) == (2, 10)
        assert all(r["messages_cost"] == 0 for r in rows if r["gln"] == quiet)
        top = json.loads(cli("audit", "--by-traffic", "--top", "1", "--format", "json").output)
        assert [r["gln"] for r in top["findings"]] == [costly]
        table = cli("audit", "--by-traffic", "--top", "3", env={"COLUMNS": "250"}).output
        assert "messages they cost" in table and costly in table

    def test_traffic_outside_the_window_costs_nothing(self, cli: Cli, synced_app: App) -> None:
        findings = json.loads(cli("audit", "--format", "json").output)["findings"]
        gln = next(f["gln"] for f in findings if f["gln"])
        long_ago = (today_in_denmark() - timedelta(days=40)).isoformat()
        record_decisions(
            synced_app.uow,
            [_entry(datetime.now(UTC), address_gln=gln, facts={"v": 1, "at": long_ago})] * 5,
        )
        cli("traffic", "update")
        within = json.loads(
            cli("audit", "--by-traffic", "--window", "30", "--format", "json").output
        )
        wider = json.loads(
            cli("audit", "--by-traffic", "--window", "60", "--format", "json").output
        )
        assert within["costing"] == 0
        assert wider["findings"][0]["gln"] == gln and wider["findings"][0]["native"] == 5

    def test_by_traffic_refuses_the_formats_and_comparison_it_does_not_write(
        self, cli: Cli, synced_app: App
    ) -> None:
        for extra in (["--format", "xlsx", "--out", "x.xlsx"], ["--since", "1"]):
            result = cli("audit", "--by-traffic", *extra, expect=2)
            assert "--by-traffic writes a table, csv or json" in result.output


class TestWindows:
    def test_a_window_is_a_number_of_days_with_or_without_a_d(
        self, cli: Cli, synced_app: App
    ) -> None:
        for window in ("30", "30d", " 30D "):
            shown = json.loads(cli("traffic", "show", "--window", window, "--json").output)
            assert (
                date.fromisoformat(shown["last"]) - date.fromisoformat(shown["first"])
            ).days == 29
        for wrong in ("0", "0d", "d", "30 days", "-3"):
            result = cli("traffic", "show", "--window", wrong, expect=2)
            assert "is not a number of days from 1 to 3660" in result.output
