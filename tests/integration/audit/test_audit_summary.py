"""Audit summaries (both engines): stored once per snapshot, read back by the adoption series."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from soredi_sync.bootstrap import App
from soredi_sync.db.models import AuditOwnerSummary, AuditSummary
from soredi_sync.domain.audit import AdoptionDimension, OwnerKind, Severity
from soredi_sync.errors import NoSnapshot
from soredi_sync.services import queries
from soredi_sync.services.audit import (
    adoption_series,
    record_summary,
    run_audit,
    stored_owner_adoption,
    stored_owner_severities,
)
from soredi_sync.services.tokens import create_token
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

    def test_recording_twice_replaces_the_owner_rows_too(self, app: App, sandbox_dir: Path) -> None:
        sync_day(app, sandbox_dir, 0)
        with app.uow() as uow:
            first = record_summary(uow, app.reference.audit_context)
            record_summary(uow, app.reference.audit_context)
            rows = uow.session.query(AuditOwnerSummary).count()
            counted = uow.session.scalar(select(AuditSummary.owner_rows))
        assert first.owners > 0
        assert rows == first.owners and counted == rows

    def test_without_a_snapshot_there_is_nothing_to_summarise(self, app: App) -> None:
        with app.uow() as uow, pytest.raises(NoSnapshot):
            record_summary(uow, app.reference.audit_context)


def _owners_with_figures(app: App, *kinds: OwnerKind) -> list[str]:
    """The owners of ``kinds`` (default: regions and municipalities) with findings."""
    wanted = set(kinds or (OwnerKind.REGION, OwnerKind.MUNICIPALITY))
    with app.uow() as uow:
        current = uow.registry.current_snapshot()
        assert current is not None
        findings = app.audit_cache.findings(uow, app.reference.audit_context, current)
    return sorted({f.owner.sor_id for f in findings if f.owner and f.owner.kind in wanted})


class TestPerOwnerFigures:
    """A restricted token's figures are sums of the owners' stored rows: they must be what
    counting the snapshot for those owners gives, on every dimension."""

    def test_each_owners_stored_adoption_equals_counting_the_snapshot_for_it(
        self, app: App, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        context = app.reference.audit_context
        sync_day(app, sandbox_dir, 0)
        sync_day(app, sandbox_dir, 1)
        owners = _owners_with_figures(app)
        scopes = [{o} for o in owners] + [set(owners[:3]), set(owners)]
        dimensions = (None, *AdoptionDimension)
        with app.uow() as uow:
            counted = {
                (i, by): queries.adoption_by_snapshot(uow, context, owners=scope, by=by)
                for i, scope in enumerate(scopes)
                for by in dimensions
            }
            for snapshot in uow.registry.list_snapshots():
                record_summary(uow, context, snapshot.id)

        def refuse(_snapshot_id: int) -> None:
            raise AssertionError("loaded a registry")

        with app.uow() as uow:
            monkeypatch.setattr(uow.registry, "load_registry", refuse)
            stored = {
                (i, by): queries.adoption_by_snapshot(uow, context, owners=scope, by=by)
                for i, scope in enumerate(scopes)
                for by in dimensions
            }
        assert len(owners) >= 3
        assert stored == counted
        assert any(e.counts for entries in stored.values() for e in entries)

    def test_an_owners_stored_findings_by_severity_equal_its_audit(
        self, app: App, sandbox_dir: Path
    ) -> None:
        context = app.reference.audit_context
        sync_day(app, sandbox_dir, 0)
        owners = _owners_with_figures(app)
        with app.uow() as uow:
            summary = record_summary(uow, context)
            for scope in [{o} for o in owners] + [set(owners[1:4])]:
                found = queries.scoped_audit(uow, context, owners=scope, cache=app.audit_cache)
                expected = {s.value: 0 for s in Severity}
                for finding in found.findings:
                    expected[finding.severity.value] += 1
                stored = stored_owner_severities(uow, summary.snapshot_id, scope)
                assert stored == expected, scope

    def test_a_summary_without_owner_rows_is_counted_instead(
        self, app: App, sandbox_dir: Path
    ) -> None:
        context = app.reference.audit_context
        sync_day(app, sandbox_dir, 0)
        owner = _owners_with_figures(app)[0]
        with app.uow() as uow:
            counted = queries.adoption_by_snapshot(uow, context, owners={owner})
            snapshot = uow.registry.current_snapshot()
            assert snapshot is not None
            # As a summary stored before the per-owner rows existed.
            uow.audits.save_summary(
                snapshot.id, computed_at=snapshot.taken_at, findings={}, adoption={}
            )
            uow.commit()
            assert stored_owner_severities(uow, snapshot.id, {owner}) is None
            assert queries.adoption_by_snapshot(uow, context, owners={owner}) == counted

    def test_another_owner_is_stored_once_a_token_is_restricted_to_it(
        self, app: App, sandbox_dir: Path
    ) -> None:
        context = app.reference.audit_context
        sync_day(app, sandbox_dir, 0)
        private = _owners_with_figures(app, OwnerKind.PRIVATE)[0]
        with app.uow() as uow:
            summary = record_summary(uow, context)
            counted = queries.adoption_by_snapshot(uow, context, owners={private})
            assert stored_owner_severities(uow, summary.snapshot_id, {private}) is None
        create_token(app.uow, ["audit:read"], [private], "a practice's own token")
        with app.uow() as uow:
            record_summary(uow, context)
            assert stored_owner_severities(uow, summary.snapshot_id, {private}) is not None
            stored = stored_owner_adoption(uow, [summary.snapshot_id], {private})
        assert [e.counts for e in counted] == [stored[summary.snapshot_id]]


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
