"""Fixtures of the fault suite: a breakable copy of the sandbox, served on loopback, and the
last good snapshot (day 0) synced from it on the test database, with the API running over it.

Every test runs on SQLite and, when ``TEST_DATABASE_URL`` is set, on PostgreSQL (through
``database_url``). Timeouts are short and retries do not wait, so a fault that the retry policy
gives up on costs well under a second.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.ports.records import RunStatus
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import create_token
from tests.support.api import api_uow, make_client
from tests.support.faults.invariants import LastGood, fingerprint
from tests.support.faults.processes import PROJECT_ROOT
from tests.support.faults.report import REPORT_ENV, FaultReport
from tests.support.faults.settings import PROBE_GLN, fault_settings


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    """Collects what every case observed; added to the file ``SOREDI_FAULT_REPORT`` names."""
    report = FaultReport()
    yield report
    target = os.environ.get(REPORT_ENV)
    if target:
        report.add_to(Path(target))


@pytest.fixture
def sandbox(sandbox_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the generated sandbox (days 0..2) that the test may break."""
    target = tmp_path / "sandbox"
    shutil.copytree(sandbox_dir, target)
    return target


@pytest.fixture
def day1(sandbox: Path) -> Path:
    """The folder of the day the fault hits."""
    return sandbox / "day-001"


@pytest.fixture
def files(sandbox: Path) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox, day=0) as server:
        yield server


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    with bootstrap(fault_settings(database_url)) as application:
        yield application


def _case_name(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(the test's id without the database, the database)."""
    callspec = getattr(request.node, "callspec", None)
    database = str(callspec.params.get("database_url", "?")) if callspec else "?"
    name = re.sub(rf"\[{database}\]|(?<=\[){database}-|-{database}(?=\])", "", request.node.nodeid)
    return name, database


@pytest.fixture
def last_good(
    app: App, files: SandboxServer, fault_report: FaultReport, request: pytest.FixtureRequest
) -> Iterator[LastGood]:
    """Day 0 stored over HTTP; the API started over it; the sandbox now serves day 1."""
    client = app.files_client(base_url=files.base_url)
    outcome = sync_source(app.uow_factory, client, app.sync_config())
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.snapshot is not None
    with app.uow() as uow:
        registry = uow.registry.load_registry(outcome.snapshot.id)
    token = create_token(api_uow(app), ["registry:read", "route:read"], (), "fault-suite").token
    test, database = _case_name(request)
    with make_client(app) as api:
        good = LastGood(
            app=app,
            files=files,
            api=api,
            token=token,
            snapshot=outcome.snapshot,
            registry=registry,
            probe_gln=PROBE_GLN,
            report=fault_report,
            test=test,
            database=database,
        )
        good.assert_served()
        good.before = fingerprint(app)
        files.set_day(1)
        files.clear_requests()
        yield good


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a Python child in the project root without the caller's SOREDI_* settings; every
    child still alive at the end is killed."""
    children: list[subprocess.Popen[str]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOREDI_")}

    def start(*args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
