"""End to end, both engines: plan -> SORUS -> the sandbox's next day -> sync -> verified.

Everything runs on loopback: the HTTP sandbox serves the files of a freshly generated tiny
sandbox, the SOAP sandbox linked to it plays SORUS, and the project's own clients do the rest.
The plan's owners are chosen so that the sandbox's own day-1 churn would NOT make the changes:
only the SORUS submission can confirm them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.domain.plans import ItemState, gln_owners, verify_item
from soredi_sync.sandbox.generate import expected_registry, generate
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.sandbox.soap import SoapSandboxServer
from soredi_sync.services.plans import create_plan, submit_plan, verify_open_plans
from soredi_sync.services.sync import sync_source
from soredi_sync.soap.skrs import make_skrs_client
from soredi_sync.soap.sorus import make_sorus_client
from tests.support.app import current_view, make_settings, plan_uow
from tests.support.cli_runner import Cli

SEED = 11


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[SandboxServer, SoapSandboxServer]]:
    """A fresh sandbox per test: SORUS submissions rewrite its future days."""
    generate(tmp_path / "sandbox", profile="tiny", seed=SEED, days=2)
    with SandboxServer(tmp_path / "sandbox") as files, SoapSandboxServer(files=files) as soap:
        yield files, soap


@pytest.fixture
def e2e_app(database_url: str, sandbox: tuple[SandboxServer, SoapSandboxServer]) -> Iterator[App]:
    files, soap = sandbox
    settings = make_settings(database_url)
    settings.sources.base_url = files.base_url
    settings.soap.sorus.address = soap.url("sorus")
    settings.soap.skrs.address = soap.url("skrs")
    settings.soap.retry = settings.retry
    with bootstrap(settings) as app:
        yield app


def _sync(app: App) -> Any:
    outcome = sync_source(app.uow_factory, app.files_client(), app.sync_config())
    assert outcome.ok, outcome.error
    return outcome


def _untouched_owner(app: App) -> str:
    """An institution owner with a plan to make, none of whose changes day 1 makes by itself."""
    view = current_view(app)
    day1 = expected_registry("tiny", SEED, 1)
    owners = gln_owners(view)
    for owner in sorted({o.sor_id for o in owners.values()}):
        with plan_uow(app) as uow:
            plan = create_plan(
                uow,
                app.reference.audit_context,
                actor="probe",
                owners=[owner],
                switch_to="carecommunication",
            )
        states = {
            verify_item(i.gln, i.action, i.message_type, ItemState.SUBMITTED, day1)
            for i in plan.items
        }
        if len(plan.items) >= 3 and states == {ItemState.PENDING}:
            return owner
    raise AssertionError("no owner whose plan day 1 leaves untouched")


class TestPlanThroughSorus:
    def test_submitted_changes_appear_in_the_next_day_and_the_plan_is_confirmed(
        self, e2e_app: App, sandbox: tuple[SandboxServer, SoapSandboxServer]
    ) -> None:
        files, _soap = sandbox
        _sync(e2e_app)
        owner = _untouched_owner(e2e_app)
        with plan_uow(e2e_app) as uow:
            plan = create_plan(
                uow,
                e2e_app.reference.audit_context,
                actor="region",
                owners=[owner],
                switch_to="carecommunication",
            )
            submitted = submit_plan(uow, plan.id, "sorus", actor="region", sorus=e2e_app.sorus())
        assert {i.state for i in submitted.items} == {ItemState.SUBMITTED}

        # Same day: SOR has not published anything yet.
        with plan_uow(e2e_app) as uow:
            (still,) = [r for r in verify_open_plans(uow) if r.plan_id == plan.id]
        assert still.counts["pending"] == len(plan.items)

        files.set_day(1)
        outcome = _sync(e2e_app)
        assert outcome.changes is not None and not outcome.changes.is_empty
        with plan_uow(e2e_app) as uow:
            (result,) = [r for r in verify_open_plans(uow) if r.plan_id == plan.id]
        assert result.counts["confirmed"] == len(plan.items)

        # The replication feed of the new day carries the same changes.
        feed = [
            e
            for page in make_skrs_client(e2e_app.settings.soap).pages(None)
            for e in page.entries
            if e.is_current_on(outcome.snapshot.source_date)  # type: ignore[union-attr]
        ]
        advertised = {(e.capability.gln, e.capability.message_type) for e in feed}
        for item in plan.items:
            present = (item.gln, item.message_type) in advertised
            assert present is (item.action.value == "add"), item

    def test_rejected_changes_stay_rejected_and_are_not_published(
        self, e2e_app: App, sandbox: tuple[SandboxServer, SoapSandboxServer]
    ) -> None:
        from soredi_sync.soap.records import ChangeAction, EdiTypeChange

        files, _soap = sandbox
        _sync(e2e_app)
        receipt = make_sorus_client(e2e_app.settings.soap).submit(
            "by hand", [EdiTypeChange("1", "5790000000005", ChangeAction.ADD, "FDIS91")]
        )
        assert [r.accepted for r in receipt.results] == [False]
        files.set_day(1)
        _sync(e2e_app)
        with e2e_app.uow() as uow:
            snapshot = uow.registry.current_snapshot()
            assert snapshot is not None
            assert "5790000000005" not in uow.registry.load_registry(snapshot.id).glns


class TestCommandLine:
    def test_plan_submit_sorus_then_the_next_days_sync_reports_the_plan_confirmed(
        self,
        cli: Cli,
        database_url: str,
        sandbox: tuple[SandboxServer, SoapSandboxServer],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        files, soap = sandbox
        monkeypatch.setenv("SOREDI_SOAP__SORUS__ADDRESS", soap.url("sorus"))
        cli("sync", "--base-url", files.base_url)
        with bootstrap(make_settings(database_url)) as app:
            owner = _untouched_owner(app)
        created = json.loads(
            cli(
                "plan", "create", "--owner", owner, "--switch-to", "carecommunication", "--json"
            ).stdout
        )
        plan_id = str(created["id"])
        submitted = cli("plan", "submit", plan_id, "--channel", "sorus")
        assert f"{len(created['items'])} items submitted via sorus" in submitted.stdout
        files.set_day(1)
        synced = cli("sync", "--base-url", files.base_url)
        assert f"plan {plan_id} verified" in synced.stdout
        shown = json.loads(cli("plan", "show", plan_id, "--json").stdout)
        assert shown["counts"]["confirmed"] == len(created["items"])
        receipts = {
            e["details"].get("receipt") for e in shown["events"] if e["to_state"] == "submitted"
        }
        assert len(receipts) == 1 and None not in receipts
