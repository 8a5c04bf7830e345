"""Change plans in headless Chromium: a MedCom operator creates a municipality's switch to
CareCommunication, submits it to the sandbox's SORUS, and once the next day's files carry the
changes, verifies it and sees every item confirmed; a regional token is offered only its own
owner and refused another owner's plan; the pages fit a narrow window; axe-core finds no
serious or critical violation.

The sandbox here is not the shared one: a SORUS submission rewrites the sandbox's next days,
so this module generates its own (as tests/integration/plans/test_plan_sorus_e2e.py does),
syncs its day 0, and serves the API and the console on loopback over it. The plan's owner is
one whose changes day 1 would not make by itself: only the submission can confirm them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from selenium.webdriver.common.by import By

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.domain.audit import OwnerKind
from soredi_sync.domain.plans import (
    ItemState,
    gln_owners,
    switch_to_carecommunication,
    verify_item,
)
from soredi_sync.observability.metrics import Metrics
from soredi_sync.sandbox.generate import expected_registry, generate
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.sandbox.soap import SoapSandboxServer
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import Scope, create_token
from tests.support.api import QUIET_LOG, World, api_uow
from tests.support.app import current_view, make_settings
from tests.support.browser import Browser, Console
from tests.support.live_server import uvicorn_in_thread
from tests.support.national import empty_database

pytestmark = pytest.mark.slow

SEED = 11


@dataclass(frozen=True)
class Sandbox:
    """What the test drives beside the browser: the app (to sync), the files server (to move
    to the next day), and the owner the plan is made for."""

    app: App
    files: SandboxServer
    owner: str  # a municipality whose switch day 1 does not make by itself
    items: int  # how many items its plan has


def _sync(app: App) -> None:
    outcome = sync_source(app.uow_factory, app.files_client(), app.sync_config())
    assert outcome.ok, outcome.error


def _untouched_owners(app: App) -> list[tuple[str, int]]:
    """(owner, items) of the owners with a switch to make, none of whose changes day 1 makes by
    itself; nothing is stored (the plans are only drafted)."""
    view = current_view(app)
    day1 = expected_registry("tiny", SEED, 1)
    found = []
    kinds = {o.sor_id: o.kind for o in gln_owners(view).values()}
    # Municipalities first: the switch MedCom plans during the migration is a municipality's.
    for owner in sorted(kinds, key=lambda o: (kinds[o] is not OwnerKind.MUNICIPALITY, o)):
        drafts = switch_to_carecommunication(view, [owner])
        states = {
            verify_item(d.gln, d.action, d.message_type, ItemState.SUBMITTED, day1) for d in drafts
        }
        if len(drafts) >= 3 and states == {ItemState.PENDING}:
            found.append((owner, len(drafts)))
    assert len(found) >= 2, "the sandbox has no two owners whose plan day 1 leaves untouched"
    assert kinds[found[0][0]] is OwnerKind.MUNICIPALITY, "no municipality to plan a switch for"
    return found


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external_service)],
)
def sandbox_console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Console, Sandbox]]:
    """A fresh tiny sandbox (files and SOAP, SORUS included) with day 0 synced, and the API
    and console on a loopback port over it."""
    engine: str = request.param
    folder = tmp_path_factory.mktemp("plans")
    generate(folder / "sandbox", profile="tiny", seed=SEED, days=2)
    url = empty_database(engine, request, folder)
    with (
        SandboxServer(folder / "sandbox") as files,
        SoapSandboxServer(files=files) as soap,
    ):
        settings = make_settings(url)
        settings.sources.base_url = files.base_url
        settings.soap.sorus.address = soap.url("sorus")
        settings.soap.retry = settings.retry
        with bootstrap(settings) as app:
            _sync(app)
            (owner, items), (other, _) = _untouched_owners(app)[:2]
            operator = create_token(api_uow(app), list(Scope), (), "MedCom operator").token
            regional = create_token(
                api_uow(app), (Scope.PLAN_WRITE,), (other,), "regional planner"
            ).token
            router = create_token(api_uow(app), (Scope.ROUTE_READ,), (), "router").token
            with app.uow() as uow:
                days = tuple(s.effective_date for s in uow.registry.list_snapshots())
            asgi = create_app(app, ApiSettings(), QUIET_LOG, Metrics(process_collectors=False))
            with uvicorn_in_thread(asgi) as (host, port):
                world = World(other, "", "", owner, "", "")  # the regional token's owner first
                console = Console(
                    f"http://{host}:{port}", engine, operator, regional, router, world, days
                )
                yield console, Sandbox(app, files, owner, items)


@pytest.fixture(scope="module")
def console(sandbox_console: tuple[Console, Sandbox]) -> Console:
    """This module's console (``browser`` and ``signed_in`` open it)."""
    return sandbox_console[0]


@pytest.fixture(scope="module")
def sandbox(sandbox_console: tuple[Console, Sandbox]) -> Sandbox:
    return sandbox_console[1]


def count(browser: Browser, state: str) -> int:
    text = browser.driver.find_element(By.ID, f"count-{state}").text
    return int(re.sub(r"\D", "", text))


def outcome(browser: Browser) -> str | None:
    found = browser.driver.find_elements(By.ID, "outcome")
    return found[0].get_attribute("data-outcome") if found else None


def item_states(browser: Browser) -> set[str]:
    rows = browser.rows("table.plan-items")
    return {str(row.get_attribute("data-state")) for row in rows}


