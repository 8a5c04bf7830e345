"""Signing in and out of the console, and its language switch, in headless Chromium."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

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


@pytest.fixture
def other_site(console: Console) -> Iterator[str]:
    """A page on another site (``localhost`` is not the same site as ``127.0.0.1``) linking to
    the console's audit page, as an e-mail or an issue tracker would."""
    target = html.escape(console.url("/ui/audit", severity="warning"))
    body = f'<!doctype html><title>Elsewhere</title><a id="go" href="{target}">audit</a>'.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_link_from_another_site_opens_the_page_signed_in(
    console: Console, signed_in: Callable[[str], Browser], other_site: str
) -> None:
    browser = signed_in(console.operator)
    browser.driver.get(other_site)
    assert "Elsewhere" in browser.driver.title
    browser.click(browser.driver.find_element(By.ID, "go"))
    # The strict session cookie is not sent on the cross-site click; the console answers with
    # a page that loads the same address again from its own site, with the cookie.
    WebDriverWait(browser.driver, 15).until(lambda d: "/ui/audit" in d.current_url)
    WebDriverWait(browser.driver, 15).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "form.filters")
    )
    assert browser.path == "/ui/audit?severity=warning", browser.path
    browser.assert_page()
