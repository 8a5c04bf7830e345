"""Driving the web console in a real browser: headless Chromium from Debian's packages through
its chromedriver (Selenium), a signed-in tab (``Browser``), screenshots of every page visited and
the axe-core accessibility check.

The fixtures built on these (``console``, ``browser``, ``signed_in``) live in
``tests/system/browser/conftest.py``.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from soredi_sync.bootstrap import App
from soredi_sync.domain.model import GlnMode
from tests.support.api import World
from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDE = (1280, 900)
MAIN_NAV = "header nav"  # not the pagination of a table
NARROW = (390, 844)

BROWSER_TESTS = REPO_ROOT / "tests" / "system" / "browser"
AXE = BROWSER_TESTS / "node_modules" / "axe-core" / "axe.min.js"
# What fails the check; "moderate" and "minor" findings are printed, not failed.
AXE_FAILING = ("serious", "critical")

SCREENSHOTS_ENV = "SOREDI_SCREENSHOTS"
DOCS_SCREENSHOTS_ENV = "SOREDI_DOCS_SCREENSHOTS"
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def missing(what: str) -> None:
    """Skip the test for a missing tool; under CI (which installs it: .ci/run), fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing (.ci/run installs it)")
    pytest.skip(f"{what} is missing (see .ci/run)")