def create_plan(browser: Browser, owner: str) -> int:
    """Fill in the form of the list page (the switch and one owner are the defaults) and create
    the plan; its id, from the page it lands on."""
    form = browser.form("/ui/plans")
    field = form.find_element(By.ID, "plan-owner")
    if field.tag_name == "input":
        field.send_keys(owner)
    browser.submit(form)
    browser.assert_page()
    found = re.fullmatch(r"/ui/plans/(\d+)\?done=created", browser.path)
    assert found, browser.path
    return int(found.group(1))


def test_a_plan_goes_create_submit_to_sorus_verify_and_every_item_is_confirmed(
    console: Console, sandbox: Sandbox, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/plans")
    browser.assert_page()
    assert browser.driver.find_element(By.ID, "goal-1").is_selected()  # the switch
    browser.assert_accessible()

    plan_id = create_plan(browser, sandbox.owner)
    assert outcome(browser) == "created"
    assert count(browser, "planned") == count(browser, "all") == sandbox.items
    assert item_states(browser) == {"planned"}
    browser.publish("plan-created")
    browser.assert_accessible()

    # Submit to the sandbox's SORUS (the channel offered first).
    form = browser.form(f"/ui/plans/{plan_id}/submit")
    assert form.find_element(By.ID, "channel-sorus").is_selected()
    browser.submit(form)
    browser.assert_page()
    assert outcome(browser) == "submitted-sorus", browser.main_text[:500]
    assert count(browser, "submitted") == sandbox.items
    assert item_states(browser) == {"submitted"}

    # Verified the same day, SOR has published nothing yet.
    browser.submit(browser.form(f"/ui/plans/{plan_id}/verify"))
    assert outcome(browser) == "verified"
    assert count(browser, "pending") == sandbox.items

    # The next day's files carry the accepted changes; the test syncs them.
    sandbox.files.set_day(1)
    _sync(sandbox.app)

    browser.open(f"/ui/plans/{plan_id}")
    browser.submit(browser.form(f"/ui/plans/{plan_id}/verify"))
    browser.assert_page()
    assert outcome(browser) == "verified"
    assert count(browser, "confirmed") == sandbox.items
    assert item_states(browser) == {"confirmed"}
    history = browser.driver.find_element(By.CSS_SELECTOR, ".plan-history").text
    assert "SORUS" in history
    browser.publish("plan-verified")
    browser.assert_accessible()

    # An item's history: planned, submitted with SORUS's receipt, pending, then confirmed.
    link = browser.driver.find_element(
        By.CSS_SELECTOR, "table.plan-items tbody tr a[href*='/items/']"
    )
    browser.click(link)
    browser.assert_page()
    steps = browser.driver.find_elements(By.CSS_SELECTOR, ".item-history > li")
    assert [s.get_attribute("data-to") for s in steps] == [
        "confirmed",
        "pending",
        "submitted",
        "planned",
    ]
    assert browser.driver.find_element(By.ID, "item-state").get_attribute("data-state") == (
        "confirmed"
    )
    browser.assert_accessible()

    # The worklist downloads from the plan's page.
    browser.open(f"/ui/plans/{plan_id}")
    assert browser.driver.find_element(
        By.CSS_SELECTOR, f"a[href='/ui/plans/{plan_id}/worklist.csv']"
    )

    # The list shows the plan with its items confirmed.
    browser.open("/ui/plans")
    row = browser.driver.find_element(By.ID, f"plan-{plan_id}")
    assert "Bekræftet" in row.text or "Confirmed" in row.text


def test_a_regional_token_plans_only_for_its_owner_and_is_refused_another_owners_plan(
    console: Console, sandbox: Sandbox, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/plans")
    theirs = create_plan(browser, sandbox.owner)
    browser.sign_out()

    regional_owner = console.world.owner_in
    browser.sign_in(console.auditor)
    browser.open("/ui/plans")
    browser.assert_page()
    choice = browser.driver.find_element(By.ID, "plan-owner")
    assert choice.tag_name == "select"
    offered = [o.get_attribute("value") for o in choice.find_elements(By.TAG_NAME, "option")]
    assert offered == [regional_owner]
    assert not browser.driver.find_elements(By.ID, "scope-kind")
    assert not browser.driver.find_elements(By.ID, f"plan-{theirs}")
    mine = create_plan(browser, regional_owner)
    assert outcome(browser) == "created"
    browser.assert_accessible()

    browser.open(f"/ui/plans/{theirs}")
    assert browser.error_status == 403
    browser.open("/ui/plans")
    assert browser.driver.find_elements(By.ID, f"plan-{mine}")


@pytest.mark.parametrize("page", ["list", "plan", "item"])
def test_the_plan_pages_fit_a_narrow_window(
    console: Console,
    signed_in: Callable[[str], Browser],
    narrow: Browser,
    page: str,
) -> None:
    browser = signed_in(console.operator)
    width = browser.driver.execute_script("return window.innerWidth")
    assert width <= 400, width
    browser.open("/ui/plans")
    if page != "list":
        # The regional token's owner: no test submits its plans, so they have items on any day.
        create_plan(browser, console.world.owner_in)
        if page == "item":
            link = browser.driver.find_element(
                By.CSS_SELECTOR, "table.plan-items tbody tr a[href*='/items/']"
            )
            browser.click(link)
    browser.assert_page()
    assert not browser.overflows(), f"{browser.path} is wider than a {width} px window"
    assert browser.nav_links()
    browser.assert_accessible()
    if page == "plan":
        browser.publish("plan-narrow")
