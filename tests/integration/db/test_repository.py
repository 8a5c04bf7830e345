"""The versioned store on SQLite and PostgreSQL: snapshots, as-of reads, history, the feed, the
run record and the audit summaries; and the in-memory fakes answering as the database does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from soredi_sync.db.engine import make_engine, make_session_factory
from soredi_sync.db.models import Snapshot
from soredi_sync.db.unit_of_work import SqlAlchemyUnitOfWork
from soredi_sync.domain.diff import diff
from soredi_sync.domain.model import Capability, Gln, Registry
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import RunStatus
from tests.support.factories import gln, registry, unit

KMD = "41000035001"
MULTIMED = "81000035007"


@pytest.fixture
def uow_factory(database_url: str):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    yield lambda: SqlAlchemyUnitOfWork(factory)
    engine.dispose()


def _store(uow_factory, reg: Registry, source_date: date | None = None):
    reg = Registry(reg.units, reg.glns, reg.capabilities, source_date=source_date)
    with uow_factory() as uow:
        current = uow.registry.current_snapshot()
        previous = uow.registry.load_registry(current.id) if current else None
        run_id = uow.runs.start("sor-filer", "test", "test")
        snap = uow.registry.add_snapshot(
            reg,
            diff(previous, reg),
            run_id=run_id,
            source="sor-filer",
            content_hash="x" * 64,
            baseline=previous is None,
        )
        uow.runs.finish(run_id, RunStatus.SUCCEEDED, snapshot_id=snap.id)
        uow.commit()
    return snap


def _day0() -> Registry:
    return registry(
        [
            unit("100", own_gln=gln(1), name="Region"),
            unit("101", "100"),
            unit("102", "100", own_gln=gln(2)),
        ],
        [Gln(gln(1), vans=KMD, owner_sor_id="100"), Gln(gln(2), vans=KMD, owner_sor_id="102")],
        {gln(1): ["DIS91", "XBIN01"], gln(2): ["XDIS91", "XBIN01"]},
    )


def _day1() -> Registry:
    return registry(
        [
            unit("100", own_gln=gln(1), name="Region Renamed"),
            unit("102", "100", own_gln=gln(2)),
            unit("103", "102"),
        ],
        [Gln(gln(1), vans=MULTIMED, owner_sor_id="100"), Gln(gln(2), vans=KMD, owner_sor_id="102")],
        {gln(1): ["FDIS91", "FCTL", "XBIN01"], gln(2): ["XDIS91", "XBIN01"]},
    )


class TestUnitOfWork:
    def test_work_not_committed_is_rolled_back(self, uow_factory) -> None:
        with uow_factory() as uow:
            uow.runs.start("sor-filer", "test", "test")
        with uow_factory() as uow:
            assert uow.runs.recent() == []

    def test_committed_work_is_kept(self, uow_factory) -> None:
        with uow_factory() as uow:
            run_id = uow.runs.start("sor-filer", "test", "test")
            uow.commit()
        with uow_factory() as uow:
            assert [r.id for r in uow.runs.recent()] == [run_id]
            assert uow.runs.get(run_id).started_at.tzinfo is not None


class TestSnapshots:
    def test_a_stored_registry_reads_back_identically(self, uow_factory) -> None:
        snap = _store(uow_factory, _day0(), date(2026, 11, 2))
        with uow_factory() as uow:
            loaded = uow.registry.load_registry(snap.id)
        assert loaded.units == _day0().units
        assert loaded.glns == _day0().glns
        assert loaded.capabilities == _day0().capabilities
        assert snap.baseline and snap.unit_count == 3 and snap.capability_count == 4

    def test_older_snapshots_stay_readable_after_a_new_one(self, uow_factory) -> None:
        first = _store(uow_factory, _day0(), date(2026, 11, 2))
        second = _store(uow_factory, _day1(), date(2026, 11, 3))
        with uow_factory() as uow:
            assert uow.registry.load_registry(first.id).units == _day0().units
            assert uow.registry.load_registry(second.id).capabilities == _day1().capabilities
            assert uow.registry.get_unit("101", first.id) is not None
            assert uow.registry.get_unit("101", second.id) is None
            assert uow.registry.get_gln(gln(1), first.id).vans == KMD
            assert uow.registry.get_gln(gln(1), second.id).vans == MULTIMED

    def test_a_date_finds_the_snapshot_describing_that_day(self, uow_factory) -> None:
        first = _store(uow_factory, _day0(), date(2026, 11, 2))
        second = _store(uow_factory, _day1(), date(2026, 11, 3))
        with uow_factory() as uow:
            assert uow.registry.snapshot_on(date(2026, 11, 1)) is None
            assert uow.registry.snapshot_on(date(2026, 11, 2)).id == first.id
            assert uow.registry.snapshot_on(date(2026, 12, 24)).id == second.id

    def test_only_one_version_per_key_is_current(self, uow_factory) -> None:
        _store(uow_factory, _day0())
        _store(uow_factory, _day1())
        _store(uow_factory, _day0())
        with uow_factory() as uow:
            current = uow.registry.current_snapshot()
            loaded = uow.registry.load_registry(current.id)
            assert loaded.units == _day0().units
            assert uow.session.scalar(select(func.count()).select_from(Snapshot)) == 3


class TestHistoryAndFeed:
    def test_gln_history_shows_each_version_and_when_types_came_and_went(self, uow_factory) -> None:
        first = _store(uow_factory, _day0())
        second = _store(uow_factory, _day1())
        with uow_factory() as uow:
            versions, caps = uow.registry.gln_history(gln(1))
        assert [(v.record.vans, v.valid_from, v.valid_to) for v in versions] == [
            (KMD, first.id, second.id),
            (MULTIMED, second.id, None),
        ]
        spans = {(c.record.message_type, c.valid_from, c.valid_to) for c in caps}
        assert (("DIS91", first.id, second.id)) in spans
        assert (("FDIS91", second.id, None)) in spans
        assert (("XBIN01", first.id, None)) in spans

    def test_the_baseline_emits_no_events_and_later_snapshots_do(self, uow_factory) -> None:
        _store(uow_factory, _day0())
        with uow_factory() as uow:
            assert uow.registry.changes_since(0) == []
        second = _store(uow_factory, _day1())
        with uow_factory() as uow:
            events = uow.registry.changes_since(0)
        kinds = {(e.entity, e.key, e.kind) for e in events}
        assert ("unit", "101", "removed") in kinds
        assert ("unit", "103", "added") in kinds
        assert ("unit", "100", "changed") in kinds
        assert ("gln", gln(1), "changed") in kinds
        assert ("capability", f"{gln(1)}:FDIS91", "added") in kinds
        assert ("capability", f"{gln(1)}:DIS91", "removed") in kinds
        assert all(e.snapshot_id == second.id for e in events)
        vans_change = next(e for e in events if e.entity == "gln")
        assert vans_change.details == {"fields": {"vans": [KMD, MULTIMED]}}

    def test_the_cursor_is_monotonic_and_resumable(self, uow_factory) -> None:
        _store(uow_factory, _day0())
        _store(uow_factory, _day1())
        _store(uow_factory, _day0())
        with uow_factory() as uow:
            everything = uow.registry.changes_since(0, limit=10_000)
            cursors = [e.cursor for e in everything]
            assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
            middle = cursors[len(cursors) // 2]
            rest = uow.registry.changes_since(middle, limit=10_000)
        assert [e.cursor for e in rest] == [c for c in cursors if c > middle]

    def test_a_capability_version_change_is_one_changed_event(self, uow_factory) -> None:
        base = registry([], [Gln(gln(1))], {})
        v33 = Registry(
            base.units, base.glns, {gln(1): {"XDIS91": Capability(gln(1), "XDIS91", "XD9133L")}}
        )
        v34 = Registry(
            base.units, base.glns, {gln(1): {"XDIS91": Capability(gln(1), "XDIS91", "XD9134L")}}
        )
        _store(uow_factory, v33)
        _store(uow_factory, v34)
        with uow_factory() as uow:
            events = uow.registry.changes_since(0)
        assert [(e.kind, e.details) for e in events] == [
            ("changed", {"fields": {"version_code": ["XD9133L", "XD9134L"]}})
        ]


class TestBulkWrites:
    def test_awkward_text_and_dates_round_trip_exactly(self, uow_factory) -> None:
        awkward = unit(
            "100",
            own_gln=gln(1),
            name='Tab\there, newline\nthere, back\\slash, "quotes", æøå',
            from_date=date(1995, 2, 20),
            to_date=date(2030, 12, 31),
        )
        reg = registry([awkward], [Gln(gln(1), from_date=date(2001, 1, 1))], {gln(1): ["FDIS91"]})
        snap = _store(uow_factory, reg)
        with uow_factory() as uow:
            loaded = uow.registry.load_registry(snap.id)
        assert loaded.units["100"] == awkward
        assert loaded.glns[gln(1)].from_date == date(2001, 1, 1)


class TestRunsAndSummaries:
    def test_ended_runs_are_newest_first_and_skip_running_and_other_sources(
        self, uow_factory
    ) -> None:
        with uow_factory() as uow:
            ok = uow.runs.start("sor-filer", "test", "test")
            uow.runs.finish(ok, RunStatus.SUCCEEDED, snapshot_id=None)
            bad = uow.runs.start("sor-filer", "test", "test")
            uow.runs.finish(bad, RunStatus.FAILED, error="boom")
            other = uow.runs.start("skrs", "test", "test")
            uow.runs.finish(other, RunStatus.REFUSED, error="elsewhere")
            uow.runs.start("sor-filer", "test", "test")
            uow.commit()
        with uow_factory() as uow:
            ended = uow.runs.ended("sor-filer", 10)
            assert [(e.status, e.error) for e in ended] == [
                (RunStatus.FAILED, "boom"),
                (RunStatus.SUCCEEDED, None),
            ]
            assert all(e.finished_at is not None and e.finished_at.tzinfo for e in ended)
            assert uow.runs.ended("sor-filer", 1) == ended[:1]
            # A run that stored no snapshot confirms nothing.
            assert uow.runs.last_confirmed_at() is None

    def test_the_last_confirmation_is_the_newest_accepted_run_naming_a_snapshot(
        self, uow_factory
    ) -> None:
        _store(uow_factory, _day0())
        with uow_factory() as uow:
            unchanged = uow.runs.start("sor-filer", "test", "test")
            uow.runs.finish(unchanged, RunStatus.UNCHANGED, snapshot_id=1)
            failed = uow.runs.start("sor-filer", "test", "test")
            uow.runs.finish(failed, RunStatus.FAILED, error="later")
            uow.commit()
        with uow_factory() as uow:
            assert uow.runs.last_confirmed_at() == uow.runs.get(unchanged).finished_at

    def test_an_audit_summary_is_stored_replaced_and_read_by_key(self, uow_factory) -> None:
        at = datetime(2026, 11, 26, tzinfo=UTC)
        figures = {"all": {"all": {"fhir_only": 1, "legacy_only": 2, "both": 3}}}
        with uow_factory() as uow:
            uow.audits.save_summary(1, computed_at=at, findings={"total": 0}, adoption={})
            uow.audits.save_summary(2, computed_at=at, findings={"total": 0}, adoption=figures)
            uow.commit()
        with uow_factory() as uow:
            uow.audits.save_summary(1, computed_at=at, findings={"total": 1}, adoption=figures)
            uow.commit()
        with uow_factory() as uow:
            assert uow.audits.adoption("all") == {1: figures["all"], 2: figures["all"]}
            assert uow.audits.adoption("region") == {}


def _same_answers(uow) -> dict[str, object]:
    """What the repositories answer after the three snapshots of :class:`TestFakesAgree`,
    without the values only a database chooses (times)."""
    current, cursor = uow.registry.current_snapshot_and_cursor()
    snapshots = [replace(s, taken_at=None) for s in uow.registry.list_snapshots()]
    glns, caps = uow.registry.gln_history(gln(1))
    return {
        "current": (current.id, cursor),
        "snapshots": snapshots,
        "on": uow.registry.snapshot_on(date(2026, 11, 3)).id,
        "registry": uow.registry.load_registry(2),
        "unit": uow.registry.get_unit("101", 1),
        "gln": uow.registry.get_gln(gln(1), 2),
        "capabilities": uow.registry.capabilities_of(gln(1), 2),
        "children": uow.registry.children_of("100", 1),
        "owning": uow.registry.units_owning(gln(2), 3),
        "history": (glns, caps),
        "feed": uow.registry.changes_since(0, limit=10_000),
        "feed_part": uow.registry.changes_since(3, limit=4, up_to_snapshot=2),
        "runs": [(r.id, r.status, r.snapshot_id) for r in uow.runs.recent()],
        "last_accepted": uow.runs.last_accepted("sor-filer").id,
    }


class TestFakesAgree:
    def test_the_fake_repositories_answer_as_the_database_does(self, uow_factory) -> None:
        fake = FakeUnitOfWork()
        for factory in (uow_factory, lambda: fake):
            _store(factory, _day0(), date(2026, 11, 2))
            _store(factory, _day1(), date(2026, 11, 3))
            _store(factory, _day0(), date(2026, 11, 4))
        with uow_factory() as uow:
            expected = _same_answers(uow)
        with fake:
            assert _same_answers(fake) == expected

    def test_the_fake_closes_abandoned_runs_as_the_database_does(self, uow_factory) -> None:
        now = datetime.now(UTC)
        fake = FakeUnitOfWork()
        answers = []
        for factory in (uow_factory, lambda: fake):
            with factory() as uow:
                uow.runs.start("sor-filer", "t", "t", holder="a", lease_until=now)
                uow.runs.start("sor-filer", "t", "t", holder="b", lease_until=now + timedelta(1))
                uow.runs.start("sor-filer", "t", "t")
                closed = uow.runs.close_abandoned("gone", now=now)
                uow.commit()
            with factory() as uow:
                answers.append((closed, [(r.id, r.status, r.error) for r in uow.runs.recent()]))
        assert answers[0] == answers[1]
