"""Incremental sync from the SKRS replication feed, on SQLite and PostgreSQL.

The base snapshot is the generator's day 0; the SOAP sandbox serves the feed of day 1
(tiny profile, seed 0). Applying the feed must leave day 1's capabilities on day 0's GLNs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from soredi_sync.bootstrap import App
from soredi_sync.config import RetrySettings
from soredi_sync.db.models import ChangeEvent, ReplicationCursor, Snapshot
from soredi_sync.db.unit_of_work import SqlAlchemyUnitOfWork
from soredi_sync.domain.diff import diff
from soredi_sync.domain.model import Capability, Gln, Registry
from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.generate import expected_registry
from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from soredi_sync.services.incremental import (
    apply_entries,
    capability_changes,
    drift_report,
    sync_incremental,
)
from soredi_sync.soap.records import ReplicationPage
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.skrs import SkrsReplicationClient, make_skrs_client
from tests.support.cli_runner import Cli

PAGE = 500


class Crash(Exception):
    """Stands in for the process dying between two pages."""


@pytest.fixture(scope="module")
def feed_day() -> SoapDay:
    return SoapDay("tiny", 0, 1)


@pytest.fixture(scope="module")
def base_registry() -> Registry:
    """Day 0, with every seventh GLN's capabilities dropped so that every page changes some."""
    day0 = expected_registry("tiny", 0, 0)
    dropped = set(sorted(day0.capabilities)[::7])
    return Registry.build(
        day0.units.values(),
        day0.glns.values(),
        (c for c in day0.iter_capabilities() if c.gln not in dropped),
        source_date=day0.source_date,
    )


@pytest.fixture
def skrs(feed_day: SoapDay) -> Iterator[SkrsReplicationClient]:
    with SoapSandboxServer(data=feed_day) as server:
        settings = SoapSettings(
            timeout=5,
            operation_timeout=2,
            retry=RetrySettings(attempts=3, initial_wait=0, max_wait=0),
            skrs_max_records=PAGE,
        )
        settings.sorls.address = server.url("sorls")
        settings.skrs.address = server.url("skrs")
        yield make_skrs_client(settings, sleep=lambda _s: None)


class StopsAfter:
    """A client whose feed dies when asked for the page after the first ``pages``."""

    def __init__(self, client: SkrsReplicationClient, pages: int) -> None:
        self._client = client
        self._pages = pages

    def pages(
        self, offset: str | None = None, *, max_records: int | None = None
    ) -> Iterator[ReplicationPage]:
        for index, page in enumerate(self._client.pages(offset, max_records=max_records)):
            if index == self._pages:
                raise Crash(f"feed died before page {index + 1}")
            yield page


def _store_base(app: App, registry: Registry) -> int:
    with app.uow() as uow:
        run_id = uow.runs.start("sor-filer", "test", "test")
        snap = uow.registry.add_snapshot(
            registry,
            diff(None, registry),
            run_id=run_id,
            source="sor-filer",
            content_hash="0" * 64,
            baseline=True,
        )
        uow.runs.finish(run_id, RunStatus.SUCCEEDED, snapshot_id=snap.id)
        uow.commit()
        return snap.id


def _current(app: App) -> Registry:
    with app.uow() as uow:
        snap = uow.registry.current_snapshot()
        assert snap is not None
        return uow.registry.load_registry(snap.id)


def _expected_caps(base: Registry) -> set[Capability]:
    return {c for c in expected_registry("tiny", 0, 1).iter_capabilities() if c.gln in base.glns}


def _events(app: App) -> list[tuple[str, str, str]]:
    with app.uow() as uow:
        rows = uow.session.scalars(select(ChangeEvent).order_by(ChangeEvent.id))
        return [(r.entity, r.key, r.kind) for r in rows]


