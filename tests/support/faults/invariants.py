"""The last good snapshot, and the one place that checks it survived a fault.

After any fault, :meth:`LastGood.assert_kept` checks, in this order:

1. the run: the newest ``sync_runs`` row is the faulted run, with the expected status and an
   error text carrying the expected reason;
2. nothing half-written: every data table (snapshots, unit/GLN/capability versions, change
   events, replication cursors, audit summaries) is row for row what it was before the fault;
   no version row or change event points past the current snapshot; every snapshot belongs to
   a succeeded run;
3. the snapshot: the current snapshot is the last good one and loads to the same registry;
4. the API, built before the fault and still running, answers from it: ``/readyz``,
   ``/v1/snapshots/current``, ``/v1/glns/{gln}`` and a routing decision.

Each check also fills in the case's :class:`~tests.support.faults.report.Record` for the docs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, or_, select

from soredi_sync.bootstrap import App
from soredi_sync.db.models import (
    AuditSummary,
    Base,
    CapabilityVersion,
    ChangeEvent,
    GlnVersion,
    ReplicationCursor,
    Snapshot,
    SyncRun,
    UnitVersion,
)
from soredi_sync.domain.model import Registry
from soredi_sync.ports.records import RunStatus, SnapshotInfo, SyncRunInfo
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.sync import SyncOutcome, sync_source
from tests.support.faults.report import Case, FaultReport, Record

# Every table a sync writes besides its own sync_runs row.
DATA_TABLES: tuple[type[Base], ...] = (
    Snapshot,
    UnitVersion,
    GlnVersion,
    CapabilityVersion,
    ChangeEvent,
    ReplicationCursor,
    AuditSummary,
)
VERSION_TABLES = (UnitVersion, GlnVersion, CapabilityVersion)


def fingerprint(app: App) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row, per data table, in primary-key order."""
    result: dict[str, tuple[int, str]] = {}
    with app.engine.connect() as conn:
        for model in DATA_TABLES:
            table = model.__table__
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256()
            for row in rows:
                digest.update(repr(tuple(row)).encode())
            result[table.name] = (len(rows), digest.hexdigest())
    return result


def half_written_rows(app: App, snapshot_id: int) -> list[str]:
    """Rows that only a snapshot after ``snapshot_id`` (or a failed run) could have left."""
    found: list[str] = []
    with app.uow() as uow:
        session = uow.session
        newer = session.scalar(select(func.count()).where(Snapshot.id > snapshot_id))
        if newer:
            found.append(f"{newer} snapshot(s) after {snapshot_id}")
        for model in VERSION_TABLES:
            count = session.scalar(
                select(func.count())
                .select_from(model)
                .where(or_(model.valid_from > snapshot_id, model.valid_to > snapshot_id))
            )
            if count:
                found.append(f"{count} {model.__tablename__} row(s) valid from/to a later snapshot")
        events = session.scalar(select(func.count()).where(ChangeEvent.snapshot_id > snapshot_id))
        if events:
            found.append(f"{events} change event(s) of a later snapshot")
        orphans = session.execute(
            select(Snapshot.id, SyncRun.status)
            .join(SyncRun, SyncRun.id == Snapshot.run_id, isouter=True)
            .where(or_(SyncRun.id.is_(None), SyncRun.status != RunStatus.SUCCEEDED))
        ).all()
        found.extend(f"snapshot {sid} belongs to a run that is {status}" for sid, status in orphans)
    return found


