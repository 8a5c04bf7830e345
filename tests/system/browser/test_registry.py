"""The registry pages in headless Chromium: search by GLN and by name, a GLN and the units using
it, the "as of date" picker, and a regional auditor kept to their own region."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import Browser, Console
from tests.support.sandbox import SWITCHED

pytestmark = pytest.mark.slow


def search(browser: Browser, text: str) -> None:
    browser.open("/ui/registry")
    form = browser.driver.find_element(By.CSS_SELECTOR, "form[role=search]")
    form.find_element(By.ID, "q").send_keys(text)
    browser.submit(form)
    browser.assert_page()


def links_to(browser: Browser, path: str) -> list[str]:
    hrefs = (a.get_attribute("href") or "" for a in browser.driver.find_elements(By.TAG_NAME, "a"))
    return [h for h in hrefs if h.split("?")[0].endswith(path)]


def test_a_gln_is_found_and_leads_to_the_units_using_it(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    world = console.world
    browser = signed_in(console.operator)
    search(browser, world.gln_in)
    assert browser.path == f"/ui/registry/glns/{world.gln_in}", browser.path
    assert world.gln_in in browser.h1
    assert "VANS" in browser.main_text
    browser.publish("registry-gln")
    unit_link = browser.driver.find_element(
        By.CSS_SELECTOR, f"main a[href*='/ui/registry/units/{world.unit_in}']"
    )
    browser.click(unit_link)
    assert browser.path.startswith(f"/ui/registry/units/{world.unit_in}"), browser.path
    browser.assert_page()
    browser.publish("registry-unit")


def test_a_name_fragment_lists_the_units_whose_name_has_it(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    search(browser, "Region")
    assert browser.path.startswith("/ui/registry?"), browser.path
    assert links_to(browser, f"/ui/registry/units/{console.world.owner_in}")
    assert links_to(browser, f"/ui/registry/units/{console.world.owner_out}")
    browser.publish("registry-search")


def test_the_as_of_date_shows_the_gln_before_its_switch(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    gln = SWITCHED[0]
    browser = signed_in(console.operator)
    browser.open(f"/ui/registry/glns/{gln}")
    browser.assert_page()
    now = message_types(browser)
    form = browser.driver.find_element(By.CSS_SELECTOR, "main form:has(#at)")
    browser.fill_date(form.find_element(By.ID, "at"), console.days[0])
    browser.submit(form)
    browser.assert_page()
    assert f"at={console.days[0].isoformat()}" in browser.path
    before = message_types(browser)
    assert before != now
    assert any(code.startswith(("FDIS91", "FCTL")) for code in now - before), (before, now)
    browser.publish("registry-as-of")


def message_types(browser: Browser) -> set[str]:
    """The codes of the GLN page's message types table."""
    section = browser.driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=types-heading]")
    return {cell.text for cell in section.find_elements(By.CSS_SELECTOR, "tbody th[scope=row]")}


def test_a_regional_auditor_cannot_see_another_regions_gln(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    world = console.world
    browser = signed_in(console.auditor)
    browser.open(f"/ui/registry/glns/{world.gln_in}")
    browser.assert_page()
    for path in (f"/ui/registry/glns/{world.gln_out}", f"/ui/registry/units/{world.unit_out}"):
        browser.open(path)
        assert browser.error_status == 403, (path, browser.h1)
        assert world.gln_out not in browser.main_text
    browser.publish("refused")
    browser.assert_accessible()
    search(browser, "Region")
    assert links_to(browser, f"/ui/registry/units/{world.owner_in}")
    assert not links_to(browser, f"/ui/registry/units/{world.owner_out}")
