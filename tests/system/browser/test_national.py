"""The console in headless Chromium on national-scale data: the sandbox's national profile
(about 73,000 units and 21,000 GLNs), days 0 and 1 synced and summarised as the daemon does, on
each engine, served with the background warm-up of the shipped configuration.

Every page renders for the operator and for a regional auditor with no serious or critical
axe-core violation; the auditor finds their region's obsolete registrations and downloads exactly
those, and cannot see another region's GLN anywhere.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from soredi_sync.api import create_app
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App, bootstrap
from soredi_sync.observability.metrics import Metrics
from soredi_sync.services.audit import record_summary
from soredi_sync.services.plans import create_plan
from soredi_sync.services.sync import sync_source
from soredi_sync.services.tokens import Scope, create_token
from tests.support.api import QUIET_LOG, api_uow
from tests.support.app import make_settings
from tests.support.browser import Browser, Console, two_regions
from tests.support.live_server import uvicorn_in_thread
from tests.support.national import empty_database
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

AUDITOR_SCOPES = (Scope.REGISTRY_READ, Scope.AUDIT_READ, Scope.ROUTE_READ)
OBSOLETE = "FDIS91_WITH_LEGACY"  # FDIS91 beside a leftover DIS91/XDIS91


def _sync_national(app: App, sandbox: Path) -> None:
    """Days 0 and 1, each followed by its audit summary (the daemon's after-sync step)."""
    for day in (0, 1):
        client = app.files_client(from_dir=sandbox / f"day-{day:03d}")
        outcome = sync_source(app.uow_factory, client, app.sync_config())
        assert outcome.ok, outcome.error
        with app.uow() as uow:
            record_summary(uow, app.reference.audit_context)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external_service)],
)
def console(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    national_sandbox: Path,
) -> Iterator[Console]:
    """This module's console (it replaces conftest.py's): national data, warmed as served."""
    engine: str = request.param
    url = empty_database(engine, request, tmp_path_factory.mktemp("national-db"))
    with bootstrap(make_settings(url)) as app:
        _sync_national(app, national_sandbox)
        world = two_regions(app)
        operator = create_token(api_uow(app), list(Scope), (), "national operator").token
        auditor = create_token(
            api_uow(app), AUDITOR_SCOPES, (world.owner_in,), "national regional auditor"
        ).token
        router = create_token(api_uow(app), (Scope.ROUTE_READ,), (), "national router").token
        with app.uow() as uow:
            create_plan(
                uow,
                app.reference.audit_context,
                actor="national operator",
                owners=[world.owner_in],
                switch_to="carecommunication",
            )
            days = tuple(
                s.effective_date for s in sorted(uow.registry.list_snapshots(), key=lambda s: s.id)
            )
        settings = ApiSettings(warm_seconds=0.5)
        asgi = create_app(app, settings, QUIET_LOG, Metrics(process_collectors=False))
        with uvicorn_in_thread(asgi) as (host, port):
            with app.uow() as uow:
                current = uow.registry.current_snapshot()
            assert current is not None
            wait_until(
                lambda: asgi.state.warmer.warmed == (current.id, current.taken_at),
                timeout=120,
                what="the national snapshot prepared",
            )
            yield Console(f"http://{host}:{port}", engine, operator, auditor, router, world, days)


def pages(console: Console) -> dict[str, str]:
    world = console.world
    return {
        "overview": "/ui/",
        "registry-search": "/ui/registry?q=Hospital",
        "registry-unit": f"/ui/registry/units/{world.unit_in}",
        "registry-gln": f"/ui/registry/glns/{world.gln_in}",
        "audit": "/ui/audit",
        "audit-since": "/ui/audit?since=1&change=new",
        "adoption": "/ui/adoption?by=region",
        "cutover": "/ui/cutover",
        "route": "/ui/route",
        "plans": "/ui/plans",
        "plan": "/ui/plans/1",
    }


OPERATOR_PAGES = (
    "overview",
    "registry-search",
    "registry-unit",
    "registry-gln",
    "audit",
    "audit-since",
    "adoption",
    "cutover",
    "route",
    "plans",
    "plan",
)
AUDITOR_PAGES = tuple(p for p in OPERATOR_PAGES if not p.startswith("plan"))


@pytest.mark.parametrize("page", OPERATOR_PAGES)
def test_every_page_renders_national_data_for_the_operator(
    console: Console, signed_in: Callable[[str], Browser], page: str
) -> None:
    browser = signed_in(console.operator)
    browser.open(pages(console)[page])
    browser.assert_page()
    assert browser.main_text.strip()
    browser.assert_accessible()


@pytest.mark.parametrize("page", AUDITOR_PAGES)
def test_every_page_renders_national_data_for_a_regional_auditor(
    console: Console, signed_in: Callable[[str], Browser], page: str
) -> None:
    browser = signed_in(console.auditor)
    browser.open(pages(console)[page])
    browser.assert_page()
    assert console.world.gln_out not in browser.main_text
    browser.assert_accessible()


def _count(browser: Browser) -> int:
    found = browser.driver.find_element(By.ID, "count-findings").text
    return int(re.sub(r"\D", "", found))


def test_a_regional_auditor_finds_and_downloads_their_regions_obsolete_registrations(
    console: Console, signed_in: Callable[[str], Browser], tmp_path: Path
) -> None:
    region = console.world.owner_in
    browser = signed_in(console.auditor)
    browser.open("/ui/audit")
    everything = _count(browser)
    form = browser.driver.find_element(By.CSS_SELECTOR, "form.filters")
    Select(form.find_element(By.NAME, "rule")).select_by_value(OBSOLETE)
    browser.submit(form)
    browser.assert_page()
    obsolete = _count(browser)
    assert 0 < obsolete < everything, (obsolete, everything)
    rows = browser.rows()
    assert rows and all(f"({region})" in row.text for row in rows)

    link = browser.driver.find_element(By.CSS_SELECTOR, "a[href*='findings.csv']")
    saved = browser.download(link, tmp_path / "downloads")
    with saved.open(encoding="utf-8", newline="") as file:
        downloaded = list(csv.DictReader(file))
    assert len(downloaded) == obsolete
    assert {row["owner_sor_id"] for row in downloaded} == {region}
    assert {row["code"] for row in downloaded} == {OBSOLETE}


def test_a_regional_auditor_cannot_see_another_regions_gln(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    other = console.world
    browser = signed_in(console.auditor)
    browser.open(f"/ui/registry/glns/{other.gln_out}")
    assert browser.is_error_page and browser.error_status in (403, 404), browser.h1
    browser.open("/ui/registry", q=other.gln_out)
    assert other.gln_out not in browser.main_text.replace(f"q={other.gln_out}", "")
    browser.open("/ui/audit", owner=other.owner_out)
    assert browser.is_error_page and browser.error_status == 403, browser.h1
    browser.open("/ui/cutover", owner=other.owner_out)
    assert browser.is_error_page and browser.error_status == 403, browser.h1
    browser.open("/ui/adoption", owner=other.owner_out)
    assert browser.is_error_page and browser.error_status == 403, browser.h1