def _reference_events(
    client: SkrsReplicationClient, base: Registry, as_of: date
) -> list[tuple[str, str, str]]:
    """What one uninterrupted run stores, page by page, computed without a database."""
    events: list[tuple[str, str, str]] = []
    registry = base
    for page in client.pages(None, max_records=PAGE):
        updated, _ = apply_entries(registry, page.entries, as_of)
        changes = capability_changes(registry, updated, {e.capability.gln for e in page.entries})
        for kind, caps in (
            ("added", changes.capabilities.added),
            ("removed", changes.capabilities.removed),
            ("changed", [c.after for c in changes.capabilities.changed]),
        ):
            events.extend(("capability", f"{c.gln}:{c.message_type}", kind) for c in caps)
        registry = updated
    return events


def _count(app: App, model: Any) -> int:
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


class TestWithoutABaseSnapshot:
    def test_the_sync_is_refused_and_recorded_as_failed_without_a_cursor(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay
    ) -> None:
        outcome = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert outcome.status is RunStatus.FAILED
        assert outcome.error is not None and "full sync" in outcome.error
        with app.uow() as uow:
            assert uow.cursors.offset("skrs") is None
            run = uow.runs.get(outcome.run_id)
            assert run is not None and run.source == "skrs" and run.status is RunStatus.FAILED


