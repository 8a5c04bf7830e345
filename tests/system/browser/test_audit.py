"""The audit page in headless Chromium: the filters narrow the findings, a regional auditor sees
only their region's findings and downloads exactly what the page shows."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from soredi_sync.bootstrap import bootstrap
from soredi_sync.services.decision_log import record_decisions
from soredi_sync.services.traffic import update_traffic
from tests.support.app import make_settings
from tests.support.browser import Browser, Console
from tests.support.decisions import logged

pytestmark = pytest.mark.slow


def count(browser: Browser, what: str = "findings") -> int:
    """A figure of the page's summary (``#count-findings``), in Danish or English format."""
    text = browser.driver.find_element(By.ID, f"count-{what}").text
    return int(re.sub(r"\D", "", text))


def filter_by(browser: Browser, **choices: str) -> None:
    """Choose the filters (select name → option value) and show the findings."""
    form = browser.driver.find_element(By.CSS_SELECTOR, "form.filters")
    for name, value in choices.items():
        Select(form.find_element(By.NAME, name)).select_by_value(value)
    browser.submit(form)
    browser.assert_page()


def test_a_severity_then_a_rule_narrow_the_findings(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/audit")
    browser.assert_page()
    everything = count(browser)
    assert everything > 0 and browser.rows(), "the sandbox has findings to list"

    filter_by(browser, severity="error")
    errors = count(browser)
    assert 0 < errors < everything
    assert "severity=error" in browser.path
    classes = {row.get_attribute("class") for row in browser.rows()}
    assert classes == {"severity-error"}, classes

    rule = browser.rows()[0].find_element(By.CSS_SELECTOR, "td abbr").text
    filter_by(browser, rule=rule)
    only_rule = count(browser)
    assert 0 < only_rule <= errors
    assert {row.find_element(By.CSS_SELECTOR, "td abbr").text for row in browser.rows()} == {rule}


def test_a_regional_auditor_sees_and_downloads_only_their_region(
    console: Console, signed_in: Callable[[str], Browser], tmp_path: Path
) -> None:
    browser = signed_in(console.operator)
    browser.open("/ui/audit")
    everything = count(browser)
    browser.sign_out()

    region = console.world.owner_in
    browser.sign_in(console.auditor)
    browser.open("/ui/audit", size="100")
    browser.assert_page()
    mine = count(browser)
    assert 0 < mine < everything
    rows = browser.rows()
    assert rows and all(f"({region})" in row.text for row in rows), region
    assert console.world.owner_out not in browser.main_text.replace("\n", " ")
    browser.publish("audit-region")

    # The auditor narrows to one rule and downloads what is shown.
    rule = rows[0].find_element(By.CSS_SELECTOR, "td abbr").text
    filter_by(browser, rule=rule)
    shown = count(browser)
    link = browser.driver.find_element(By.CSS_SELECTOR, "a[href*='findings.csv']")
    saved = browser.download(link, tmp_path / "downloads")
    with saved.open(encoding="utf-8", newline="") as file:
        downloaded = list(csv.DictReader(file))
    assert len(downloaded) == shown
    assert {row["owner_sor_id"] for row in downloaded} == {region}
    assert {row["code"] for row in downloaded} == {rule}
    browser.assert_accessible()


def test_a_regional_auditor_sees_their_findings_that_cost_the_most_traffic_first(
    console: Console, signed_in: Callable[[str], Browser]
) -> None:
    region = console.world.owner_in
    findings = httpx.get(
        console.url("/v1/audit", owner=region),
        headers={"Authorization": f"Bearer {console.operator}"},
        timeout=60,
    ).json()["findings"]
    glns = list(dict.fromkeys(f["gln"] for f in findings if f["gln"]))[:3]
    now = datetime.now(UTC)
    with bootstrap(make_settings(console.database_url)) as app:
        record_decisions(
            app.uow,
            [
                logged(now, address_gln=gln, conversion="fhir->oioxml")
                for n, gln in enumerate(glns, start=1)
                for _ in range(10 * n)
            ],
        )
        update_traffic(app.uow, app.traffic_owners(), now)

    browser = signed_in(console.auditor)
    browser.open("/ui/audit")
    browser.assert_page()
    rows = browser.rows("table.by-traffic")
    shown = [row.find_element(By.CSS_SELECTOR, "td.mono").text for row in rows]
    assert shown[0] == glns[-1] and set(shown) == set(glns)
    converted = [int(row.find_elements(By.CSS_SELECTOR, "td.num")[0].text) for row in rows]
    assert converted == sorted(converted, reverse=True) and converted[0] == 30
    browser.shoot("by-traffic")
    browser.publish("audit-by-traffic")
    browser.assert_accessible()

    browser.sign_out()
    browser.sign_in(console.operator)
    browser.open("/ui/audit")  # every owner: no owner view, no traffic look-up
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "table.by-traffic")
