"""The hand-made directory of ``tests/support/fhir_directory.py`` recorded on ``synced_app``'s
two snapshots, and a token that reads all of it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from soredi_sync.bootstrap import App
from tests.support.api import bearer
from tests.support.fhir_api import Headers
from tests.support.fhir_directory import Directory, record_directory


@pytest.fixture
def directory(synced_app: App) -> Directory:
    with synced_app.uow() as uow:
        second, first = uow.registry.list_snapshots(2)
    return record_directory(synced_app.uow, first, second)


@pytest.fixture
def reader(directory: Directory, issue: Callable[..., str]) -> Headers:
    """``registry:read``, every owner."""
    return bearer(issue("registry:read"))