class TestApplyingTheWholeFeed:
    def test_the_snapshot_holds_the_feeds_current_capabilities_for_its_glns(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        base_id = _store_base(app, base_registry)
        outcome = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert outcome.status is RunStatus.SUCCEEDED
        assert outcome.offset == feed_day.rows[-1].offset
        registry = _current(app)
        assert set(registry.iter_capabilities()) == _expected_caps(base_registry)
        assert registry.units == base_registry.units and registry.glns == base_registry.glns
        with app.uow() as uow:
            assert uow.cursors.offset("skrs") == feed_day.rows[-1].offset
            snaps = uow.session.scalars(select(Snapshot).where(Snapshot.id > base_id)).all()
            assert snaps and all(s.source == "skrs" and not s.baseline for s in snaps)
            run = uow.runs.get(outcome.run_id)
            assert run is not None and run.status is RunStatus.SUCCEEDED
            assert run.snapshot_id == snaps[-1].id
            cursor = uow.session.get_one(ReplicationCursor, "skrs")
            assert cursor.snapshot_id == snaps[-1].id

    def test_a_second_run_when_caught_up_stores_nothing(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        snapshots = _count(app, Snapshot)
        again = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert again.status is RunStatus.UNCHANGED
        assert again.snapshots == 0 and again.offset == feed_day.rows[-1].offset
        assert _count(app, Snapshot) == snapshots


class TestResumingAfterACrash:
    def test_a_crash_between_pages_then_a_resume_neither_loses_nor_repeats_entries(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        with pytest.raises(Crash):
            sync_incremental(app.uow_factory, StopsAfter(skrs, 2), as_of=feed_day.snapshot_date)
        with app.uow() as uow:
            assert uow.cursors.offset("skrs") == feed_day.rows[2 * PAGE - 1].offset
            assert uow.runs.recent(1)[0].status is RunStatus.FAILED
        resumed = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert resumed.ok and resumed.offset == feed_day.rows[-1].offset
        assert resumed.counts["from_offset"] == feed_day.rows[2 * PAGE - 1].offset
        assert resumed.counts["entries"] == len(feed_day.rows) - 2 * PAGE
        assert set(_current(app).iter_capabilities()) == _expected_caps(base_registry)
        events = _events(app)
        reference = _reference_events(skrs, base_registry, feed_day.snapshot_date)
        assert len(reference) > 100 and events == reference
        assert len(events) == len(set(events))

    def test_a_failed_commit_stores_neither_the_page_nor_its_offset(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date, max_pages=1)
        snapshots, events = _count(app, Snapshot), _count(app, ChangeEvent)
        with app.uow() as uow:
            offset = uow.cursors.offset("skrs")

        commits = 0

        def failing_commit() -> SqlAlchemyUnitOfWork:
            uow = app.uow()

            def commit() -> None:
                nonlocal commits
                commits += 1
                if commits == 2:  # the run's start is the first; the first page the second
                    raise Crash("connection lost at commit")
                uow.session.commit()

            uow.commit = commit  # type: ignore[method-assign]
            return uow

        with pytest.raises(Crash):
            sync_incremental(failing_commit, skrs, as_of=feed_day.snapshot_date)
        with app.uow() as uow:
            assert uow.cursors.offset("skrs") == offset
        assert (_count(app, Snapshot), _count(app, ChangeEvent)) == (snapshots, events)
        sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert set(_current(app).iter_capabilities()) == _expected_caps(base_registry)


class TestMaxPages:
    def test_a_run_stops_after_max_pages_and_the_next_run_goes_on_from_there(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        first = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date, max_pages=1)
        assert first.pages == 1 and first.offset == feed_day.rows[PAGE - 1].offset
        rest = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert rest.counts["from_offset"] == first.offset
        assert rest.counts["entries"] == len(feed_day.rows) - PAGE


class TestDriftReport:
    def _registry(self, *caps: Capability) -> Registry:
        return Registry.build((), [Gln(c.gln) for c in caps], caps)

    def test_identical_capabilities_are_in_sync(self) -> None:
        reg = self._registry(Capability("5790000000001", "FDIS91", "XD9134L"))
        report = drift_report(reg, reg)
        assert report["in_sync"] and report["counts"]["incremental"] == 1

    def test_pairs_present_in_one_registry_only_are_listed_on_their_side(self) -> None:
        shared = Capability("5790000000001", "FDIS91", "XD9134L")
        inc = self._registry(shared, Capability("5790000000001", "DIS91", None))
        full = self._registry(shared, Capability("5790000000002", "XDIS91", None))
        report = drift_report(inc, full)
        assert not report["in_sync"]
        assert report["only_incremental"] == [{"gln": "5790000000001", "message_type": "DIS91"}]
        assert report["only_full"] == [{"gln": "5790000000002", "message_type": "XDIS91"}]

    def test_a_different_version_code_is_reported_as_version_drift(self) -> None:
        inc = self._registry(Capability("5790000000001", "FDIS91", "XD9134L"))
        full = self._registry(Capability("5790000000001", "FDIS91", "XD9135L"))
        report = drift_report(inc, full)
        assert report["version_differs"] == [
            {
                "gln": "5790000000001",
                "message_type": "FDIS91",
                "incremental": "XD9134L",
                "full": "XD9135L",
            }
        ]

    def test_after_the_feed_only_glns_new_in_the_full_snapshot_drift(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        full = expected_registry("tiny", 0, 1)
        report = drift_report(_current(app), full)
        assert report["only_incremental"] == [] and report["version_differs"] == []
        assert {d["gln"] for d in report["only_full"]} <= full.glns.keys() - base_registry.glns


class TestSyncSourceSkrsCommand:
    def test_the_cli_applies_the_feed_on_top_of_the_files_snapshot(
        self, cli: Cli, database_url: str, feed_day: SoapDay, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import json

        with SoapSandboxServer(data=feed_day) as server:
            monkeypatch.setenv("SOREDI_SOAP__SKRS__ADDRESS", server.url("skrs"))
            monkeypatch.setenv("SOREDI_SOAP__SKRS_MAX_RECORDS", str(PAGE))
            refused = cli("sync", "--source", "skrs", expect=1)
            assert "full sync" in refused.output
            with _app_for(database_url) as app:
                _store_base(app, expected_registry("tiny", 0, 0))
            result = cli("sync", "--source", "skrs", "--json")
        data = json.loads(result.output)
        assert data["status"] == "succeeded" and data["pages"] >= 1 and data["offset"]


def _app_for(database_url: str) -> App:
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings

    return bootstrap(Settings(database_url=database_url))


class EndingFeed:
    """A feed whose pages end the given capabilities (one page per list), offsets 1, 2, ..."""

    def __init__(self, pages: list[list[Capability]], day: date) -> None:
        self._pages = pages
        self._day = day

    def pages(
        self, offset: str | None = None, *, max_records: int | None = None
    ) -> Iterator[ReplicationPage]:
        from datetime import UTC, datetime

        from soredi_sync.soap.records import CapabilityVersion

        start = int(offset) if offset else 0
        for index in range(start, len(self._pages)):
            entries = tuple(
                CapabilityVersion(
                    capability=cap,
                    edi_type_id=None,
                    valid_from=date(2020, 1, 1),
                    valid_to=self._day,
                    offset=str(index + 1),
                    updated=datetime(2026, 11, 2, tzinfo=UTC),
                )
                for cap in self._pages[index]
            )
            yield ReplicationPage(entries, str(index) if index else None, str(index + 1), 10**6)


class TestMassRemovalGuard:
    def _feed(self, base: Registry) -> tuple[EndingFeed, int, int]:
        caps = sorted(base.iter_capabilities(), key=lambda c: c.key)
        small = caps[: len(caps) // 25]  # 4 %
        large = caps[len(caps) // 25 : len(caps) // 2]  # up to half
        return EndingFeed([small, large], date(2026, 11, 2)), len(small), len(large)

    def test_the_page_that_would_remove_too_much_is_refused_and_the_pages_before_stay(
        self, app: App, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        feed, small, _large = self._feed(base_registry)
        outcome = sync_incremental(
            app.uow_factory, feed, as_of=date(2026, 11, 2), max_removal_ratio=0.10
        )
        assert outcome.status is RunStatus.REFUSED
        assert outcome.error is not None and "accept-mass-change" in outcome.error
        assert "after offset 1" in outcome.error
        with app.uow() as uow:
            assert uow.cursors.offset("skrs") == "1"
            run = uow.runs.get(outcome.run_id)
            assert run is not None and run.status is RunStatus.REFUSED
        assert _current(app).capability_count == base_registry.capability_count - small
        again = sync_incremental(app.uow_factory, feed, as_of=date(2026, 11, 2))
        assert again.status is RunStatus.REFUSED

    def test_accepting_the_mass_change_stores_every_page(
        self, app: App, base_registry: Registry
    ) -> None:
        _store_base(app, base_registry)
        feed, small, large = self._feed(base_registry)
        outcome = sync_incremental(
            app.uow_factory, feed, as_of=date(2026, 11, 2), accept_mass_change=True
        )
        assert outcome.status is RunStatus.SUCCEEDED and outcome.offset == "2"
        assert outcome.counts["capabilities_removed"] == small + large
        assert _current(app).capability_count == base_registry.capability_count - small - large


def _version(gln: str, code: str, version: str | None, current: bool) -> Any:
    from datetime import UTC, datetime

    from soredi_sync.soap.records import CapabilityVersion

    return CapabilityVersion(
        capability=Capability(gln, code, version),
        edi_type_id=None,
        valid_from=date(2024, 1, 1),
        valid_to=None if current else date(2026, 1, 1),
        offset="1",
        updated=datetime(2026, 11, 2, tzinfo=UTC),
    )


class TestFoldingVersions:
    G = "5790000000005"
    DAY = date(2026, 11, 2)

    def _fold(self, start: tuple[Capability, ...], *entries: Any) -> dict[str, str | None]:
        base = Registry.build((), [Gln(self.G)], start)
        folded, _ = apply_entries(base, entries, self.DAY)
        return {c.message_type: c.version_code for c in folded.iter_capabilities()}

    def test_two_current_versions_of_one_type_are_joined_as_the_files_do(self) -> None:
        folded = self._fold(
            (),
            _version(self.G, "BIN01", "B0131X", True),
            _version(self.G, "BIN01", "B0130X", True),
        )
        files = Registry.build(
            (),
            [Gln(self.G)],
            [Capability(self.G, "BIN01", "B0131X"), Capability(self.G, "BIN01", "B0130X")],
        )
        assert folded == {"BIN01": "B0130X,B0131X"}
        assert folded == {c.message_type: c.version_code for c in files.iter_capabilities()}

    def test_ending_one_version_keeps_the_others_and_ending_the_last_removes_the_type(
        self,
    ) -> None:
        start = (Capability(self.G, "BIN01", "B0130X,B0131X"),)
        one = self._fold(start, _version(self.G, "BIN01", "B0130X", False))
        assert one == {"BIN01": "B0131X"}
        both = self._fold(
            start,
            _version(self.G, "BIN01", "B0130X", False),
            _version(self.G, "BIN01", "B0131X", False),
        )
        assert both == {}

    def test_a_version_change_replaces_the_old_version(self) -> None:
        start = (Capability(self.G, "XDIS91", "XD9134L"),)
        folded = self._fold(
            start,
            _version(self.G, "XDIS91", "XD9134L", False),
            _version(self.G, "XDIS91", "XD9135L", True),
        )
        assert folded == {"XDIS91": "XD9135L"}

    def test_ending_a_version_the_snapshot_never_held_changes_nothing(self) -> None:
        start = (Capability(self.G, "XDIS91", "XD9134L"),)
        folded = self._fold(start, _version(self.G, "XDIS91", "XD9999L", False))
        assert folded == {"XDIS91": "XD9134L"}

    def test_a_row_without_a_version_stands_for_the_whole_type(self) -> None:
        start = (Capability(self.G, "FDIS91", "a,b"),)
        assert self._fold(start, _version(self.G, "FDIS91", None, False)) == {}
        assert self._fold((), _version(self.G, "FDIS91", None, True)) == {"FDIS91": None}


@pytest.fixture(scope="module")
def seed0_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from soredi_sync.sandbox.generate import generate

    directory = tmp_path_factory.mktemp("seed0")
    generate(directory, profile="tiny", seed=0, days=1)
    return directory


class TestDriftAfterTheNextFullSync:
    def _full(self, app: App, directory: Any, day: int) -> Any:
        from soredi_sync.services.sync import sync_source

        outcome = sync_source(
            app.uow_factory,
            app.files_client(from_dir=directory / f"day-{day:03d}"),
            app.sync_config(),
        )
        assert outcome.ok, outcome.error
        return outcome

    def test_a_complete_feed_is_in_sync_with_the_next_days_files(
        self, app: App, skrs: SkrsReplicationClient, feed_day: SoapDay, seed0_dir: Any
    ) -> None:
        assert "drift" not in self._full(app, seed0_dir, 0).counts
        fed = sync_incremental(app.uow_factory, skrs, as_of=feed_day.snapshot_date)
        assert fed.status is RunStatus.SUCCEEDED and fed.snapshot is not None
        drift = self._full(app, seed0_dir, 1).counts["drift"]
        assert drift["from_snapshot"] == fed.snapshot.id and drift["source"] == "skrs"
        assert drift["in_sync"] is True
        assert drift["incremental"] == drift["full"] == _current(app).capability_count

    def test_a_feed_that_disagrees_with_the_files_drifts_by_exactly_the_difference(
        self, app: App, feed_day: SoapDay, seed0_dir: Any
    ) -> None:
        self._full(app, seed0_dir, 0)
        # A feed that ends a few capabilities the next day's files still hold.
        ended = sorted(_current(app).iter_capabilities(), key=lambda c: c.key)[:5]
        feed = EndingFeed([ended], feed_day.snapshot_date)
        fed = sync_incremental(app.uow_factory, feed, as_of=feed_day.snapshot_date)
        assert fed.snapshot is not None
        partial = {(c.gln, c.message_type) for c in _current(app).iter_capabilities()}
        outcome = self._full(app, seed0_dir, 1)
        full = {(c.gln, c.message_type) for c in _current(app).iter_capabilities()}
        drift = outcome.counts["drift"]
        assert drift["in_sync"] is False and drift["from_snapshot"] == fed.snapshot.id
        assert drift["only_incremental"] == len(partial - full)
        assert drift["only_full"] == len(full - partial)
        assert len(partial ^ full) > 0


class TestKilledProcess:
    def test_a_sync_killed_with_sigkill_mid_feed_resumes_without_gaps_or_repeats(
        self, database_url: str, feed_day: SoapDay, base_registry: Registry
    ) -> None:
        import os
        import signal
        import subprocess
        import sys
        import time

        with _app_for(database_url) as app:
            _store_base(app, base_registry)
        with SoapSandboxServer(data=feed_day) as server:
            # Pages 1 and 2 answer at once; the third request hangs, so the process is killed
            # after page 2 was committed and while it waits for page 3.
            server.inject("delay", "skrs", delay=0, times=2)
            server.inject("delay", "skrs", delay=60)
            env = {
                **os.environ,
                "SOREDI_SOAP__SKRS__ADDRESS": server.url("skrs"),
                "SOREDI_SOAP__SKRS_MAX_RECORDS": str(PAGE),
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "soredi_sync", "--database-url", database_url]
                + ["sync", "--source", "skrs"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 60
                while len(server.calls) < 3 and time.monotonic() < deadline:
                    assert process.poll() is None, "the sync ended before it could be killed"
                    time.sleep(0.05)
                assert len(server.calls) == 3
                process.send_signal(signal.SIGKILL)
                assert process.wait(timeout=10) == -signal.SIGKILL
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            server.clear_faults()
            with _app_for(database_url) as app:
                with app.uow() as uow:
                    assert uow.cursors.offset("skrs") == feed_day.rows[2 * PAGE - 1].offset
                client = make_skrs_client(_soap_settings(server), sleep=lambda _s: None)
                resumed = sync_incremental(app.uow_factory, client)
                assert resumed.ok, resumed.error
                assert resumed.counts["from_offset"] == feed_day.rows[2 * PAGE - 1].offset
                assert resumed.offset == feed_day.rows[-1].offset
                events = _events(app)
                reference = _reference_events(client, base_registry, date.today())
        assert len(events) == len(set(events)) and events == reference


def _soap_settings(server: SoapSandboxServer) -> SoapSettings:
    settings = SoapSettings(
        timeout=5,
        operation_timeout=5,
        retry=RetrySettings(attempts=2, initial_wait=0, max_wait=0),
        skrs_max_records=PAGE,
    )
    settings.skrs.address = server.url("skrs")
    return settings


class _OneEntryFeed:
    """A feed of one page: ``entry``."""

    def __init__(self, entry: Any) -> None:
        self._entry = entry

    def pages(
        self, offset: str | None = None, *, max_records: int | None = None
    ) -> Iterator[ReplicationPage]:
        if offset is None:
            yield ReplicationPage((self._entry,), None, "1", 1)


class TestTheDayIsTheDanishDay:
    def test_without_a_date_the_feed_is_judged_on_todays_date_in_denmark_not_the_machines(
        self, app: App, base_registry: Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from datetime import UTC, datetime, timedelta
        from zoneinfo import ZoneInfo

        from soredi_sync.soap.records import CapabilityVersion

        now = datetime.now(ZoneInfo("Europe/Copenhagen"))
        danish_today = now.date()
        # A machine zone whose date is not Denmark's right now: 13-14 hours behind before
        # noon in Copenhagen, 12-13 hours ahead after.
        behind = now.hour < 12
        monkeypatch.setenv("TZ", "Etc/GMT+12" if behind else "Etc/GMT-14")
        time.tzset()
        try:
            assert date.today() != danish_today  # the premise: the machine's day differs
            gln = next(g for g in sorted(base_registry.glns) if g not in base_registry.capabilities)
            # A version current on Denmark's day only: from today (the machine is a day
            # behind), or until tomorrow (the machine is a day ahead).
            entry = CapabilityVersion(
                capability=Capability(gln, "FDIS91", None),
                edi_type_id=None,
                valid_from=danish_today if behind else date(2020, 1, 1),
                valid_to=None if behind else danish_today + timedelta(days=1),
                offset="1",
                updated=datetime.now(UTC),
            )
            _store_base(app, base_registry)
            outcome = sync_incremental(app.uow_factory, _OneEntryFeed(entry))
        finally:
            monkeypatch.undo()
            time.tzset()
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        assert _current(app).message_types(gln) == ["FDIS91"]
