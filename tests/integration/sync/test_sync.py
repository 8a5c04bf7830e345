"""Sync end to end on SQLite and PostgreSQL: from generated files into the versioned store."""

from __future__ import annotations

import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.daemon.jobs import Jobs
from soredi_sync.daemon.leader import Lease
from soredi_sync.db.models import LeaderLease
from soredi_sync.db.run_repository import run_lease_name
from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.liveness import process_name
from soredi_sync.services.sync import sync_source
from tests.support.app import make_settings
from tests.support.waiting import wait_until

HOUR = timedelta(hours=1)


def _sync(app: App, directory: Path, **kwargs):
    client = app.files_client(from_dir=directory)
    return sync_source(app.uow_factory, client, app.sync_config(), **kwargs)


def _day(sandbox_dir: Path, day: int) -> Path:
    return sandbox_dir / f"day-{day:03d}"


def _current(app: App):
    with app.uow() as uow:
        snap = uow.registry.current_snapshot()
        return snap, (uow.registry.load_registry(snap.id) if snap else None)


class TestFirstSync:
    def test_the_first_pull_stores_a_baseline_matching_the_generated_files(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        outcome = _sync(app, _day(sandbox_dir, 0))
        assert outcome.status is RunStatus.SUCCEEDED
        expected = manifest.day(0).counts
        snap, registry = _current(app)
        assert snap.baseline
        assert len(registry.units) == expected["units"] == snap.unit_count
        assert len(registry.glns) == expected["glns"]
        assert registry.capability_count == expected["capabilities"]
        assert str(snap.effective_date) == manifest.day(0).snapshot_date

    def test_the_same_files_again_are_recognised_as_unchanged(
        self, app: App, sandbox_dir: Path
    ) -> None:
        first = _sync(app, _day(sandbox_dir, 0))
        again = _sync(app, _day(sandbox_dir, 0))
        assert again.status is RunStatus.UNCHANGED
        assert again.snapshot.id == first.snapshot.id
        with app.uow() as uow:
            assert len(uow.registry.list_snapshots()) == 1


class TestNextDay:
    def test_the_changes_stored_are_exactly_those_the_generator_made(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _sync(app, _day(sandbox_dir, 0))
        outcome = _sync(app, _day(sandbox_dir, 1))
        assert outcome.status is RunStatus.SUCCEEDED
        expected = manifest.day(1).changes_from_previous_day
        with app.uow() as uow:
            events = uow.registry.changes_since(0, limit=100_000)
        stored: dict[str, dict[str, list[str]]] = {}
        for event in events:
            stored.setdefault(
                {"unit": "units", "gln": "glns", "capability": "capabilities"}[event.entity],
                {"added": [], "removed": [], "changed": []},
            )[event.kind].append(event.key)
        for entity in ("units", "glns", "capabilities"):
            for kind in ("added", "removed", "changed"):
                assert sorted(stored.get(entity, {}).get(kind, [])) == sorted(
                    expected[entity]["ids"][kind]
                ), (entity, kind)

    def test_the_previous_day_stays_queryable_by_date(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        from datetime import date

        from soredi_sync.services import queries

        _sync(app, _day(sandbox_dir, 0))
        _sync(app, _day(sandbox_dir, 1))
        changed_gln = manifest.day(1).changes_from_previous_day["glns"]["ids"]["changed"][0]
        with app.uow() as uow:
            then = queries.show_gln(
                uow, changed_gln, date.fromisoformat(manifest.day(0).snapshot_date)
            )
            now = queries.show_gln(uow, changed_gln)
        assert then.snapshot.id != now.snapshot.id
        assert then.gln != now.gln


class TestFailClosed:
    def _broken_copy(self, sandbox_dir: Path, tmp_path: Path, breaker) -> Path:
        target = tmp_path / "broken"
        shutil.copytree(_day(sandbox_dir, 1), target)
        breaker(target)
        return target

    def _assert_kept(self, app: App, outcome, before) -> None:
        snap, registry = _current(app)
        assert snap.id == before[0].id
        assert registry == before[1]
        with app.uow() as uow:
            run = uow.runs.get(outcome.run_id)
        assert run.status is outcome.status
        assert run.error

    def test_a_corrupt_zip_fails_the_run_and_keeps_the_snapshot(
        self, app: App, sandbox_dir: Path, tmp_path: Path
    ) -> None:
        _sync(app, _day(sandbox_dir, 0))
        before = _current(app)
        broken = self._broken_copy(
            sandbox_dir, tmp_path, lambda d: (d / "sor.zip").write_bytes(b"PK\x03\x04garbage")
        )
        outcome = _sync(app, broken)
        assert outcome.status is RunStatus.FAILED
        self._assert_kept(app, outcome, before)

    def test_a_truncated_zip_fails_the_run_and_keeps_the_snapshot(
        self, app: App, sandbox_dir: Path, tmp_path: Path
    ) -> None:
        _sync(app, _day(sandbox_dir, 0))
        before = _current(app)

        def truncate(d: Path) -> None:
            data = (d / "Sor_complete.zip").read_bytes()
            (d / "Sor_complete.zip").write_bytes(data[: len(data) // 2])

        outcome = _sync(app, self._broken_copy(sandbox_dir, tmp_path, truncate))
        assert outcome.status is RunStatus.FAILED
        self._assert_kept(app, outcome, before)

    def test_an_xml_with_a_doctype_is_refused_before_anything_is_stored(
        self, app: App, sandbox_dir: Path, tmp_path: Path
    ) -> None:
        _sync(app, _day(sandbox_dir, 0))
        before = _current(app)

        def xxe(d: Path) -> None:
            with zipfile.ZipFile(d / "sor.zip", "w") as zf:
                zf.writestr(
                    "Sor.xml",
                    '<?xml version="1.0"?><!DOCTYPE SorTree [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    '<SorTree xmlns="urn:oio:sundhedsstyrelsen:organisation:1.0.0">&x;</SorTree>',
                )

        outcome = _sync(app, self._broken_copy(sandbox_dir, tmp_path, xxe))
        assert outcome.status is RunStatus.FAILED
        assert "passwd" not in "".join(str(v) for v in before[1].units.values())
        self._assert_kept(app, outcome, before)

    def test_a_missing_file_fails_the_run(self, app: App, tmp_path: Path) -> None:
        outcome = _sync(app, tmp_path)
        assert outcome.status is RunStatus.FAILED
        assert "does not exist" in outcome.error
        assert _current(app)[0] is None


class TestMassChangeGuard:
    def test_a_pull_removing_too_much_is_refused_then_stored_when_accepted(
        self, database_url: str, sandbox_dir: Path
    ) -> None:
        strict = make_settings(database_url)
        strict.guards.max_capability_removal_ratio = 0.0
        strict.guards.max_gln_removal_ratio = 0.0
        with bootstrap(strict) as app:
            _sync(app, _day(sandbox_dir, 0))
            before = _current(app)
            refused = _sync(app, _day(sandbox_dir, 1))
            assert refused.status is RunStatus.REFUSED
            assert "would be removed" in refused.error
            assert "--accept-mass-change" in refused.error
            assert _current(app)[0].id == before[0].id

            accepted = _sync(app, _day(sandbox_dir, 1), accept_mass_change=True)
            assert accepted.status is RunStatus.SUCCEEDED
            with app.uow() as uow:
                assert uow.runs.get(accepted.run_id).accepted_mass_change


class TestConsistentReads:
    def test_a_reader_sees_the_old_snapshot_whole_while_a_new_one_is_uncommitted(
        self, app: App, sandbox_dir: Path
    ) -> None:
        from soredi_sync.domain.diff import diff
        from soredi_sync.parsing.load import load_registry_from_dir

        _sync(app, _day(sandbox_dir, 0))
        old_snap, old_registry = _current(app)
        settings = app.settings
        new_registry = load_registry_from_dir(
            _day(sandbox_dir, 1),
            sources=settings.sources,
            columns=app.reference.csv_columns,
            guards=settings.guards,
            message_types=app.reference.message_types,
        )
        with app.uow() as writer:
            run_id = writer.runs.start("sor-filer", "test", "test")
            writer.registry.add_snapshot(
                new_registry,
                diff(old_registry, new_registry),
                run_id=run_id,
                source="sor-filer",
                content_hash="0" * 64,
                baseline=False,
            )
            writer.session.flush()
            # A second connection, while the write transaction is open and uncommitted.
            reader_snap, reader_registry = _current(app)
            assert reader_snap.id == old_snap.id
            assert reader_registry == old_registry
            writer.commit()
        new_snap, stored = _current(app)
        assert new_snap.id > old_snap.id
        assert stored.capabilities == new_registry.capabilities
        with app.uow() as uow:
            # The old snapshot is still readable whole after the commit.
            assert uow.registry.load_registry(old_snap.id) == old_registry


def _sor2_style(source: Path, target: Path, header_renames: dict[str, str]) -> Path:
    """A copy of a day's files whose CSVs carry other headers and an Excel guard on every
    value (``="…"``), as files exported through a spreadsheet do."""
    import csv
    import io

    shutil.copytree(source, target)
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(source / "Sor_complete.zip") as archive:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith(".csv"):
                rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
                header = [header_renames.get(name, name) for name in rows[0]]
                body = [[f'="{value}"' if value else "" for value in row] for row in rows[1:]]
                out = io.StringIO()
                csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([header, *body])
                data = out.getvalue().encode("utf-8")
            members[info.filename] = data
    with zipfile.ZipFile(target / "Sor_complete.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


class TestSor2StyleFiles:
    def test_sor_id_style_headers_and_excel_guards_store_what_the_plain_files_store(
        self, app: App, sandbox_dir: Path, tmp_path: Path
    ) -> None:
        from soredi_sync.parsing.load import load_registry_from_dir

        styled = _sor2_style(
            _day(sandbox_dir, 0),
            tmp_path / "sor2",
            {"LocationCode": "EanLocationCode", "SorIdentifier": "SorId"},
        )
        outcome = _sync(app, styled)
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        _snap, stored = _current(app)
        assert stored == load_registry_from_dir(_day(sandbox_dir, 0))
        with app.uow() as uow:
            run = uow.runs.get(outcome.run_id)
        assert run is not None
        csv_files = run.counts["csv"]
        assert csv_files["LocationsCodes.csv"]["headers"]["gln"] == "EanLocationCode"
        assert csv_files["LocationsCodes.csv"]["headers"]["sor_id"] == "SorId"
        assert csv_files["LocationsCodeEDITypeMap.csv"]["headers"]["gln"] == "EanLocationCode"
        assert csv_files["EDITypes.csv"]["headers"]["id"] == "EDITypeId"
        assert all(report["excel_guards"] > 0 for report in csv_files.values())

    def test_a_gln_column_under_an_unknown_header_still_fails_the_pull(
        self, app: App, sandbox_dir: Path, tmp_path: Path
    ) -> None:
        styled = _sor2_style(
            _day(sandbox_dir, 0), tmp_path / "unknown", {"LocationCode": "GlnNumber"}
        )
        outcome = _sync(app, styled)
        assert outcome.status is RunStatus.FAILED
        assert outcome.error is not None
        assert "lacks required column(s) 'LocationCode (or EanLocationCode)'" in outcome.error
        assert "header names come from [gln_edi_types] in config/csv-columns.toml" in (
            outcome.error
        )
        assert _current(app) == (None, None)


def _lease(app: App, run_id: int) -> tuple[str, datetime, datetime] | None:
    with app.uow() as uow:
        row = uow.session.get(LeaderLease, run_lease_name(run_id))
        return (row.holder, row.renewed_at, row.expires_at) if row else None


class TestRunLiveness:
    def test_a_running_sync_renews_its_lease_and_gives_it_up_when_it_ends(
        self, app: App, sandbox_dir: Path
    ) -> None:
        seen: list[tuple[str, datetime, datetime]] = []

        def on_stage(name: str) -> None:
            if name == "parse and validate":
                with app.uow() as uow:
                    [run] = uow.runs.recent(1)
                first = _lease(app, run.id)
                assert first is not None and first[0] == process_name()
                seen.append(first)
                # Held here until the lease thread has renewed it at least once.
                seen.append(
                    wait_until(
                        lambda: (now := _lease(app, run.id)) and now[1] > first[1] and now,
                        30,
                        "a renewal",
                    )
                )

        client = app.files_client(from_dir=_day(sandbox_dir, 0))
        outcome = sync_source(
            app.uow_factory, client, app.sync_config(), on_stage=on_stage, lease_seconds=0.4
        )
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        assert seen[1][2] > seen[0][2]  # pushed forward
        assert _lease(app, outcome.run_id) is None

    def test_the_leader_closes_runs_without_a_live_lease_and_leaves_the_others(
        self, app: App
    ) -> None:
        now = datetime.now(UTC)
        with app.uow() as uow:
            live = uow.runs.start("sor-filer", "x", "cli", holder="h:1", lease_until=now + HOUR)
            lapsed = uow.runs.start("sor-filer", "x", "cli", holder="h:2", lease_until=now - HOUR)
            leaseless = uow.runs.start("sor-filer", "x", "cli")  # recorded by an older version
            done = uow.runs.start("sor-filer", "x", "cli", holder="h:3", lease_until=now - HOUR)
            uow.runs.finish(done, RunStatus.SUCCEEDED)
            uow.commit()
        jobs = Jobs(app, Lease(app.session_factory, holder="leader", ttl=60))
        jobs.refresh_lease()
        with app.uow() as uow:
            status = {run.id: (run.status, run.error) for run in uow.runs.recent(10)}
        abandoned = (RunStatus.FAILED, "abandoned: the process running it ended before it finished")
        assert status == {
            live: (RunStatus.RUNNING, None),
            lapsed: abandoned,
            leaseless: abandoned,
            done: (RunStatus.SUCCEEDED, None),
        }
        assert _lease(app, live) is not None
        assert _lease(app, lapsed) is None and _lease(app, done) is None
        jobs.lease.release()
