"""The life of a recorded run (``services/runs.py``), on the fakes."""

from __future__ import annotations

import logging

import pytest

from soredi_sync.errors import InvalidSourceData, MassChangeRefused, SorediError
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import RunStatus, SnapshotInfo
from soredi_sync.services.runs import RunSpec, recorded_run
from tests.support.factories import registry, unit
from tests.support.fakes import store

SPEC = RunSpec("sor-filer", "sandbox", "test")
log = logging.getLogger("soredi_sync.tests.runs")


class Explained(SorediError):
    pass


class TestRecordedRun:
    def test_the_run_is_running_with_a_lease_inside_the_block_and_loses_it_after(
        self, uow: FakeUnitOfWork
    ) -> None:
        with recorded_run(lambda: uow, SPEC, lambda u: u.runs.recent(1), log=log) as run:
            assert uow.runs.runs[run.id].status is RunStatus.RUNNING
            assert run.id in uow.runs.leases
            # Read in the transaction that recorded the start: the run itself is there.
            assert [r.id for r in run.at_start] == [run.id]
        assert run.id not in uow.runs.leases
        assert run.failure is None

    def test_a_soredi_error_is_recorded_as_failed_and_swallowed(self, uow: FakeUnitOfWork) -> None:
        with recorded_run(lambda: uow, SPEC, lambda u: None, log=log) as run:
            raise InvalidSourceData("the files", ["a bad row"])
        assert run.failure is not None
        assert run.failure.status is RunStatus.FAILED
        assert run.failure.error == str(InvalidSourceData("the files", ["a bad row"]))
        stored = uow.runs.runs[run.id]
        assert (stored.status, stored.error) == (RunStatus.FAILED, run.failure.error)
        assert run.id not in uow.runs.leases

    def test_a_mass_change_is_recorded_as_refused(self, uow: FakeUnitOfWork) -> None:
        with recorded_run(lambda: uow, SPEC, lambda u: None, log=log) as run:
            raise MassChangeRefused(["too much"])
        assert run.failure is not None and run.failure.status is RunStatus.REFUSED
        assert uow.runs.runs[run.id].status is RunStatus.REFUSED

    def test_a_bug_is_recorded_with_its_type_and_re_raised(self, uow: FakeUnitOfWork) -> None:
        with (
            pytest.raises(KeyError),
            recorded_run(lambda: uow, SPEC, lambda u: None, log=log) as run,
        ):
            raise KeyError("x")
        assert uow.runs.runs[run.id].status is RunStatus.FAILED
        assert uow.runs.runs[run.id].error == "KeyError: 'x'"
        assert run.id not in uow.runs.leases

    def test_what_explain_makes_of_an_exception_is_recorded_and_swallowed(
        self, uow: FakeUnitOfWork
    ) -> None:
        def explain(exc: BaseException) -> SorediError | None:
            return Explained(f"explained {exc}") if isinstance(exc, OSError) else None

        with recorded_run(lambda: uow, SPEC, lambda u: None, log=log, explain=explain) as run:
            raise OSError("disk")
        assert run.failure is not None and run.failure.error == "explained disk"
        assert uow.runs.runs[run.id].error == "explained disk"

    def test_failure_counts_are_recorded_with_the_snapshot_current_then(
        self, uow: FakeUnitOfWork
    ) -> None:
        snapshot: SnapshotInfo = store(uow, registry([unit("1")], []))
        with recorded_run(
            lambda: uow,
            SPEC,
            lambda u: None,
            log=log,
            failure_counts=lambda: {"pages": 2},
        ) as run:
            raise InvalidSourceData("the feed")
        assert run.failure is not None
        assert (run.failure.snapshot, run.failure.counts) == (snapshot, {"pages": 2})
        stored = uow.runs.runs[run.id]
        assert (stored.counts, stored.snapshot_id) == ({"pages": 2}, snapshot.id)

    def test_a_failure_without_failure_counts_records_only_its_error(
        self, uow: FakeUnitOfWork
    ) -> None:
        store(uow, registry([unit("1")], []))
        with recorded_run(lambda: uow, SPEC, lambda u: None, log=log) as run:
            raise InvalidSourceData("the files")
        assert run.failure is not None and run.failure.counts == {}
        assert uow.runs.runs[run.id].snapshot_id is None

    def test_the_start_and_the_failure_are_logged_by_the_callers_logger(
        self, uow: FakeUnitOfWork, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger=log.name)
        spec = RunSpec("skrs", "SKRS replication", "test", what="incremental sync run")
        with recorded_run(lambda: uow, spec, lambda u: None, log=log) as run:
            raise InvalidSourceData("the feed")
        lines = [(r.name, r.getMessage()) for r in caplog.records]
        assert (log.name, f"Incremental sync run {run.id} started from SKRS replication") in lines
        assert run.failure is not None
        assert (
            log.name,
            f"Incremental sync run {run.id} failed: {run.failure.error}",
        ) in lines
