"""What a change plan would do to real traffic: the messages logged to its GLNs decided today
without and with its changes, checked against a registry rebuilt with the plan carried out."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

from soredi_sync.api.routers.routing_schemas import RouteIn
from soredi_sync.bootstrap import App
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.domain.model import Capability, Registry
from soredi_sync.domain.plans import PlanAction
from soredi_sync.domain.routing import Decision, Resolver, RouteDecision
from soredi_sync.domain.routing.index import RoutingIndex
from soredi_sync.domain.traffic import CONVERTED, NATIVE, REJECTED
from soredi_sync.ports.records import Plan
from soredi_sync.services.cutover_traffic import price_plan
from soredi_sync.services.plans import create_plan
from tests.integration.traffic.conftest import Posted
from tests.support.api import api_uow
from tests.support.cli_runner import Cli


def _plan(app: App, posted: Posted) -> Plan:
    """A switch to CareCommunication for the owners the posted traffic reaches most."""
    index = app.routing().resolver().index
    owners = app.traffic_owners()
    reached: Counter[str] = Counter()
    for result in posted.answers:
        if result["status"] == 200 and result["decision"]["address"]["gln"]:
            address = result["decision"]["address"]
            owner = owners.of(address["sor_id"], address["gln"])
            if owner and address["gln"] in index.types_by_gln:
                reached[owner] += 1
    chosen = [owner for owner, _ in reached.most_common(3)]
    with api_uow(app)() as uow:
        plan = create_plan(
            uow,
            app.reference.audit_context,
            actor="test",
            owners=chosen,
            switch_to="carecommunication",
        )
        uow.commit()
    assert plan.items, "the plan changes something"
    return plan


def _carried_out(registry: Registry, plan: Plan) -> Registry:
    """``registry`` with the plan's additions and removals made in SOR-EDI."""
    removed = {(i.gln, i.message_type) for i in plan.items if i.action is PlanAction.REMOVE}
    added = [
        Capability(i.gln, i.message_type, i.version_code)
        for i in plan.items
        if i.action is PlanAction.ADD
    ]
    kept = [c for c in registry.iter_capabilities() if c.key not in removed]
    return Registry.build(registry.units.values(), registry.glns.values(), kept + added)


def _delivery(decision: RouteDecision) -> str:
    if decision.decision is Decision.REJECT:
        return REJECTED
    return CONVERTED if decision.conversion else NATIVE


class TestPlanTraffic:
    def test_the_what_if_equals_deciding_the_posted_requests_on_the_registry_with_the_plan(
        self, synced_app: App, posted: Posted
    ) -> None:
        plan = _plan(synced_app, posted)
        today = today_in_denmark()
        resolver = synced_app.routing().resolver()
        rebuilt = Resolver(
            RoutingIndex.build(
                resolver.index.snapshot, _carried_out(resolver.index.registry, plan)
            ),
            resolver.policy,
            resolver.message_types,
        )
        glns = {i.gln for i in plan.items}
        before: Counter[str] = Counter()
        after: Counter[str] = Counter()
        for body in posted.bodies:
            request = replace(RouteIn.model_validate(body).to_request(), at=today)
            now = resolver.resolve(request, today)
            if now.address.gln in glns:
                before[_delivery(now)] += 1
                after[_delivery(rebuilt.resolve(request, today))] += 1

        with synced_app.uow() as uow:
            priced = price_plan(uow, resolver, plan, window_days=30, today=today)
        assert priced.messages == sum(before.values()) > 0
        assert priced.before == dict(before) and priced.after == dict(after)
        assert priced.before != priced.after, "the plan changes how some messages travel"
        assert priced.fewer_per_day(CONVERTED) == (before[CONVERTED] - after[CONVERTED]) / 30

    def test_plan_traffic_on_the_command_line(
        self, cli: Cli, synced_app: App, posted: Posted
    ) -> None:
        plan = _plan(synced_app, posted)
        shown = json.loads(cli("plan", "traffic", str(plan.id), "--json").output)
        with synced_app.uow() as uow:
            priced = price_plan(
                uow, synced_app.routing().resolver(), plan, window_days=30, today=today_in_denmark()
            )
        assert shown["messages"] == priced.messages
        assert shown["before"] == {
            k: priced.before.get(k, 0) for k in (NATIVE, CONVERTED, REJECTED)
        }
        text = cli("plan", "traffic", str(plan.id), "--window", "7").output
        assert f"Plan {plan.id}: {priced.messages:,} messages" in text and "a day" in text
        assert cli("plan", "traffic", "999", expect=None).exit_code != 0
