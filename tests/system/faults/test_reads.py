"""API reads while a sync stores the next snapshot: every answer comes from one whole snapshot.

A reader thread keeps asking the running API (current snapshot, a GLN, a routing decision, the
change feed) while a sync of day 1 runs; the sync is held inside its write transaction, with
day 1 flushed but not committed, long enough for many reads. Each answer names its snapshot,
and must match that snapshot entirely: day 0 before the commit, day 1 after, never a mix.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from soredi_sync.db.unit_of_work import SqlAlchemyUnitOfWork
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.sync import SyncOutcome, sync_source
from tests.support.faults.invariants import LastGood
from tests.support.faults.paused_sync import pause_before_storing
from tests.support.faults.report import Case

HOLD_SECONDS = 1.0


@dataclass(frozen=True)
class Answer:
    endpoint: str
    snapshot_id: int
    content: Any


class Reader(threading.Thread):
    """Asks the API in a loop until stopped; keeps every answer (and every failure)."""

    def __init__(self, last_good: LastGood) -> None:
        super().__init__(name="api-reader", daemon=True)
        self.api = last_good.api
        self.auth = {"Authorization": f"Bearer {last_good.token}"}
        self.gln = last_good.probe_gln
        self.stop = threading.Event()
        self.answers: list[Answer] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.answers.extend(self.read_once())
            except Exception as exc:  # noqa: BLE001 (reported by the test, not lost in a thread)
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def read_once(self) -> list[Answer]:
        current = self._ok(self.api.get("/v1/snapshots/current", headers=self.auth))["snapshot"]
        gln = self._ok(self.api.get(f"/v1/glns/{self.gln}", headers=self.auth))
        route = self._ok(
            self.api.post(
                "/v1/route",
                headers=self.auth,
                json={
                    "receiver": {"gln": self.gln},
                    "business_message": "correspondence",
                    "sender_syntax": "fhir",
                },
            )
        )
        feed = self._ok(self.api.get("/v1/changes?cursor=0&limit=10000", headers=self.auth))
        by_snapshot: dict[int, int] = {}
        for change in feed["changes"]:
            by_snapshot[change["snapshot_id"]] = by_snapshot.get(change["snapshot_id"], 0) + 1
        return [
            Answer(
                "snapshots/current",
                current["id"],
                (current["gln_count"], current["capability_count"], current["change_count"]),
            ),
            Answer(
                "glns",
                gln["snapshot"]["id"],
                frozenset(m["message_type"] for m in gln["message_types"]),
            ),
            Answer(
                "route",
                route["snapshot"]["id"],
                (route["decision"], route["message_type"], route["syntax"]),
            ),
            *(Answer("changes", sid, count) for sid, count in sorted(by_snapshot.items())),
        ]

    @staticmethod
    def _ok(response: Any) -> Any:
        assert response.status_code == 200, response.text
        return response.json()


class TestReadsDuringASync:
    def test_every_api_answer_during_a_sync_comes_from_one_whole_snapshot(
        self, last_good: LastGood
    ) -> None:
        app = last_good.app
        held = threading.Event()
        release = threading.Event()

        def hold(_uow: SqlAlchemyUnitOfWork) -> None:
            held.set()
            assert release.wait(30)

        uow_factory, on_stage = pause_before_storing(app, hold)
        outcomes: list[SyncOutcome] = []
        sync = threading.Thread(
            target=lambda: outcomes.append(
                sync_source(
                    uow_factory,
                    app.files_client(base_url=last_good.files.base_url),
                    app.sync_config(),
                    on_stage=on_stage,
                )
            ),
            name="sync",
        )
        reader = Reader(last_good)
        reader.start()
        started = time.monotonic()
        sync.start()
        try:
            assert held.wait(30), "the sync never reached its store transaction"
            during = len(reader.answers)
            last_good.assert_served()  # the old snapshot, whole, while day 1 is flushed
            time.sleep(HOLD_SECONDS)
            held_reads = len(reader.answers) - during
        finally:
            release.set()
            sync.join(30)
        [outcome] = outcomes
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        assert outcome.snapshot is not None
        new = outcome.snapshot
        after = len(reader.answers)
        deadline = time.monotonic() + 10
        while len(reader.answers) < after + 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        reader.stop.set()
        reader.join(10)
        elapsed = time.monotonic() - started
        assert reader.errors == []
        assert held_reads > 0, "no read happened while the sync held its transaction"

        with app.uow() as uow:
            registries = {
                last_good.snapshot.id: last_good.registry,
                new.id: uow.registry.load_registry(new.id),
            }
            snapshots = {last_good.snapshot.id: last_good.snapshot, new.id: new}
        # Expected answer of each endpoint per snapshot, from the stored snapshots themselves.
        expected: dict[tuple[str, int], Any] = {}
        for sid, snap in snapshots.items():
            expected["snapshots/current", sid] = (
                snap.gln_count,
                snap.capability_count,
                snap.change_count,
            )
            expected["glns", sid] = frozenset(registries[sid].message_types(last_good.probe_gln))
            if snap.change_count:
                expected["changes", sid] = snap.change_count
        assert expected["glns", last_good.snapshot.id] != expected["glns", new.id]

        routes: dict[int, set[Any]] = {}
        counted = dict.fromkeys(snapshots, 0)
        for answer in reader.answers:
            assert answer.snapshot_id in snapshots, answer
            counted[answer.snapshot_id] += 1
            if answer.endpoint == "route":
                routes.setdefault(answer.snapshot_id, set()).add(answer.content)
            else:
                assert answer.content == expected[answer.endpoint, answer.snapshot_id], answer
        # One decision per snapshot, and the two differ: day 1 switched the probe to FDIS91.
        assert all(len(decisions) == 1 for decisions in routes.values()), routes
        assert routes[last_good.snapshot.id] != routes[new.id]
        assert counted[last_good.snapshot.id] > 0 and counted[new.id] > 0

        record = last_good.begin(
            Case(
                "API reads during a sync",
                "a thread reading the API in a loop (current snapshot, a GLN, a routing "
                "decision, the change feed) while a sync of day 1 runs, held "
                f"{HOLD_SECONDS:g} s inside its write transaction with day 1 flushed but not "
                "committed",
            )
        )
        record.status = outcome.status.value
        record.reason = "(no fault: the sync stores day 1)"
        record.did = (
            f"{len(reader.answers)} answers in {elapsed:.1f} s: "
            f"{counted[last_good.snapshot.id]} from snapshot {last_good.snapshot.id} (day 0), "
            f"{held_reads} of them while day 1 sat uncommitted, then {counted[new.id]} from "
            f"snapshot {new.id} (day 1); every answer matched its snapshot whole, none mixed "
            "the two"
        )
        record.data_lost = "none"


class TestCurrentSnapshotDuringSyncs:
    """``GET /v1/snapshots/current`` pairs a snapshot with the change cursor it ends at.

    A gateway mirrors by storing that pair and asking for ``changes?cursor=`` next; a cursor that
    already includes the next snapshot's events makes it skip that snapshot. Readers run while
    two syncs (day 1, then day 2) commit; each reader pauses a little after the database names
    the current snapshot, as a busy server does, so that a read made of two statements would
    straddle a commit.
    """

    def test_every_current_snapshot_answer_carries_the_cursor_of_that_snapshot(
        self, last_good: LastGood
    ) -> None:
        app = last_good.app
        auth = {"Authorization": f"Bearer {last_good.token}"}
        answers: list[tuple[int, int]] = []
        errors: list[str] = []
        stop = threading.Event()

        def slow_reader(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            reading = threading.current_thread().name != "sync"
            query = " ".join(statement.split())
            if reading and "FROM snapshots ORDER BY snapshots.id DESC" in query:
                time.sleep(0.02)

        def read() -> None:
            while not stop.is_set():
                try:
                    answer = last_good.api.get("/v1/snapshots/current", headers=auth)
                    assert answer.status_code == 200, answer.text
                    body = answer.json()
                    answers.append((body["snapshot"]["id"], body["last_change_cursor"]))
                except Exception as exc:  # noqa: BLE001 (reported by the test)
                    errors.append(f"{type(exc).__name__}: {exc}")

        outcomes: list[SyncOutcome] = []

        def sync_days() -> None:
            for day in (1, 2):
                last_good.files.set_day(day)
                outcomes.append(last_good.sync())

        event.listen(app.engine, "after_cursor_execute", slow_reader)
        readers = [threading.Thread(target=read, name=f"reader-{n}") for n in range(3)]
        try:
            for reader in readers:
                reader.start()
            time.sleep(0.2)
            syncing = threading.Thread(target=sync_days, name="sync")
            syncing.start()
            syncing.join(120)
            time.sleep(0.2)
        finally:
            stop.set()
            for reader in readers:
                reader.join(10)
            event.remove(app.engine, "after_cursor_execute", slow_reader)

        assert errors == []
        assert [o.status for o in outcomes] == [RunStatus.SUCCEEDED] * 2, outcomes
        with app.uow() as uow:
            events = uow.registry.changes_since(0, limit=1_000_000)
        snapshot_ids = {last_good.snapshot.id, *(o.snapshot.id for o in outcomes if o.snapshot)}
        last_event = {
            sid: max((e.cursor for e in events if e.snapshot_id <= sid), default=0)
            for sid in snapshot_ids
        }
        wrong = [(sid, cursor) for sid, cursor in answers if cursor != last_event[sid]]
        seen = {sid for sid, _ in answers}
        assert seen == snapshot_ids, f"readers saw snapshots {seen}, not all of {snapshot_ids}"
        assert wrong == [], (
            f"{len(wrong)} of {len(answers)} answers paired a snapshot with another's cursor: "
            f"{wrong[:5]} (last events: {last_event})"
        )

        record = last_good.begin(
            Case(
                "current snapshot during syncs",
                "3 threads reading GET /v1/snapshots/current in a loop, each pausing 20 ms after "
                "the database names the current snapshot, while day 1 and day 2 are synced",
            )
        )
        record.status = outcomes[-1].status.value
        record.reason = "(no fault: the syncs store day 1 and day 2)"
        per_snapshot = {sid: sum(1 for s, _ in answers if s == sid) for sid in sorted(seen)}
        record.did = (
            f"{len(answers)} answers ({per_snapshot} by snapshot); every answer's cursor was "
            "the last change event of the snapshot it named"
        )
        record.data_lost = "none"
