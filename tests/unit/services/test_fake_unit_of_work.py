"""The fake unit of work behaves like the real one where services rely on it."""

from __future__ import annotations

from soredi_sync.ports.fakes import FakeUnitOfWork
from tests.support.factories import registry, unit
from tests.support.fakes import START, store


def test_uncommitted_work_is_rolled_back_on_leaving() -> None:
    uow = FakeUnitOfWork()
    with uow:
        uow.tokens.add("hash", "ops", ["route:read"], [], START)
    with uow:
        assert uow.tokens.list() == []
    assert uow.commits == 0 and not uow.committed


def test_committed_work_stays_and_later_changes_can_be_rolled_back() -> None:
    uow = FakeUnitOfWork()
    first = store(uow, registry([unit("1")], []))
    with uow:
        run_id = uow.runs.start("sor-filer", "sandbox", "test")
        uow.rollback()
        assert uow.runs.get(run_id) is None
        assert uow.registry.current_snapshot() == first
    assert uow.commits == 1