def start_chromium() -> webdriver.Chrome:
    """Headless Chromium through Debian's chromedriver, 1280 x 900."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing(f"{CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WIDE[0]},{WIDE[1]}",
        "--lang=da-DK",
        "--force-color-profile=srgb",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def axe_source() -> str:
    """axe-core from the npm registry, as package-lock.json pins it (``npm ci`` once)."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            missing("npm (for axe-core)")
        assert npm is not None
        done = subprocess.run(
            [npm, "ci", "--prefix", str(BROWSER_TESTS), "--no-audit", "--no-fund", "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0 and AXE.is_file(), done.stdout + done.stderr
    return AXE.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Console:
    """The API and console served on a loopback port over a synced sandbox, and its tokens."""

    base: str
    engine: str
    operator: str  # every scope, no owner restriction
    auditor: str  # registry:read, audit:read, route:read, restricted to world.owner_in
    router: str  # route:read only
    world: World  # owner_in (the auditor's region) and owner_out, a unit and a GLN of each
    days: tuple[date, ...]  # the effective dates of the synced snapshots, oldest first
    database_url: str = ""  # the database it serves (for a test that writes there too)

    def url(self, path: str, **query: str) -> str:
        return self.base + path + (f"?{urlencode(query)}" if query else "")


@dataclass
class Browser:
    """The one Chromium tab of a test, on ``console``. Every page it loads is saved as a PNG in
    ``shots`` (``<test>-<nn>-<what>.png``)."""

    driver: webdriver.Chrome
    console: Console
    shots: Path
    test: str
    axe: str = field(repr=False)
    shot_count: int = field(default=0, repr=False)

    # navigation ---------------------------------------------------------------------------

    def open(self, path: str, **query: str) -> Browser:
        self.driver.get(self.console.url(path, **query))
        self._loaded()
        return self

    def click(self, element: WebElement) -> Browser:
        """Click something that loads a new page (link, submit button), and wait for it."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 15).until(lambda d: _stale(old))
        self._loaded()
        return self

    def submit(self, form: WebElement) -> Browser:
        """Submit ``form`` with its submit button (or the form itself when it has none)."""
        buttons = form.find_elements(By.CSS_SELECTOR, "button:not([type=button]), [type=submit]")
        if buttons:
            return self.click(buttons[0])
        old = self.driver.find_element(By.TAG_NAME, "html")
        form.submit()
        WebDriverWait(self.driver, 15).until(lambda d: _stale(old))
        self._loaded()
        return self

    def _loaded(self) -> None:
        WebDriverWait(self.driver, 15).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        self.shoot()

    def sign_in(self, token: str) -> Browser:
        """Paste ``token`` into the sign-in page (opened unless it is the page shown) and
        submit; it must land on a page of the console."""
        if not self.path.startswith("/ui/login"):
            self.open("/ui/login")
        self.fill_token(token)
        assert "/ui/login" not in self.path, f"sign-in failed: {self.h1!r} {self.main_text[:300]}"
        return self

    def fill_token(self, token: str) -> Browser:
        """Paste ``token`` into the sign-in form shown and submit it."""
        form = self.form("/ui/login")
        form.find_element(By.CSS_SELECTOR, "input[name=token]").send_keys(token)
        return self.submit(form)

    def switch_language(self, lang: str) -> Browser:
        """Use the language switch (a button, or a select and its button) to choose ``lang``."""
        form = self.form("/ui/lang")
        buttons = form.find_elements(By.CSS_SELECTOR, f"button[name=lang][value={lang}]")
        if buttons:
            return self.click(buttons[0])
        Select(form.find_element(By.CSS_SELECTOR, "select[name=lang]")).select_by_value(lang)
        return self.submit(form)

    def sign_out(self) -> Browser:
        return self.submit(self.form("/ui/logout"))

    def fill_date(self, field_: WebElement, day: date) -> None:
        """Set a date input (typing would depend on the browser's locale)."""
        self.driver.execute_script("arguments[0].value = arguments[1]", field_, day.isoformat())

    def form(self, action: str) -> WebElement:
        """The form whose action ends with ``action`` (query string aside)."""
        for form in self.driver.find_elements(By.TAG_NAME, "form"):
            target = str(form.get_attribute("action") or "").split("?")[0]
            if target.endswith(action):
                return form
        raise AssertionError(f"no form to {action} on {self.path}")

    # what the page shows ------------------------------------------------------------------

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return re.sub(r"^https?://[^/]+", "", url)

    @property
    def lang(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "html").get_attribute("lang"))

    @property
    def h1(self) -> str:
        headings = self.driver.find_elements(By.TAG_NAME, "h1")
        return headings[0].text.strip() if headings else ""

    @property
    def main_text(self) -> str:
        mains = self.driver.find_elements(By.TAG_NAME, "main")
        return (mains[0] if mains else self.driver.find_element(By.TAG_NAME, "body")).text

    @property
    def nav_text(self) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, MAIN_NAV).text

    @property
    def is_error_page(self) -> bool:
        """The console's error page (403, 404, 500 ...) rather than the page asked for."""
        return bool(self.driver.find_elements(By.CSS_SELECTOR, ".error-page"))

    @property
    def error_status(self) -> int | None:
        """The status the error page shows (error.html: "Status 403"), None on other pages."""
        if not self.is_error_page:
            return None
        text = self.driver.find_element(By.CSS_SELECTOR, ".error-page").text
        found = re.search(r"\b([45]\d\d)\b", text)
        return int(found.group(1)) if found else 0

    def nav_links(self) -> list[WebElement]:
        """The links of the main navigation."""
        return self.driver.find_elements(By.CSS_SELECTOR, f"{MAIN_NAV} a[href]")

    def focused_in(self, selector: str) -> bool:
        """The element with the keyboard focus is inside ``selector``."""
        return bool(
            self.driver.execute_script(
                "const a = document.activeElement; return !!(a && a.closest(arguments[0]));",
                selector,
            )
        )

    def focus_style(self) -> dict[str, str]:
        """The computed outline and box shadow of the focused element."""
        style: dict[str, str] = self.driver.execute_script(
            "const s = getComputedStyle(document.activeElement);"
            " return {tag: document.activeElement.outerHTML.slice(0, 120),"
            " outlineStyle: s.outlineStyle, outlineWidth: s.outlineWidth,"
            " outlineColor: s.outlineColor, boxShadow: s.boxShadow};"
        )
        return style

    def focus_is_visible(self) -> bool:
        """The focused element draws an outline (or a box shadow) that can be seen."""
        style = self.focus_style()
        outline = (
            style["outlineStyle"] != "none"
            and float(style["outlineWidth"].removesuffix("px") or 0) >= 1
            and not style["outlineColor"].endswith(", 0)")
            and style["outlineColor"] != "transparent"
        )
        return outline or style["boxShadow"] not in ("", "none")

    def rows(self, table: str = "main table") -> list[WebElement]:
        """The body rows of the first table matching ``table``."""
        return self.driver.find_elements(By.CSS_SELECTOR, f"{table} tbody tr")

    def assert_page(self) -> None:
        """A page of the console: a heading, no error page, no horizontal overflow."""
        assert self.h1, f"no h1 on {self.path}"
        assert not self.is_error_page, f"{self.path}: error {self.error_status}: {self.h1}"

    def overflows(self) -> bool:
        """The page is wider than the window (a horizontal scroll bar on the page itself)."""
        return bool(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth"
                " > document.documentElement.clientWidth + 1"
            )
        )

    def download(self, link: WebElement, into: Path, timeout: float = 15) -> Path:
        """Click ``link`` (a download) and wait for the file Chromium saves into ``into``."""
        into.mkdir(parents=True, exist_ok=True)
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(into)}
        )
        before = set(into.iterdir())
        link.click()

        def saved() -> Path | None:
            new = [p for p in set(into.iterdir()) - before if not p.name.endswith(".crdownload")]
            return new[0] if new else None

        return Path(wait_until(saved, timeout, f"a download into {into}"))

    # screenshots --------------------------------------------------------------------------

    def shoot(self, what: str | None = None) -> Path:
        """Save the whole page as a PNG; the name says the test, the order and the page."""
        self.shot_count += 1
        what = what or (re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-") or "root")
        path = self.shots / f"{self.test}-{self.shot_count:02d}-{what[:60]}.png"
        path.write_bytes(self.png())
        return path

    def png(self, max_height: int = 6000) -> bytes:
        """The whole page (not only the viewport, at most ``max_height`` pixels), as Chromium
        renders it."""
        width, height = self.driver.execute_script(
            "const e = document.documentElement; return"
            " [Math.max(e.scrollWidth, e.clientWidth), Math.max(e.scrollHeight, e.clientHeight)]"
        )
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1}
        capture = {"format": "png", "captureBeyondViewport": True, "clip": clip}
        try:
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", capture)
        except WebDriverException:
            # Chromium's inspector now and then loses a node while it lays out the whole page
            # ("Node with given id does not belong to the document"); a second try takes it.
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", capture)
        return base64.b64decode(shot["data"])

    def publish(self, name: str) -> None:
        """One of the main screenshots: with ``SOREDI_DOCS_SCREENSHOTS=1`` (and on SQLite, so
        once per run) also saved as ``docs/screenshots/<name>.png`` (the top 1600 pixels)."""
        if os.environ.get(DOCS_SCREENSHOTS_ENV) == "1" and self.console.engine == "sqlite":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (DOCS_SCREENSHOTS / f"{name}.png").write_bytes(self.png(max_height=1600))

    # accessibility ------------------------------------------------------------------------

    def axe_violations(self) -> list[dict[str, Any]]:
        """Run axe-core on the page as it is; every violation (all impacts).

        WebDriver's scripts are not subject to the page's Content-Security-Policy in Chromium,
        so axe is injected as it is, with no CSP bypass."""
        if not self.driver.execute_script("return typeof window.axe === 'object'"):
            self.driver.execute_script(self.axe)
        result: list[dict[str, Any]] | str = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations), e => done('axe failed: ' + e));"
        )
        assert not isinstance(result, str), result
        return result

    def assert_accessible(self) -> None:
        """No axe-core violation with a serious or critical impact on this page."""
        violations = self.axe_violations()
        failing = [v for v in violations if v.get("impact") in AXE_FAILING]
        assert not failing, f"axe on {self.path}:\n" + describe_violations(failing)


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"[{violation.get('helpUrl', '')}]"
        )
        for node in violation.get("nodes", [])[:5]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {target}: {summary[:300]}")
            lines.append(f"      {str(node.get('html', ''))[:200]}")
    return "\n".join(lines)


