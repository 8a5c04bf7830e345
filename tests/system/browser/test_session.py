"""Signing in and out of the console, and its language switch, in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import Browser, Console

pytestmark = pytest.mark.slow


def test_a_page_asks_to_sign_in_first_and_comes_back_after(browser: Browser) -> None:
    browser.open("/ui/audit")
    assert browser.path.startswith("/ui/login?"), browser.path
    assert "next=" in browser.path
    browser.assert_page()
    browser.sign_in(browser.console.operator)  # on the sign-in page it was sent to
    assert browser.path.startswith("/ui/audit"), browser.path
    browser.assert_page()


def test_a_wrong_token_stays_on_the_sign_in_page_with_a_message(browser: Browser) -> None:
    browser.open("/ui/login")
    before = browser.main_text
    browser.fill_token("sst_not-a-real-token")
    assert browser.path.startswith("/ui/login"), browser.path
    assert browser.main_text != before, "no message after a wrong token"
    browser.assert_accessible()


def test_signing_out_ends_the_session(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    assert browser.path in ("/ui/", "/ui"), browser.path
    browser.assert_page()
    browser.sign_out()
    assert browser.path.startswith("/ui/login"), browser.path
    browser.open("/ui/")
    assert browser.path.startswith("/ui/login"), "the session outlived the sign-out"


def test_danish_is_the_default_and_the_switch_turns_the_console_english(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    assert browser.lang == "da"
    danish_nav, danish_h1 = browser.nav_text, browser.h1
    browser.switch_language("en")
    assert browser.lang == "en"
    assert browser.nav_text != danish_nav, "the navigation did not change language"
    assert browser.h1 != danish_h1, "the heading did not change language"
    browser.open("/ui/audit")  # remembered on the next page
    assert browser.lang == "en"
    english_h1 = browser.h1
    browser.switch_language("da")
    assert browser.lang == "da"
    assert browser.h1 != english_h1
    assert browser.driver.find_elements(By.TAG_NAME, "h1")
