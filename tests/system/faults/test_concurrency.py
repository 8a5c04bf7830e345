"""Concurrency and the machine: racing syncs, an empty database, a full disk, a leader
takeover under a live CLI sync.

- Two syncs racing to store the same day: every writer of snapshots takes one lock (PostgreSQL
  advisory lock, SQLite ``BEGIN IMMEDIATE``) and re-reads the current snapshot under it, so the
  loser records "another sync stored a snapshot first" on both engines, never a unique-index
  violation.
- Two first syncs on an empty database: the schema is created under a migration lock
  (``db/schema.py``); the second process waits and finds it at head.
- A full disk: ``sync`` and ``status`` say so in one line (exit 1, no traceback); a sync that
  got its run recorded records the failure. SQLite's disk is filled for real: a child process
  whose file-size limit (``RLIMIT_FSIZE``) is 0, so that no file can grow (what 0 bytes free
  does), or ``PRAGMA max_page_count`` just above the database's size. PostgreSQL's disk cannot
  be filled without root: the server raises its own disk-full error (SQLSTATE 53100) from a
  trigger.
- A live CLI sync while a replica takes the lead: the sync renews its run's liveness lease
  (``services/liveness.py``), so the new leader leaves it alone; once its process is dead and
  the lease has run out, the leader closes it as abandoned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, make_url, select, text

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.daemon.jobs import Jobs
from soredi_sync.daemon.leader import Lease
from soredi_sync.db.models import LeaderLease
from soredi_sync.db.schema import schema_lock
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.sync import SyncOutcome, sync_source
from tests.support.faults.invariants import LastGood, half_written_rows
from tests.support.faults.processes import (
    PROJECT_ROOT,
    expire_run_leases,
    kill_9,
    start_slow_cli_sync,
)
from tests.support.faults.report import Case, FaultReport, Record
from tests.support.faults.settings import fault_settings

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRESQL_ONLY = pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgresql", marks=pytest.mark.external_service)],
    indirect=True,
)
ANOTHER_SYNC_FIRST = "another sync stored a snapshot first"
PG_DISK_FULL_FUNCTION = (
    "CREATE FUNCTION soredi_test_disk_full() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION 'could not extend file \"base/16384/16390\": No space left on device' "
    "USING ERRCODE = 'disk_full'; END $$ LANGUAGE plpgsql"
)

# Runs a command with RLIMIT_FSIZE set (and SIGXFSZ ignored): no write may take a file past
# that size, it fails with EFBIG as a write on a full disk fails with ENOSPC.
_LIMITED = (
    "import os, resource, signal, sys; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def _cli(database_url: str, *args: str, file_size_limit: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "soredi_sync", "--database-url", database_url, *args]
    if file_size_limit is None:
        return command
    return [sys.executable, "-c", _LIMITED, str(file_size_limit), *command]


def _run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOREDI_")}
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _runs(app: App) -> list[Any]:
    with app.uow() as uow:
        return list(reversed(uow.runs.recent(100)))


class TestRacingSyncs:
    def test_the_loser_of_two_syncs_storing_the_same_day_records_that_another_stored_first(
        self, last_good: LastGood, database_url: str
    ) -> None:
        case = Case(
            "two syncs racing",
            "two syncs of day 1 (threads, each with its own engine) held at the start of the "
            "store until both are there, then let go together",
        )
        record = last_good.begin(case)
        barrier = threading.Barrier(2, timeout=30)
        outcomes: list[SyncOutcome] = []
        errors: list[BaseException] = []

        def sync() -> None:
            def on_stage(name: str) -> None:
                if name == "store snapshot":
                    barrier.wait()

            try:
                with bootstrap(fault_settings(database_url)) as app:
                    client = app.files_client(base_url=last_good.files.base_url)
                    outcomes.append(
                        sync_source(app.uow_factory, client, app.sync_config(), on_stage=on_stage)
                    )
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=sync, name=f"sync-{n}") for n in range(2)]
        with last_good.timed():
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert errors == []
        [winner] = [o for o in outcomes if o.status is RunStatus.SUCCEEDED]
        [loser] = [o for o in outcomes if o is not winner]
        record.status, record.reason = loser.status.value, loser.error or ""
        assert loser.status is RunStatus.FAILED
        assert loser.error == (
            f"{ANOTHER_SYNC_FIRST} (snapshot {winner.snapshot.id}, while this one worked from "
            f"snapshot {last_good.snapshot.id}); nothing was stored, run again"
        )
        with last_good.app.uow() as uow:
            stored = uow.runs.get(loser.run_id)
            assert stored is not None and stored.error == loser.error
            assert stored.snapshot_id is None or stored.snapshot_id == winner.snapshot.id
            assert [s.id for s in uow.registry.list_snapshots()] == [
                winner.snapshot.id,
                last_good.snapshot.id,
            ]
        assert half_written_rows(last_good.app, winner.snapshot.id) == []
        last_good.assert_served(winner.snapshot.id)
        record.did = (
            f"the winner stored day 1 as snapshot {winner.snapshot.id}; the loser, diffed "
            f"against snapshot {last_good.snapshot.id}, waited for the lock, found snapshot "
            f"{winner.snapshot.id} and stored nothing; snapshot {winner.snapshot.id} served"
        )
        record.data_lost = "none"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external_service)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database kind, URL) of a database with no schema at all."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: str = request.getfixturevalue("postgres_url")
    name = f"soredi_empty_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield "postgresql", make_url(server).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class TestEmptyDatabase:
    def test_two_first_syncs_on_an_empty_database_create_the_schema_once_and_store_one_snapshot(
        self,
        empty_database: tuple[str, str],
        sandbox: Path,
        fault_report: FaultReport,
        request: pytest.FixtureRequest,
    ) -> None:
        kind, url = empty_database
        case = Case(
            "two first syncs on an empty database",
            "two `soredi-sync sync --from-dir day-0` processes started together on a database "
            "without tables, both let go at the same moment",
        )
        record = fault_report.add(
            Record(request.node.nodeid.replace(f"[{kind}]", ""), kind, case.fault, case.injected)
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOREDI_")}
        command = _cli(url, "sync", "--from-dir", str(sandbox / "day-000"))
        # Holding the migration lock while both start makes them meet at it: both find the
        # database empty, and both wait for the lock.
        with schema_lock(url):
            children = [
                subprocess.Popen(
                    command,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(2)
            ]
            time.sleep(3)  # both children import, connect and reach the lock
        outputs = [child.communicate(timeout=120)[0] for child in children]
        codes = [child.returncode for child in children]
        assert all("Traceback" not in out for out in outputs), outputs
        with bootstrap(fault_settings(url)) as app:
            runs = _runs(app)
            with app.uow() as uow:
                snapshots = uow.registry.list_snapshots()
        assert len(snapshots) == 1
        statuses = sorted(run.status.value for run in runs)
        assert len(runs) == 2 and statuses.count("succeeded") == 1, (statuses, codes, outputs)
        [second] = [run for run in runs if run.status is not RunStatus.SUCCEEDED]
        if second.status is RunStatus.FAILED:
            assert second.error is not None and second.error.startswith(ANOTHER_SYNC_FIRST)
            assert sorted(codes) == [0, 1]
        else:
            assert second.status is RunStatus.UNCHANGED
            assert codes == [0, 0]
        record.status = second.status.value
        record.reason = second.error or str(second.counts.get("reason") or "")
        record.did = (
            "the schema was created once, the other process waited for the migration lock and "
            f"found it at head; one snapshot stored; exit codes {sorted(codes)}, no traceback"
        )
        record.data_lost = "none"


class TestFullDisk:
    @SQLITE_ONLY
    def test_sync_and_status_with_no_room_on_the_disk_say_so_in_one_line_and_keep_the_data(
        self,
        database_url: str,
        sandbox: Path,
        fault_report: FaultReport,
        request: pytest.FixtureRequest,
    ) -> None:
        case = Case(
            "disk full (no room at all)",
            "`soredi-sync sync` and `status` as processes that cannot grow any file "
            "(RLIMIT_FSIZE 0: SQLite cannot create its shared-memory file), day 0 stored, "
            "no other process using the database",
        )
        record = fault_report.add(
            Record(request.node.nodeid.replace("[sqlite]", ""), "sqlite", case.fault, case.injected)
        )
        stored = _run(_cli(database_url, "sync", "--from-dir", str(sandbox / "day-000")))
        assert stored.returncode == 0, stored.stdout + stored.stderr
        for suffix in ("-wal", "-shm"):  # gone once the last connection closed
            assert not Path(make_url(database_url).database + suffix).exists()

        sync = _run(
            _cli(database_url, "sync", "--from-dir", str(sandbox / "day-001"), file_size_limit=0)
        )
        status = _run(_cli(database_url, "status", file_size_limit=0))

        for result, doing in (
            (sync, "opening it for the sync; no run was recorded"),
            (status, "reading the status"),
        ):
            assert result.returncode == 1
            assert "Traceback" not in result.stderr
            assert result.stderr.splitlines() == [
                f"error: the database failed while {doing}: disk I/O error (is the disk full?) "
                f"[{database_url}]"
            ]
        with bootstrap(fault_settings(database_url)) as app:
            runs = _runs(app)
            with app.uow() as uow:
                snapshots = uow.registry.list_snapshots()
        assert [r.status for r in runs] == [RunStatus.SUCCEEDED]  # day 0's; none recorded since
        assert [s.id for s in snapshots] == [runs[0].snapshot_id]
        record.status = "not recorded"
        record.reason = sync.stderr.strip()
        record.did = (
            "sync and status: exit 1 with that one line, no traceback; no run recorded (the "
            "database could not be opened); day 0 kept"
        )
        record.data_lost = "none"

    @SQLITE_ONLY
    def test_a_disk_that_fills_while_the_snapshot_is_stored_fails_the_run_and_keeps_day_0(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "disk full while storing",
            "SQLite limited to 1 page more than day 0 needs (`PRAGMA max_page_count`): "
            "room for the run's row, not for day 1",
        )
        engine = last_good.app.engine
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        limit = pages + 1

        def full_disk(dbapi_connection: Any, *_args: Any) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {limit}")

        event.listen(engine, "checkout", full_disk)
        try:
            outcome = last_good.sync()
        finally:
            event.remove(engine, "checkout", full_disk)
            engine.dispose()  # connections that kept the limit go
        assert outcome.status is RunStatus.FAILED
        assert outcome.error == (
            "the database failed while the sync was at 'store snapshot'; nothing was stored: "
            "database or disk is full (is the disk full?)"
        )
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "database or disk is full",
            run_id=outcome.run_id,
            did="the run recorded its failure; day 0 kept and served; with room again, the "
            "next sync stored day 1",
        )
        last_good.assert_recovers()

    @POSTGRESQL_ONLY
    def test_postgresql_out_of_disk_while_the_snapshot_is_stored_fails_the_run_and_keeps_day_0(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "disk full while storing (PostgreSQL)",
            "the server answers the snapshot's INSERT with its disk-full error (SQLSTATE 53100 "
            "`could not extend file …: No space left on device`, raised by a trigger)",
        )
        engine = last_good.app.engine
        with engine.begin() as conn:
            conn.exec_driver_sql(PG_DISK_FULL_FUNCTION)
            conn.exec_driver_sql(
                "CREATE TRIGGER soredi_test_disk_full BEFORE INSERT ON snapshots "
                "FOR EACH ROW EXECUTE FUNCTION soredi_test_disk_full()"
            )
        try:
            outcome = last_good.sync()
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TRIGGER soredi_test_disk_full ON snapshots")
                conn.exec_driver_sql("DROP FUNCTION soredi_test_disk_full()")
        assert outcome.status is RunStatus.FAILED
        assert outcome.error == (
            "the database failed while the sync was at 'store snapshot'; nothing was stored: "
            'could not extend file "base/16384/16390": No space left on device '
            "(is the disk full?)"
        )
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "No space left on device",
            run_id=outcome.run_id,
            did="the run recorded its failure; day 0 kept and served; with room again, the "
            "next sync stored day 1",
        )
        last_good.assert_recovers()


class TestNowhereToWrite:
    def test_when_even_the_failure_cannot_be_written_the_operator_is_told_and_the_run_closed_later(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "no write possible after the run started",
            "once the run is recorded, every write fails: SQLite connections turned read-only "
            "(`PRAGMA query_only`); PostgreSQL answering every snapshot INSERT and sync_runs "
            "UPDATE with its disk-full error (SQLSTATE 53100, from triggers)",
        )
        engine = last_good.app.engine
        postgres = engine.dialect.name == "postgresql"
        broken = threading.Event()

        def read_only(dbapi_connection: Any, *_args: Any) -> None:
            if broken.is_set():
                dbapi_connection.execute("PRAGMA query_only = 1")

        def break_writes(name: str) -> None:
            if broken.is_set() or not name.startswith("download"):
                return
            broken.set()
            if postgres:
                with engine.begin() as conn:
                    conn.exec_driver_sql(PG_DISK_FULL_FUNCTION)
                    for table, op in (("snapshots", "INSERT"), ("sync_runs", "UPDATE")):
                        conn.exec_driver_sql(
                            f"CREATE TRIGGER soredi_test_disk_full BEFORE {op} ON {table} "
                            "FOR EACH ROW EXECUTE FUNCTION soredi_test_disk_full()"
                        )

        if not postgres:
            event.listen(engine, "checkout", read_only)
        try:
            outcome = last_good.sync(on_stage=break_writes)
        finally:
            if postgres:
                with engine.begin() as conn:
                    for table in ("snapshots", "sync_runs"):
                        conn.exec_driver_sql(f"DROP TRIGGER soredi_test_disk_full ON {table}")
                    conn.exec_driver_sql("DROP FUNCTION soredi_test_disk_full()")
            else:
                event.remove(engine, "checkout", read_only)
                engine.dispose()
        assert outcome.status is RunStatus.FAILED
        assert outcome.error is not None
        assert outcome.error.startswith(
            "the database failed while the sync was at 'store snapshot'; nothing was stored: "
        )
        assert "; the failure could not be recorded either (" in outcome.error
        assert outcome.error.endswith(
            f": run {outcome.run_id} stays 'running' until a daemon leader closes it as abandoned"
        )
        assert last_good.newest_run().status is RunStatus.RUNNING
        expire_run_leases(last_good.app)  # in case the process could not release it either
        _take_over(last_good.app)
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "abandoned",
            run_id=outcome.run_id,
            did=f"the sync returned (CLI: exit 1) “{outcome.error}”; the run stayed `running` "
            "until its lease was gone and the leader recorded it as abandoned; day 0 kept and "
            "served; the next sync stored day 1",
        )
        last_good.assert_recovers()


def _take_over(app: App) -> None:
    """A replica becomes leader (and sweeps abandoned runs), then steps down."""
    jobs = Jobs(app, Lease(app.session_factory, holder="next-leader", ttl=60))
    jobs.refresh_lease()
    assert jobs.lease.is_leader
    jobs.lease.release()


def _lease_holder(app: App, run_id: int) -> str | None:
    with app.uow() as uow:
        return uow.session.scalar(
            select(LeaderLease.holder).where(LeaderLease.name == f"run:{run_id}")
        )


class TestLeaderTakeover:
    def test_a_live_cli_sync_survives_a_leader_takeover_and_stores_its_day(
        self,
        last_good: LastGood,
        database_url: str,
        spawn: Callable[..., subprocess.Popen[str]],
    ) -> None:
        case = Case(
            "leader takeover under a live CLI sync",
            "`soredi-sync sync --base-url …` as a process (sor.zip answers after 5 s); a "
            "replica takes the lead while it downloads",
        )
        record = last_good.begin(case)
        child, run = start_slow_cli_sync(last_good, database_url, spawn, delay=5)
        holder = _lease_holder(last_good.app, run.id)
        assert holder is not None and holder.endswith(f":{child.pid}")
        _take_over(last_good.app)
        assert last_good.newest_run().status is RunStatus.RUNNING
        assert child.wait(60) == 0
        finished = last_good.newest_run()
        assert finished.id == run.id and finished.status is RunStatus.SUCCEEDED
        assert finished.error is None
        assert _lease_holder(last_good.app, run.id) is None  # released at the end
        assert half_written_rows(last_good.app, finished.snapshot_id or 0) == []
        last_good.assert_served(finished.snapshot_id)
        record.status, record.reason = finished.status.value, ""
        record.did = (
            "the new leader left the run alone (its lease, renewed by the sync's process, had "
            f"not run out); the sync stored day 1 as snapshot {finished.snapshot_id}"
        )
        record.data_lost = "none"

    def test_a_dead_cli_sync_is_closed_by_the_leader_only_once_its_lease_has_run_out(
        self,
        last_good: LastGood,
        database_url: str,
        spawn: Callable[..., subprocess.Popen[str]],
    ) -> None:
        case = Case(
            "leader takeover after a CLI sync died",
            "`soredi-sync sync --base-url …` killed (-9) during its download; a replica takes "
            "the lead before and after the run's lease runs out",
        )
        child, run = start_slow_cli_sync(last_good, database_url, spawn, delay=30)
        kill_9(child)
        _take_over(last_good.app)
        assert last_good.newest_run().status is RunStatus.RUNNING  # the lease still holds
        expire_run_leases(last_good.app)
        _take_over(last_good.app)
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "abandoned",
            run_id=run.id,
            did="while its lease held, the leader left the run alone; once it ran out, the "
            "leader recorded it as failed; day 0 kept and served; the next sync stored day 1",
        )
        with last_good.app.uow() as uow:
            leases = uow.session.scalars(
                select(LeaderLease.name).where(LeaderLease.name.startswith("run:"))
            ).all()
        assert leases == []
        last_good.files.clear_faults()
        last_good.assert_recovers()
