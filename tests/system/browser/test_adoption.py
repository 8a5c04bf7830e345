"""The adoption page in headless Chromium: the chart and the tables, the dimension and snapshot
choices, a regional auditor counted on their own region, a narrow window; axe-core finds no
serious violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.support.browser import Browser, Console

pytestmark = pytest.mark.slow


def groups(browser: Browser) -> list[str]:
    """The group keys of the latest snapshot's table."""
    rows = browser.rows("table.adoption-latest")
    return [str(row.get_attribute("data-group")) for row in rows]


def choose(browser: Browser, **choices: str) -> None:
    form = browser.driver.find_element(By.CSS_SELECTOR, "main form.filters")
    for name, value in choices.items():
        Select(form.find_element(By.NAME, name)).select_by_value(value)
    browser.submit(form)
    browser.assert_page()


def test_the_dimension_changes_the_groups_of_the_tables_and_the_chart(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/adoption")
    browser.assert_page()
    assert groups(browser) == ["all"]
    assert browser.driver.find_elements(By.CSS_SELECTOR, "figure svg polyline")
    history = browser.rows("table.adoption-history")
    assert len(history) == len(console.days)

    choose(browser, by="vans", snapshots="10")
    assert "by=vans" in browser.path and "snapshots=10" in browser.path
    by_vans = groups(browser)
    assert len(by_vans) > 1 and "all" not in by_vans
    legend = browser.driver.find_element(By.CSS_SELECTOR, "figure svg").text
    first = browser.rows("table.adoption-latest")[0].find_element(By.TAG_NAME, "th").text
    assert first.split(" (")[0] in legend  # the largest group is drawn
    browser.publish("adoption")
    browser.assert_accessible()

    choose(browser, by="region")
    assert set(groups(browser)) != set(by_vans)


def test_a_regional_auditor_is_counted_on_their_own_owner(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/adoption")
    everyone = browser.rows("table.adoption-latest")[0].text
    browser.sign_out()

    browser.sign_in(console.auditor)
    browser.open("/ui/adoption")
    browser.assert_page()
    assert browser.rows("table.adoption-latest")[0].text != everyone
    options = browser.driver.find_elements(By.CSS_SELECTOR, "select[name=owner] option")
    assert [o.get_attribute("value") for o in options] == ["", console.world.owner_in]
    browser.assert_accessible()

    browser.open("/ui/adoption", owner=console.world.owner_out)
    assert browser.error_status == 403


def test_the_page_fits_a_narrow_window(
    console: Console, signed_in: Callable[[str], Browser], narrow: Browser
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/adoption", by="vans")
    browser.assert_page()
    assert not browser.overflows(), f"{browser.path} is wider than the window"
    browser.assert_accessible()
    browser.publish("adoption-narrow")
