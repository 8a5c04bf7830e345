"""The cut-over report on the tiny sandbox: who is lost when the conversions end."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.domain.audit import AuditView
from soredi_sync.domain.routing import (
    ConversionStep,
    Decision,
    Resolver,
    RouteRequest,
    RoutingPolicy,
)
from soredi_sync.services.cutover import CutoverReport, cutover
from soredi_sync.services.sync import sync_source
from tests.support.cli_runner import Cli

CUTOVER = date(2027, 1, 4)
LAST_DAY = date(2026, 12, 31)


@pytest.fixture
def resolver(app: App, sandbox_dir: Path) -> Resolver:
    for day in (0, 1):
        outcome = sync_source(
            app.uow_factory,
            app.files_client(from_dir=sandbox_dir / f"day-{day:03d}"),
            app.sync_config(),
        )
        assert outcome.ok, outcome.error
    return app.routing().resolver()


@pytest.fixture
def today(app: App, resolver: Resolver) -> date:
    with app.uow() as uow:
        info = uow.registry.get_snapshot(resolver.index.snapshot.id)
    assert info is not None
    return info.effective_date


def run(
    app: App, resolver: Resolver, on: date, today: date, owners: list[str] | None = None
) -> CutoverReport:
    return cutover(
        resolver, on, audit_context=app.reference.audit_context, owners=owners, today=today
    )


def receivers_by_kind(app: App, resolver: Resolver, today: date) -> dict[str, set[str]]:
    """Active correspondence receivers: FHIR only, legacy only, both."""
    view = AuditView(resolver.index.registry, app.reference.audit_context, today)
    kinds: dict[str, set[str]] = {"fhir_only": set(), "legacy_only": set(), "both": set()}
    for gln, record in resolver.index.registry.glns.items():
        types = view.types_of(gln)
        fhir = bool(types & view.fhir_correspondence)
        legacy = bool(types & view.legacy_correspondence)
        if not record.active or not (fhir or legacy):
            continue
        kinds["both" if fhir and legacy else "fhir_only" if fhir else "legacy_only"].add(gln)
    return kinds


def delivered(resolver: Resolver, syntax: str, gln: str, day: date) -> bool:
    decision = resolver.resolve(RouteRequest("correspondence", syntax, gln, at=day), day)
    return decision.decision is Decision.DELIVER


def lost_glns(report: CutoverReport, syntax: str) -> set[str]:
    return {r.gln for r in report.lost_for(syntax)}


class TestCutover:
    def test_before_the_conversions_end_nobody_is_lost(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        report = run(app, resolver, LAST_DAY, today)
        assert report.receivers > 0
        assert report.counts == {"fhir": 0, "oioxml": 0, "edifact": 0}

    def test_after_the_end_fhir_senders_lose_every_legacy_only_receiver_they_reach_today(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        kinds = receivers_by_kind(app, resolver, today)
        report = run(app, resolver, CUTOVER, today)
        reached = {g for g in kinds["legacy_only"] if delivered(resolver, "fhir", g, today)}
        assert reached
        assert lost_glns(report, "fhir") == reached
        assert report.counts["fhir"] == len(reached)
        for receiver in report.lost_for("fhir"):
            assert receiver.reached_today_by == ("fhir->oioxml",)
            assert "XDIS91" in receiver.message_types

    def test_after_the_end_legacy_senders_lose_every_fhir_only_receiver_they_reach_today(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        kinds = receivers_by_kind(app, resolver, today)
        report = run(app, resolver, CUTOVER, today)
        reached = {g for g in kinds["fhir_only"] if delivered(resolver, "oioxml", g, today)}
        assert reached
        # FHIR-only receivers, and those taking FHIR and only the *other* legacy syntax.
        assert reached <= lost_glns(report, "oioxml") <= kinds["fhir_only"] | kinds["both"]
        for receiver in report.lost_for("oioxml"):
            assert "FDIS91" in receiver.message_types
            assert "XDIS91" not in receiver.message_types

    def test_receivers_taking_both_fhir_and_the_senders_syntax_are_never_lost(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        view = AuditView(resolver.index.registry, app.reference.audit_context, today)
        both = receivers_by_kind(app, resolver, today)["both"]
        with_xdis91 = {g for g in both if "XDIS91" in view.types_of(g)}
        assert with_xdis91
        report = run(app, resolver, CUTOVER, today)
        assert not lost_glns(report, "fhir") & both
        assert not lost_glns(report, "oioxml") & with_xdis91

    def test_without_an_agreement_edifact_senders_reach_nobody_by_conversion_so_lose_nobody(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        assert run(app, resolver, CUTOVER, today).counts["edifact"] == 0

    def test_an_agreement_with_a_vans_makes_its_fhir_only_receivers_lost_to_edifact(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        kinds = receivers_by_kind(app, resolver, today)
        glns = resolver.index.registry.glns
        vans = sorted(v for g in kinds["fhir_only"] if (v := glns[g].vans))[0]
        policy = replace(
            resolver.policy,
            agreements={vans: frozenset({"edifact->oioxml", "oioxml->edifact"})},
        )
        agreed = Resolver(resolver.index, policy, resolver.message_types)
        report = run(app, agreed, CUTOVER, today)
        lost = report.lost_for("edifact")
        assert lost
        assert {r.vans for r in lost} == {vans}
        assert {r.gln for r in lost} <= kinds["fhir_only"]
        assert all(r.reached_today_by == ("edifact->oioxml", "oioxml->fhir") for r in lost)

    def test_a_later_configured_end_date_moves_the_cutover(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        steps = tuple(
            replace(s, valid_to=date(2027, 6, 30)) if s.valid_to else s
            for s in resolver.policy.conversions
        )
        policy: RoutingPolicy = replace(resolver.policy, conversions=steps)
        later = Resolver(resolver.index, policy, resolver.message_types)
        assert sum(run(app, later, CUTOVER, today).counts.values()) == 0
        assert run(app, later, date(2027, 7, 1), today).counts["fhir"] > 0

    def test_a_receiver_without_a_vans_is_not_lost_because_it_was_never_reached(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        index = resolver.index
        kinds = receivers_by_kind(app, resolver, today)
        gln = sorted(kinds["legacy_only"])[0]
        record = index.registry.glns[gln]
        registry = replace(
            index.registry, glns={**index.registry.glns, gln: replace(record, vans=None)}
        )
        stripped = Resolver(
            replace(index, registry=registry), resolver.policy, resolver.message_types
        )
        assert gln in lost_glns(run(app, resolver, CUTOVER, today), "fhir") or not delivered(
            resolver, "fhir", gln, today
        )
        assert gln not in lost_glns(run(app, stripped, CUTOVER, today), "fhir")

    def test_owner_scoping_keeps_only_that_owners_receivers(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        full = run(app, resolver, CUTOVER, today)
        owner = next(r.owner for r in full.lost_for("fhir") if r.owner is not None)
        assert owner is not None
        scoped = run(app, resolver, CUTOVER, today, owners=[owner.sor_id])
        for sender in full.senders:
            expected = {r.gln for r in sender.lost if r.owner and r.owner.sor_id == owner.sor_id}
            assert lost_glns(scoped, sender.sender_syntax) == expected
        assert lost_glns(scoped, "fhir")
        assert scoped.receivers < full.receivers
        assert run(app, resolver, CUTOVER, today, owners=[]).receivers == 0

    def test_the_conversion_steps_are_configured_not_hard_coded(
        self, app: App, resolver: Resolver, today: date
    ) -> None:
        policy = replace(
            resolver.policy, conversions=(ConversionStep("fhir", "oioxml", valid_to=LAST_DAY),)
        )
        only_fhir = Resolver(resolver.index, policy, resolver.message_types)
        report = run(app, only_fhir, CUTOVER, today)
        assert report.counts["oioxml"] == 0 and report.counts["fhir"] > 0


class TestCutoverCommand:
    def test_json_output_matches_the_service(
        self, app: App, resolver: Resolver, today: date, cli: Cli
    ) -> None:
        data = json.loads(cli("cutover", "--date", "2027-01-04", "--json").output)
        report = run(app, resolver, CUTOVER, today)
        assert data["counts"] == report.counts
        assert data["date"] == "2027-01-04" and data["today"] == today.isoformat()
        fhir = next(s for s in data["senders"] if s["sender_syntax"] == "fhir")
        assert {r["gln"] for r in fhir["lost"]} == lost_glns(report, "fhir")
        assert {"gln", "owner", "vans", "message_types", "reached_today_by"} <= fhir["lost"][
            0
        ].keys()

    def test_the_owner_option_scopes_and_the_table_names_the_lost_receivers(
        self, app: App, resolver: Resolver, today: date, cli: Cli
    ) -> None:
        lost = run(app, resolver, CUTOVER, today).lost_for("fhir")
        owner = next(r.owner for r in lost if r.owner is not None)
        assert owner is not None
        output = cli("cutover", "--date", "2027-01-04", "--owner", owner.sor_id).output
        mine = [r.gln for r in lost if r.owner and r.owner.sor_id == owner.sor_id]
        assert f"fhir senders: {len(mine)} lost" in output
        assert all(gln in output for gln in mine)

    def test_a_bad_date_is_a_usage_error(self, app: App, cli: Cli) -> None:
        output = cli("cutover", "--date", "soon", expect=2).output
        assert "not a date" in output
