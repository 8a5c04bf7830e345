"""Every page of the console in headless Chromium: it renders (a heading, no error page), axe-core
finds no serious or critical violation, it works in a narrow window, and the keyboard reaches
the navigation with a visible focus."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.support.browser import MAIN_NAV, Browser, Console, console_pages

pytestmark = pytest.mark.slow

PAGES = (
    "overview",
    "registry",
    "search",
    "unit",
    "gln",
    "audit",
    "adoption",
    "cutover",
    "route",
    "plans",
)
PUBLISHED = ("overview", "audit")  # the others are published by the tests that use them


@pytest.mark.parametrize("page", PAGES)
def test_the_page_renders_and_axe_finds_no_serious_violation(
    console: Console, signed_in: Callable[[str], Browser], page: str
) -> None:
    browser = signed_in(console.operator)
    browser.open(console_pages(console)[page])
    browser.assert_page()
    if page in PUBLISHED:
        browser.publish(page)
    browser.assert_accessible()


def test_the_sign_in_page_is_accessible(browser: Browser) -> None:
    browser.open("/ui/login")
    browser.assert_page()
    browser.publish("login")
    browser.assert_accessible()


@pytest.mark.parametrize("page", PAGES)
def test_the_page_fits_a_narrow_window_and_axe_finds_no_serious_violation(
    console: Console, signed_in: Callable[[str], Browser], narrow: Browser, page: str
) -> None:
    browser = signed_in(console.operator)
    width = browser.driver.execute_script("return window.innerWidth")
    assert width <= 400, width
    browser.open(console_pages(console)[page])
    browser.assert_page()
    assert not browser.overflows(), f"{browser.path} is wider than a {width} px window"
    assert browser.nav_links(), "no navigation in a narrow window"
    browser.assert_accessible()  # e.g. a table that scrolls sideways must take the focus
    if page in PUBLISHED:
        browser.publish(f"{page}-narrow")


def tab_to(browser: Browser, selector: str, presses: int = 25) -> None:
    """Press Tab until the focus is inside ``selector``."""
    keys = ActionChains(browser.driver)
    for _ in range(presses):
        keys.send_keys(Keys.TAB).perform()
        if browser.focused_in(selector):
            return
    pytest.fail(f"{presses} presses of Tab never reached {selector} on {browser.path}")


def test_tab_reaches_the_navigation_then_the_page_and_the_focus_is_visible(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/audit")
    assert browser.nav_links()
    tab_to(browser, MAIN_NAV)
    assert browser.focus_is_visible(), browser.focus_style()
    browser.shoot("focus-on-nav")
    tab_to(browser, "main form")
    assert browser.focus_is_visible(), browser.focus_style()
    browser.shoot("focus-in-form")
