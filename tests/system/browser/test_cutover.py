"""The cut-over page in headless Chromium: the date picker changes what is lost, an owner's lost
receivers open up, owners sort by name, a regional auditor sees only their region's receivers,
the page fits a narrow window, and the cut-over is priced in the logged traffic when asked;
axe-core finds no serious violation."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from soredi_sync.config import Settings
from soredi_sync.domain.days import today_in_denmark
from soredi_sync.reference_data import ReferenceData
from soredi_sync.sandbox.traffic import traffic_from_sandbox
from tests.support.browser import Browser, Console
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

CUTOVER = date(2027, 1, 4)
LAST_DAY = date(2026, 12, 31)


def lost(browser: Browser, syntax: str = "fhir") -> int:
    """Receivers lost to ``syntax`` senders, as the summary table shows them."""
    text = browser.driver.find_element(By.ID, f"count-{syntax}").text
    return int(re.sub(r"\D", "", text))


def choose_date(browser: Browser, day: date) -> None:
    form = browser.driver.find_element(By.CSS_SELECTOR, "main form.filters")
    browser.fill_date(form.find_element(By.NAME, "date"), day)
    browser.submit(form)
    browser.assert_page()
    assert f"date={day.isoformat()}" in browser.path, browser.path


def owner_rows(browser: Browser) -> list[str]:
    """The owner column of the detailed table."""
    rows = browser.rows("table.lost-owners")
    return [row.find_element(By.CSS_SELECTOR, "th").text for row in rows]


def test_the_date_picker_changes_who_is_lost_and_an_owners_receivers_open(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/cutover")
    browser.assert_page()
    default = browser.driver.find_element(By.NAME, "date").get_attribute("value")
    assert default and date.fromisoformat(default) > console.days[-1]

    choose_date(browser, LAST_DAY)
    assert lost(browser) == 0 and lost(browser, "oioxml") == 0
    assert not owner_rows(browser)

    choose_date(browser, CUTOVER)
    assert lost(browser) > 0
    first = browser.rows("table.lost-owners")[0]
    details = first.find_element(By.CSS_SELECTOR, "details")
    glns = details.find_elements(By.CSS_SELECTOR, ".gln")
    assert glns and not glns[0].is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert all(g.is_displayed() for g in glns)
    assert re.fullmatch(r"\d{13}", glns[0].text)
    assert "fhir → oioxml" in details.text
    browser.shoot("owner-opened")
    browser.publish("cutover")
    browser.assert_accessible()

    header = browser.driver.find_element(
        By.CSS_SELECTOR, "table.lost-owners thead a[href*='sort=owner']"
    )
    browser.click(header)
    names = owner_rows(browser)
    assert names == sorted(names, key=str.casefold)
    assert f"date={CUTOVER.isoformat()}" in browser.path


def test_another_sender_syntax_is_shown_from_the_summary(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/cutover", date=CUTOVER.isoformat())
    link = browser.driver.find_element(By.CSS_SELECTOR, "table.senders a[href*='syntax=oioxml']")
    browser.click(link)
    browser.assert_page()
    heading = browser.driver.find_element(By.ID, "lost-heading").text
    assert "oioxml" in heading
    assert sum(1 for _ in owner_rows(browser)) > 0


def test_a_regional_auditor_sees_only_their_regions_receivers(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.auditor)
    browser.open("/ui/cutover", date=CUTOVER.isoformat())
    browser.assert_page()
    region = console.world.owner_in
    owners = owner_rows(browser)
    assert all(f"({region})" in owner for owner in owners), owners
    assert console.world.owner_out not in browser.main_text
    options = browser.driver.find_elements(By.CSS_SELECTOR, "select[name=owner] option")
    assert [o.get_attribute("value") for o in options] == ["", region]
    browser.assert_accessible()

    browser.open("/ui/cutover", owner=console.world.owner_out)
    assert browser.error_status == 403


def test_the_page_fits_a_narrow_window(
    console: Console, signed_in: Callable[[str], Browser], narrow: Browser
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/cutover", date=CUTOVER.isoformat())
    browser.assert_page()
    assert not browser.overflows(), f"{browser.path} is wider than the window"
    browser.driver.find_element(By.CSS_SELECTOR, "table.lost-owners summary").click()
    assert not browser.overflows(), "an owner's receivers are wider than the window"
    browser.shoot("narrow-owner-opened")
    browser.assert_accessible()
    browser.publish("cutover-narrow")


def _post_traffic(console: Console, sandbox_dir: Path) -> int:
    """A day of the sandbox generator's traffic routed through the console's API; how many
    questions were decided (and so logged)."""
    (day,) = traffic_from_sandbox(
        sandbox_dir,
        1,
        ReferenceData.load(Settings().config_dir),
        last_day=today_in_denmark(),
        days=1,
        per_day=600,  # more than the log's batch: written at once (the console's flushes hourly)
        seed=11,
    )
    bodies = [request.body() for request in day.requests]
    answer = httpx.post(
        console.url("/v1/route/batch"),
        json={"requests": bodies},
        headers={"Authorization": f"Bearer {console.router}"},
        timeout=30,
    )
    answer.raise_for_status()
    return sum(1 for result in answer.json()["results"] if result["status"] == 200)


def _priced(console: Console, token: str) -> dict[str, Any]:
    answer = httpx.get(
        console.url("/v1/cutover", date=CUTOVER.isoformat(), traffic_window="30"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    answer.raise_for_status()
    traffic: dict[str, Any] = answer.json()["traffic"]
    return traffic


def _number(browser: Browser, element_id: str) -> int:
    text = browser.driver.find_element(By.ID, element_id).text
    return int(re.sub(r"\D", "", text))


def test_the_cutover_is_priced_in_the_logged_traffic_for_the_operator_and_an_auditor(
    console: Console, signed_in: Callable[[str], Browser], sandbox_dir: Path
) -> None:
    posted = _post_traffic(console, sandbox_dir)
    everyone = wait_until(
        lambda: (t := _priced(console, console.operator))["logged"] >= posted and t,
        timeout=15,
        what="the posted traffic in the decision log",
    )
    browser = signed_in(console.operator)
    browser.open("/ui/cutover", date=CUTOVER.isoformat())
    assert not browser.driver.find_elements(By.ID, "traffic-heading")  # only when asked
    form = browser.driver.find_element(By.CSS_SELECTOR, "main form.filters")
    field = form.find_element(By.NAME, "window")
    field.clear()
    field.send_keys("30")
    browser.submit(form)
    browser.assert_page()
    assert "window=30" in browser.path
    assert _number(browser, "traffic-lost") == everyone["lost"] > 0
    assert _number(browser, "traffic-logged") == everyone["logged"]
    captions = [
        c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "table.priced caption")
    ]
    assert len(captions) == 5 and "Mistede meddelelser efter modtagers ejer" in captions
    browser.shoot("traffic")
    browser.publish("cutover-traffic")
    browser.assert_accessible()

    mine = _priced(console, console.auditor)
    browser.sign_out()
    auditor = browser.sign_in(console.auditor)
    auditor.open("/ui/cutover", date=CUTOVER.isoformat(), window="30")
    auditor.assert_page()
    assert _number(auditor, "traffic-lost") == mine["lost"] < everyone["lost"]
    auditor.shoot("traffic-auditor")