@dataclass
class LastGood:
    """Day 0 synced over HTTP from the loopback sandbox, the API running over it, day 1 served.

    Without a fault, the next sync would store day 1: whatever keeps it from doing so is the
    fault under test.
    """

    app: App
    files: SandboxServer
    api: TestClient
    token: str
    snapshot: SnapshotInfo
    registry: Registry
    probe_gln: str
    report: FaultReport
    test: str
    database: str
    before: dict[str, tuple[int, str]] = field(default_factory=dict)
    record: Record | None = None
    elapsed: float = 0.0  # seconds the last faulted sync took

    # -- acting ------------------------------------------------------------------------------

    def sync(self, **kwargs: Any) -> SyncOutcome:
        """A full sync of the files from the sandbox, as ``soredi-sync sync --base-url``."""
        client = self.app.files_client(base_url=self.files.base_url)
        with self.timed():
            return sync_source(self.app.uow_factory, client, self.app.sync_config(), **kwargs)

    @contextmanager
    def timed(self) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.elapsed = time.monotonic() - started

    def begin(self, case: Case) -> Record:
        """Start the report record of this test's fault."""
        self.record = self.report.add(Record(self.test, self.database, case.fault, case.injected))
        return self.record

    # -- checking ----------------------------------------------------------------------------

    def newest_run(self) -> SyncRunInfo:
        with self.app.uow() as uow:
            [run] = uow.runs.recent(1)
        return run

    def assert_kept(
        self,
        case: Case,
        status: RunStatus,
        *reasons: str,
        run_id: int | None = None,
        did: str = "",
    ) -> SyncRunInfo:
        """The fault left a recorded run with ``status`` and every fragment of ``reasons`` in
        its error, and the last good snapshot whole, unchanged and served."""
        record = self.record or self.begin(case)
        run = self.newest_run()
        record.status = run.status.value
        record.reason = run.error or ""
        record.did = did or record.did
        record.seconds = round(self.elapsed, 2)
        if record.data_lost == "not checked":
            record.data_lost = "CHECK FAILED"
        if run_id is not None:
            assert run.id == run_id, f"the newest run is {run.id}, not the faulted run {run_id}"
        assert run.id > self.snapshot.run_id
        assert run.status is status, f"run {run.id} is {run.status.value}: {run.error}"
        if status is not RunStatus.RUNNING:
            assert run.finished_at is not None
            assert run.snapshot_id is None or run.snapshot_id == self.snapshot.id
            assert run.error, "a failed or refused run must say why"
            for reason in reasons:
                assert reason.lower() in run.error.lower(), (reason, run.error)
        self.assert_snapshot_intact()
        self.assert_served()
        record.data_lost = "none"
        return run

    def assert_snapshot_intact(self) -> None:
        assert half_written_rows(self.app, self.snapshot.id) == []
        after = fingerprint(self.app)
        changed = sorted(name for name in after if after[name] != self.before[name])
        assert changed == [], f"data tables changed by the fault: {changed}"
        with self.app.uow() as uow:
            current = uow.registry.current_snapshot()
            assert current == self.snapshot
            assert uow.registry.load_registry(current.id) == self.registry

    def assert_served(self, snapshot_id: int | None = None) -> None:
        """The running API answers from the last good snapshot (or ``snapshot_id``)."""
        expected = self.snapshot.id if snapshot_id is None else snapshot_id
        auth = {"Authorization": f"Bearer {self.token}"}
        ready = self.api.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["snapshot_id"] == expected
        current = self.api.get("/v1/snapshots/current", headers=auth)
        assert current.status_code == 200, current.text
        assert current.json()["snapshot"]["id"] == expected
        if snapshot_id is None:
            body = current.json()["snapshot"]
            assert (body["unit_count"], body["gln_count"], body["capability_count"]) == (
                self.snapshot.unit_count,
                self.snapshot.gln_count,
                self.snapshot.capability_count,
            )
        gln = self.api.get(f"/v1/glns/{self.probe_gln}", headers=auth)
        assert gln.status_code == 200, gln.text
        assert gln.json()["snapshot"]["id"] == expected
        if snapshot_id is None:
            served = {m["message_type"] for m in gln.json()["message_types"]}
            assert served == set(self.registry.message_types(self.probe_gln))
        route = self.api.post(
            "/v1/route",
            headers=auth,
            json={
                "receiver": {"gln": self.probe_gln},
                "business_message": "correspondence",
                "sender_syntax": "fhir",
            },
        )
        assert route.status_code == 200, route.text
        assert route.json()["snapshot"]["id"] == expected

    def assert_recovers(self) -> SyncOutcome:
        """With the fault gone, the next sync stores the day the fault kept out."""
        outcome = self.sync()
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        assert outcome.snapshot is not None and outcome.snapshot.id > self.snapshot.id
        assert half_written_rows(self.app, outcome.snapshot.id) == []
        self.assert_served(outcome.snapshot.id)
        return outcome
