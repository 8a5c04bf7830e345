"""Fast service tests on the in-memory fakes of the storage ports (no database): a clock, a
fake unit of work on it, the shipped audit context."""

from __future__ import annotations

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.audit import AuditContext
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.reference_data import ReferenceData
from tests.support.fakes import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uow(clock: Clock) -> FakeUnitOfWork:
    return FakeUnitOfWork(clock)


@pytest.fixture(scope="session")
def context() -> AuditContext:
    return ReferenceData.load(config_dir()).audit_context
