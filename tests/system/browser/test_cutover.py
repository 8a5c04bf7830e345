"""The cut-over page in headless Chromium: the date picker changes what is lost, an owner's lost
receivers open up, owners sort by name, a regional auditor sees only their region's receivers,
and the page fits a narrow window; axe-core finds no serious violation."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import Browser, Console

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
