"""Audit summaries (both engines): stored once per snapshot, read back by the adoption series."""

from __future__ import annotations

from pathlib import Path

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.db.models import AuditSummary
from soredi_sync.errors import NoSnapshot
from soredi_sync.services.audit import adoption_series, record_summary, run_audit
from tests.support.app import sync_day
from tests.support.cli_runner import Cli


class TestRecordSummary:
    def test_the_summary_holds_the_audit_counts_of_the_snapshot(
        self, app: App, sandbox_dir: Path
    ) -> None:
        sync_day(app, sandbox_dir, 0)
        context = app.reference.audit_context
        with app.uow() as uow:
            outcome = record_summary(uow, context)
            report = run_audit(uow, context)
        assert outcome.snapshot_id == report.snapshot.id
        assert outcome.findings == report.counts
        assert sum(outcome.adoption.values()) > 0

    def test_the_adoption_series_reads_stored_summaries_and_matches_a_fresh_count(
        self, app: App, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        context = app.reference.audit_context
        dimensions = (None, "region", "owner-type", "vans")
        sync_day(app, sandbox_dir, 0)
        sync_day(app, sandbox_dir, 1)
        with app.uow() as uow:
            fresh = {by: adoption_series(uow, context, by=by) for by in dimensions}
            for snapshot, _counts in fresh[None]:
                record_summary(uow, context, snapshot.id)

        def refuse(_snapshot_id: int) -> None:
            raise AssertionError("loaded a registry")

        for by in dimensions:
            with app.uow() as uow:
                # With every snapshot summarised, no registry needs loading.
                monkeypatch.setattr(uow.registry, "load_registry", refuse)
                stored = adoption_series(uow, context, by=by)
            assert len(stored) == 2
            assert [(s.id, c) for s, c in stored] == [(s.id, c) for s, c in fresh[by]]

    def test_recording_twice_replaces_the_summary(self, app: App, sandbox_dir: Path) -> None:
        sync_day(app, sandbox_dir, 0)
        with app.uow() as uow:
            first = record_summary(uow, app.reference.audit_context)
            again = record_summary(uow, app.reference.audit_context)
            rows = uow.session.query(AuditSummary).all()
        assert first == again and len(rows) == 1

    def test_without_a_snapshot_there_is_nothing_to_summarise(self, app: App) -> None:
        with app.uow() as uow, pytest.raises(NoSnapshot):
            record_summary(uow, app.reference.audit_context)


class TestAfterTheSyncCommand:
    def test_each_snapshot_the_sync_command_stores_gets_its_summary(
        self, cli: Cli, app: App, sandbox_dir: Path
    ) -> None:
        cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
        cli("sync", "--from-dir", str(sandbox_dir / "day-000"))  # unchanged: nothing new stored
        cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
        with app.uow() as uow:
            stored = uow.audits.adoption("all")
            recounted = record_summary(uow, app.reference.audit_context)
        assert sorted(stored) == [1, 2]
        assert recounted.snapshot_id == 2 and stored[2]["all"] == recounted.adoption
