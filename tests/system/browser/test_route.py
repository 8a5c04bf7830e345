"""Trying a routing decision in headless Chromium: the form and an uploaded message give the
decision with its trace; a regional auditor may not ask about another region's receiver, and a
page outside a token's scopes is neither offered nor served."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.support.api import bundle_xml
from tests.support.browser import Browser, Console

pytestmark = pytest.mark.slow


def ask(browser: Browser, gln: str) -> None:
    """Fill the routing question with the receiver ``gln`` (the defaults for the rest)."""
    form = browser.driver.find_element(By.CSS_SELECTOR, "form.route-form")
    form.find_element(By.ID, "q-gln").send_keys(gln)
    browser.submit(form)


def test_the_form_gives_the_decision_with_its_trace(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/route")
    browser.assert_page()
    ask(browser, console.world.gln_in)
    browser.assert_page()
    decision = browser.driver.find_element(By.ID, "decision")
    assert decision.get_attribute("data-value") in ("deliver", "reject")
    assert browser.driver.find_element(By.ID, "address-gln").text == console.world.gln_in
    assert browser.rows("#trace"), "the decision has no trace"
    browser.publish("route-decision")
    browser.assert_accessible()


def test_an_uploaded_message_is_read_and_decided(
    console: Console, signed_in: Callable[[str], Browser], tmp_path: Path
) -> None:
    message = tmp_path / "message.xml"
    message.write_bytes(bundle_xml(console.world.gln_in))
    browser = signed_in(console.operator)
    browser.open("/ui/route")
    form = browser.driver.find_element(By.CSS_SELECTOR, "form[enctype='multipart/form-data']")
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(message))
    browser.submit(form)
    browser.assert_page()
    assert browser.driver.find_element(By.ID, "message-read").text
    assert browser.driver.find_element(By.ID, "address-gln").text == console.world.gln_in
    assert browser.rows("#trace")


def test_a_regional_auditor_cannot_route_to_another_region(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.auditor)
    browser.open("/ui/route")
    ask(browser, console.world.gln_out)
    problem = browser.driver.find_element(By.ID, "problem")
    assert problem.get_attribute("data-problem") == "outside-owners"
    assert not browser.driver.find_elements(By.ID, "decision")
    browser.open("/ui/route")
    ask(browser, console.world.gln_in)
    assert browser.driver.find_element(By.ID, "decision").get_attribute("data-value")


def test_a_page_outside_the_scopes_is_not_offered_and_refused_if_forced(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.router)
    offered = {str(a.get_attribute("href")).split("?")[0] for a in browser.nav_links()}
    assert console.url("/ui/route") in offered
    assert not offered & {console.url("/ui/audit"), console.url("/ui/registry")}, offered
    for path in ("/ui/audit", "/ui/registry"):
        browser.open(path)
        assert browser.error_status == 403, (path, browser.h1)
    browser.assert_accessible()