def _stale(element: WebElement) -> bool:
    """Whether ``element``'s page is gone. While the next page replaces it, Chromium may answer
    "Node with given id does not belong to the document" instead of "stale": gone as well."""
    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException included
        return True
    return False


def two_regions(app: App) -> World:
    """Two regions of the synced sandbox, each with a unit carrying an active GLN of its own
    (as ``tests/fixtures/api.py``'s ``world`` picks them)."""
    index = app.routing().resolver().index
    units = index.registry.units
    carried = [
        (units[carriers[0]].owner_sor_id, carriers[0], gln)
        for gln, carriers in sorted(index.owners_by_gln.items())
        if units[carriers[0]].gln_mode is GlnMode.OWN and index.registry.glns[gln].active
    ]
    regions = [c for c in carried if units[c[0]].name.startswith("Region ")]
    first = regions[0]
    other = next(c for c in regions if c[0] != first[0])
    return World(*first, *other)


def console_pages(console: Console) -> dict[str, str]:
    """The pages of the console a test visits, by name, for the operator."""
    world = console.world
    return {
        "overview": "/ui/",
        "registry": "/ui/registry",
        "search": f"/ui/registry?q={world.gln_in}",
        "unit": f"/ui/registry/units/{world.unit_in}",
        "gln": f"/ui/registry/glns/{world.gln_in}",
        "audit": "/ui/audit",
        "adoption": "/ui/adoption?by=region",
        "cutover": "/ui/cutover",
        "route": "/ui/route",
        "plans": "/ui/plans",
    }
