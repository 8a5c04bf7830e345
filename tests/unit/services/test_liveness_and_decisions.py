"""Sync-run bookkeeping (liveness leases, recording a failure) and the decision log, on the
fakes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import OperationalError

from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import DecisionEntry, RunStatus
from soredi_sync.services.decision_log import DecisionLog, decisions_since, purge_decisions
from soredi_sync.services.liveness import kept_alive, lease_until, record_run_failure
from tests.support.factories import registry, unit
from tests.support.fakes import START, Clock, store


def _start(uow: FakeUnitOfWork, clock: Clock) -> int:
    with uow:
        run_id = uow.runs.start(
            "sor-filer", "sandbox", "test", holder="host:1", lease_until=lease_until(120, clock)
        )
        uow.commit()
    return run_id


def test_a_kept_alive_run_holds_its_lease_until_the_block_ends(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    run_id = _start(uow, clock)
    with kept_alive(lambda: uow, run_id, holder="host:1", ttl=120, clock=clock):
        assert uow.runs.leases[run_id] == ("host:1", START + timedelta(seconds=120))
    assert run_id not in uow.runs.leases


def test_only_runs_whose_lease_ran_out_are_closed_as_abandoned(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    dead = _start(uow, clock)
    clock.advance(seconds=100)
    alive = _start(uow, clock)
    with uow:
        closed = uow.runs.close_abandoned("gone", now=START + timedelta(seconds=150))
        uow.commit()
    assert closed == [dead]
    assert uow.runs.runs[dead].status is RunStatus.FAILED
    assert uow.runs.runs[alive].status is RunStatus.RUNNING


def test_a_failure_is_recorded_with_the_snapshot_current_afterwards(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    snapshot = store(uow, registry([unit("1")], []))
    run_id = _start(uow, clock)
    clock.advance(seconds=5)
    current, message = record_run_failure(
        lambda: uow, run_id, RunStatus.FAILED, "feed broke", counts={"entries": 3}
    )
    assert (current, message) == (snapshot, "feed broke")
    run = uow.runs.runs[run_id]
    assert (run.status, run.error, run.counts, run.snapshot_id) == (
        RunStatus.FAILED,
        "feed broke",
        {"entries": 3},
        snapshot.id,
    )
    assert run.duration_seconds == 5


class BrokenDisk(FakeUnitOfWork):
    def commit(self) -> None:
        raise OperationalError("COMMIT", {}, Exception("database or disk is full"))


def test_a_failure_the_database_cannot_record_leaves_the_run_running(clock: Clock) -> None:
    uow = BrokenDisk(clock)
    run_id = uow.runs.start("sor-filer", "sandbox", "test")
    FakeUnitOfWork.commit(uow)
    current, message = record_run_failure(lambda: uow, run_id, RunStatus.FAILED, "parse error")
    assert current is None
    assert "could not be recorded either (database or disk is full)" in message
    assert uow.runs.runs[run_id].status is RunStatus.RUNNING


def _entry(clock: Clock, minutes: float) -> DecisionEntry:
    return DecisionEntry(
        decided_at=clock.now + timedelta(minutes=minutes),
        caller="ehr",
        token_id=None,
        message_id=f"m{minutes}",
        receiver_gln=None,
        receiver_sor_id="1",
        business_message="correspondence",
        sender_syntax="fhir",
        outcome="deliver",
        reason=None,
        message_type="FDIS91",
        address_sor_id="1",
        address_gln=None,
        snapshot_id=1,
    )


def test_the_decision_log_writes_its_buffer_in_one_transaction(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    log = DecisionLog(lambda: uow)
    for minutes in (0, 1, 2):
        log.record(_entry(clock, minutes))
    assert uow.decisions.entries == []  # recording never touches storage
    assert log.flush() == 3 and log.pending == 0
    assert uow.commits == 1
    since = decisions_since(lambda: uow, clock.now + timedelta(minutes=1))
    assert [e.message_id for e in since] == ["m1", "m2"]
    assert purge_decisions(lambda: uow, clock.now + timedelta(minutes=2)) == 2
    assert [e.message_id for e in uow.decisions.entries] == ["m2"]


class Flaky(FakeUnitOfWork):
    """Cannot commit while ``away``."""

    away = True

    def commit(self) -> None:
        if self.away:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        super().commit()


def test_the_decision_log_keeps_its_buffer_while_the_database_is_away(clock: Clock) -> None:
    uow = Flaky(clock)
    log = DecisionLog(lambda: uow, max_pending=2)
    for minutes in (0, 1, 2):
        log.record(_entry(clock, minutes))
    assert log.flush() == 0 and log.pending == 2  # the oldest kept, the third dropped
    assert uow.decisions.entries == []
    uow.away = False
    assert log.flush() == 2
    assert [e.message_id for e in uow.decisions.entries] == ["m0", "m1"]


def test_a_batch_of_decisions_is_buffered_at_once_up_to_the_cap_and_wakes_the_writer(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    log = DecisionLog(lambda: uow, batch_size=3, max_pending=4)
    woken: list[int] = []
    log.on_backlog = lambda: woken.append(log.pending)
    log.record_many([_entry(clock, minutes) for minutes in (0, 1)])
    assert woken == [] and uow.decisions.entries == []
    log.record_many([_entry(clock, minutes) for minutes in (2, 3, 4)])
    assert woken == [4]  # the backlog reached batch_size: the writer is woken once
    assert log.flush() == 4  # the fifth did not fit
    assert [e.message_id for e in uow.decisions.entries] == ["m0", "m1", "m2", "m3"]
