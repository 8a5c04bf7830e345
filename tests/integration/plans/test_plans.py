"""Change plans on the tiny sandbox (both engines): create, submit, verify after the next day.

Day 1 of the sandbox switches some GLNs to CareCommunication (the manifest lists the capability
rows added and removed); a plan built on day 0 for their owners must see exactly those items
confirmed after day 1 is synced, and the rest still pending.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from soredi_sync.bootstrap import App
from soredi_sync.domain.audit import OwnerKind
from soredi_sync.domain.model import Capability, Gln, Registry
from soredi_sync.domain.plans import (
    ItemState,
    PlanAction,
    gln_owners,
    institution_owners,
    verify_item,
)
from soredi_sync.errors import NotFound
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.plans import (
    PlanRequestError,
    create_plan,
    get_plan,
    plan_events,
    submit_plan,
    verify_open_plans,
    verify_plan,
)
from tests.support.app import current_view, plan_uow, sync_day
from tests.support.sandbox import SWITCHED

# -- verification rules (pure) -------------------------------------------------------------------


def _registry(active: bool = True, types: tuple[str, ...] = ()) -> Registry:
    gln = "5790000000005"
    return Registry(
        units={},
        glns={gln: Gln(gln, active=active)},
        capabilities={gln: {t: Capability(gln, t) for t in types}},
    )


class TestVerifyItem:
    G = "5790000000005"

    def test_add_is_confirmed_once_the_type_is_there(self) -> None:
        sub = ItemState.SUBMITTED
        assert verify_item(self.G, PlanAction.ADD, "FDIS91", sub, _registry()) is ItemState.PENDING
        registry = _registry(types=("FDIS91",))
        assert verify_item(self.G, PlanAction.ADD, "FDIS91", sub, registry) is ItemState.CONFIRMED

    def test_remove_is_confirmed_once_the_type_is_gone(self) -> None:
        sub = ItemState.SUBMITTED
        with_type = _registry(types=("XDIS91",))
        assert verify_item(self.G, PlanAction.REMOVE, "XDIS91", sub, with_type) is (
            ItemState.PENDING
        )
        assert verify_item(self.G, PlanAction.REMOVE, "XDIS91", sub, _registry()) is (
            ItemState.CONFIRMED
        )

    def test_a_missing_or_inactive_gln_diverges(self) -> None:
        sub = ItemState.PENDING
        empty = Registry(units={}, glns={}, capabilities={})
        assert verify_item(self.G, PlanAction.ADD, "FCTL", sub, empty) is ItemState.DIVERGED
        inactive = _registry(active=False, types=("FCTL",))
        assert verify_item(self.G, PlanAction.ADD, "FCTL", sub, inactive) is ItemState.DIVERGED

    def test_a_confirmed_change_that_is_reversed_diverges(self) -> None:
        done = ItemState.CONFIRMED
        assert verify_item(self.G, PlanAction.ADD, "FCTL", done, _registry()) is (
            ItemState.DIVERGED
        )
        back = _registry(types=("XDIS91",))
        assert verify_item(self.G, PlanAction.REMOVE, "XDIS91", done, back) is ItemState.DIVERGED


# -- building plans ---------------------------------------------------------------------------


class TestCreate:
    def test_switch_plan_adds_fdis91_and_fctl_and_removes_legacy_on_active_glns(
        self, day0: App
    ) -> None:
        view = current_view(day0)
        owner = gln_owners(view)[SWITCHED[0]].sor_id
        with plan_uow(day0) as uow:
            plan = create_plan(
                uow,
                day0.reference.audit_context,
                actor="tester",
                owners=[owner],
                switch_to="carecommunication",
            )
        assert plan.owners == (owner,) and plan.goal == "switch-to:carecommunication"
        assert plan.items and all(i.state is ItemState.PLANNED for i in plan.items)
        owners = gln_owners(view)
        expected: set[tuple[str, str, str]] = set()
        for gln, record in view.registry.glns.items():
            types = view.types_of(gln)
            legacy = types & view.legacy_correspondence
            if owners.get(gln) is None or owners[gln].sor_id != owner:
                continue
            if not record.active or not legacy:
                continue
            if "FDIS91" not in types:
                expected.add((gln, "add", "FDIS91"))
            if "FCTL" not in types:
                expected.add((gln, "add", "FCTL"))
            expected |= {(gln, "remove", t) for t in legacy}
        assert {(i.gln, i.action.value, i.message_type) for i in plan.items} == expected
        assert {i.owner_sor_id for i in plan.items} == {owner}

    @pytest.mark.parametrize(
        ("code", "action", "types"),
        [("FDIS91_WITH_LEGACY", "remove", {"DIS91", "XDIS91"}), ("FHIR_WITHOUT_FCTL", "add", None)],
    )
    def test_plans_from_findings_resolve_the_planted_findings(
        self, day0: App, manifest: Manifest, code: str, action: str, types: set[str] | None
    ) -> None:
        with plan_uow(day0) as uow:
            plan = create_plan(
                uow,
                day0.reference.audit_context,
                actor="tester",
                owner_kind="municipality",
                findings=code,
            )
            everyone = [o.sor_id for o in institution_owners(current_view(day0)).values()]
            plan_all = create_plan(
                uow, day0.reference.audit_context, actor="t", owners=everyone, findings=code
            )
        assert {i.gln for i in plan_all.items} == set(manifest.day(0).defects[code])
        assert {i.action.value for i in plan_all.items} == {action}
        assert {i.reason for i in plan_all.items} == {code}
        if types is None:
            assert {i.message_type for i in plan_all.items} == {"FCTL"}
        else:
            assert {i.message_type for i in plan_all.items} <= types
        assert {i.key for i in plan.items} <= {
            (i.gln, i.message_type, i.action.value) for i in plan_all.items
        }

    def test_owner_kind_municipality_covers_every_municipal_owner(self, day0: App) -> None:
        view = current_view(day0)
        municipal = {
            o.sor_id for o in institution_owners(view).values() if o.kind is OwnerKind.MUNICIPALITY
        }
        assert municipal
        with plan_uow(day0) as uow:
            plan = create_plan(
                uow,
                day0.reference.audit_context,
                actor="medcom",
                owner_kind="municipality",
                switch_to="carecommunication",
            )
        assert set(plan.owners) == municipal and plan.owner_kind == "municipality"
        assert plan.items and {i.owner_sor_id for i in plan.items} <= municipal

    def test_bad_requests_are_refused(self, day0: App) -> None:
        ctx = day0.reference.audit_context
        with plan_uow(day0) as uow:
            with pytest.raises(NotFound):
                create_plan(uow, ctx, actor="t", owners=["999"], switch_to="carecommunication")
            with pytest.raises(PlanRequestError):
                create_plan(
                    uow,
                    ctx,
                    actor="t",
                    owner_kind="municipality",
                    switch_to="carecommunication",
                    findings="FHIR_WITHOUT_FCTL",
                )
            with pytest.raises(PlanRequestError):
                create_plan(uow, ctx, actor="t", owner_kind="municipality", findings="BAD_CODE")
            with pytest.raises(PlanRequestError):
                create_plan(uow, ctx, actor="t", switch_to="carecommunication")


# -- submit and verify ------------------------------------------------------------------------


class TestSubmitAndVerify:
    def test_plan_on_day_zero_is_confirmed_as_the_manifest_says_after_day_one(
        self, day0: App, sandbox_dir: Path, manifest: Manifest, tmp_path: Path
    ) -> None:
        view = current_view(day0)
        owners = sorted({gln_owners(view)[g].sor_id for g in SWITCHED})
        ctx = day0.reference.audit_context
        with plan_uow(day0) as uow:
            plan = create_plan(
                uow, ctx, actor="region", owners=owners, switch_to="carecommunication"
            )
            with pytest.raises(PlanRequestError, match="needs a SORUS client"):
                submit_plan(uow, plan.id, "sorus", actor="region")
            out = tmp_path / "worklist.csv"
            submitted = submit_plan(uow, plan.id, "worklist", actor="region", out=out)
            assert {i.state for i in submitted.items} == {ItemState.SUBMITTED}
            rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
            assert len(rows) == len(plan.items)
            # Nothing has changed yet: every item is pending on day 0.
            result = verify_plan(uow, plan.id, actor="region")
            assert result.counts["pending"] == len(plan.items)

        sync_day(day0, sandbox_dir, 1)
        with plan_uow(day0) as uow:
            results = verify_open_plans(uow)
            assert [r.plan_id for r in results] == [plan.id]
            after = get_plan(uow, plan.id)
            events = plan_events(uow, plan.id)

        changes = manifest.day(1).changes_from_previous_day["capabilities"]["ids"]
        added, removed = set(changes["added"]), set(changes["removed"])
        confirmed = {
            (i.gln, i.message_type, i.action.value)
            for i in plan.items
            if f"{i.gln}:{i.message_type}" in (added if i.action is PlanAction.ADD else removed)
        }
        assert confirmed, "day 1 should switch some GLN of these owners"
        assert {i.key for i in after.items if i.state is ItemState.CONFIRMED} == confirmed
        assert {i.state for i in after.items if i.key not in confirmed} <= {ItemState.PENDING}
        assert {i.verified_snapshot_id for i in after.items} == {results[0].snapshot_id}

        actions = [(e.action, e.actor) for e in events if e.item_id is None]
        assert actions == [
            ("created", "region"),
            ("submitted", "region"),
            ("verified", "region"),
            ("verified", "sync"),
        ]
        item_events = [e for e in events if e.item_id is not None and e.action == "verified"]
        # planned→submitted, submitted→pending (day 0), pending→confirmed (day 1) per item.
        assert len([e for e in item_events if e.to_state == "confirmed"]) == len(confirmed)
        assert all(e.at.tzinfo is not None for e in events)

    def test_verify_open_plans_ignores_unsubmitted_plans(self, day0: App) -> None:
        view = current_view(day0)
        owner = gln_owners(view)[SWITCHED[0]].sor_id
        with plan_uow(day0) as uow:
            create_plan(
                uow,
                day0.reference.audit_context,
                actor="t",
                owners=[owner],
                switch_to="carecommunication",
            )
            assert verify_open_plans(uow) == []


# -- command line ---------------------------------------------------------------------------


class TestCli:
    def test_create_show_export_submit_verify(
        self,
        cli,
        day0: App,
        tmp_path: Path,
    ) -> None:
        owner = gln_owners(current_view(day0))[SWITCHED[0]].sor_id
        created = json.loads(
            cli(
                "plan",
                "create",
                "--owner",
                owner,
                "--switch-to",
                "carecommunication",
                "--actor",
                "alice",
                "--json",
            ).stdout
        )
        plan_id = str(created["id"])
        assert created["created_by"] == "alice" and created["counts"]["planned"] > 0
        assert "planned" in cli("plan", "show", plan_id).stdout

        csv_out, xlsx_out = tmp_path / "w.csv", tmp_path / "w.xlsx"
        cli("plan", "export", plan_id, "--format", "csv", "--out", str(csv_out))
        cli("plan", "export", plan_id, "--format", "xlsx", "--out", str(xlsx_out))
        rows = list(csv.DictReader(io.StringIO(csv_out.read_text(encoding="utf-8"))))
        expected = [
            {
                "gln": i["gln"],
                "owner": i["owner_sor_id"],
                "action": i["action"],
                "message_type": i["message_type"],
                "version": i["version_code"] or "",
                "reason": i["reason"],
            }
            for i in created["items"]
        ]
        assert rows == expected
        sheet = load_workbook(xlsx_out).active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        assert list(values[0]) == list(expected[0])
        assert [
            dict(zip(values[0], (v or "" for v in row), strict=True)) for row in values[1:]
        ] == expected
        assert all(isinstance(row[0], str) for row in values[1:])  # GLNs stay text

        sorus = cli("plan", "submit", plan_id, "--channel", "sorus", expect=1)
        assert "SORUS has no endpoint configured" in sorus.output
        assert "SOREDI_SOAP__SORUS__ADDRESS" in sorus.output
        out = tmp_path / "submitted.csv"
        cli("plan", "submit", plan_id, "--channel", "worklist", "--out", str(out), "--actor", "bob")
        assert out.read_text(encoding="utf-8").startswith("gln,owner,action")
        verified = json.loads(cli("plan", "verify", plan_id, "--json").stdout)
        assert verified["counts"]["pending"] == len(created["items"])
        shown = json.loads(cli("plan", "show", plan_id, "--json").stdout)
        assert {e["actor"] for e in shown["events"]} >= {"alice", "bob"}

    def test_a_sync_that_stores_a_snapshot_verifies_the_open_plans(
        self, cli, day0: App, sandbox_dir: Path
    ) -> None:
        owners = sorted({gln_owners(current_view(day0))[g].sor_id for g in SWITCHED})
        args = [a for owner in owners for a in ("--owner", owner)]
        created = json.loads(
            cli("plan", "create", *args, "--switch-to", "carecommunication", "--json").stdout
        )
        plan_id = str(created["id"])
        unsubmitted = json.loads(
            cli("plan", "create", *args, "--switch-to", "carecommunication", "--json").stdout
        )
        cli("plan", "submit", plan_id, "--channel", "worklist")
        synced = cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
        assert f"plan {plan_id} verified on snapshot" in synced.stdout
        assert f"plan {unsubmitted['id']} verified" not in synced.stdout
        shown = json.loads(cli("plan", "show", plan_id, "--json").stdout)
        assert shown["counts"]["confirmed"] > 0 and shown["counts"]["submitted"] == 0
        assert "sync" in {e["actor"] for e in shown["events"]}
        again = cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
        assert "verified" not in again.stdout  # nothing new stored, nothing judged again

    def test_unknown_plan_and_owner(self, cli, day0: App) -> None:
        cli("plan", "show", "999", expect=4)
        cli("plan", "verify", "999", expect=4)
        cli("plan", "create", "--owner", "999", "--switch-to", "carecommunication", expect=4)
        cli("plan", "create", "--switch-to", "carecommunication", expect=2)
