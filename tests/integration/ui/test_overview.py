"""The console's overview (``/ui/``) over the synced sandbox: the state of the data, the sync
runs and the sources' health for ``registry:read``; the findings by severity and the FDIS91
adoption trend for ``audit:read`` (stored summaries for the whole registry, the API's figures
for an owner-restricted token); Danish by default, English on request."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.ports.records import RunStatus
from soredi_sync.services import queries
from tests.support.api import World, bearer
from tests.support.ui import UiClient, assert_console_headers


def overview(client: TestClient) -> str:
    answer = client.get("/ui/")
    assert answer.status_code == 200, answer.text
    assert_console_headers(answer)
    return answer.text


def severity_counts(html: str) -> dict[str, int]:
    found = dict(re.findall(r'id="count-(\w+)">([^<]*)<', html))
    return {k: int(re.sub(r"\D", "", v)) for k, v in found.items()}


def trend_row(html: str, snapshot_id: int) -> list[str]:
    row = re.search(rf'<tr id="trend-{snapshot_id}">(.*?)</tr>', html, re.S)
    assert row, f"no adoption row for snapshot {snapshot_id}"
    return [" ".join(c.split()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1))]


def api(client: TestClient, path: str, **query: Any) -> Any:
    """The API's answer for the console's token."""
    token = client.ui_token  # type: ignore[attr-defined]
    answer = client.get(path, params=query, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


def current_id(app: App) -> int:
    with app.uow() as uow:
        current = uow.registry.current_snapshot()
    assert current is not None
    return current.id


class TestWholeRegistry:
    def test_it_shows_the_snapshot_runs_sources_findings_and_adoption(
        self, ui_client: UiClient, synced_app: App
    ) -> None:
        client = ui_client("registry:read", "audit:read", lang="en")
        html = overview(client)
        snapshot = api(client, "/v1/snapshots/current")["snapshot"]
        assert f"<dd>{snapshot['id']} (describes" in html
        assert "Recent sync runs" in html and "sor-filer" in html
        assert "No source is degraded." in html
        findings = api(client, "/v1/audit")["findings"]
        assert severity_counts(html) == {
            s: sum(f["severity"] == s for f in findings) for s in ("error", "warning", "info")
        }
        assert "<svg" in html and "<polyline" in html  # the trend over both snapshots
        latest = api(client, "/v1/adoption")["snapshots"][-1]["counts"]["all"]
        cells = trend_row(html, snapshot["id"])
        assert cells[2:5] == [
            str(latest["fhir_only"]),
            str(latest["legacy_only"]),
            str(latest["both"]),
        ]

    def test_the_findings_are_read_from_the_stored_summary(
        self, ui_client: UiClient, synced_app: App
    ) -> None:
        snapshot_id = current_id(synced_app)
        with synced_app.uow() as uow:  # figures no audit could give: the page must read them
            uow.audits.save_summary(
                snapshot_id,
                computed_at=datetime.now(UTC),
                findings={"by_severity": {"error": 1234, "warning": 5, "info": 6}, "total": 1245},
                adoption={"all": {"all": {"fhir_only": 7, "legacy_only": 8, "both": 9}}},
            )
            uow.commit()
        html = overview(ui_client("audit:read", lang="en"))
        assert severity_counts(html) == {"error": 1234, "warning": 5, "info": 6}
        assert trend_row(html, snapshot_id)[2:5] == ["7", "8", "9"]

    def test_a_degraded_source_shows_with_the_reason_its_runs_failed(
        self, ui_client: UiClient, synced_app: App
    ) -> None:
        failures = synced_app.settings.daemon.degraded_after_failures
        with synced_app.uow() as uow:
            for _ in range(failures):
                run = uow.runs.start("sor-filer", "/nowhere", "schedule")
                uow.runs.finish(run, RunStatus.FAILED, error="sor.zip: 503 from the server")
            uow.commit()
        html = overview(ui_client("registry:read", lang="en"))
        assert "Degraded: sor-filer" in html
        assert "sor.zip: 503 from the server" in html
        assert html.count('class="badge badge--failed"') == failures


class TestScopes:
    def test_registry_read_alone_shows_no_findings(self, ui_client: UiClient) -> None:
        html = overview(ui_client("registry:read", lang="en"))
        assert "Recent sync runs" in html
        assert "Findings by severity" not in html and "<svg" not in html

    def test_audit_read_alone_shows_no_runs(self, ui_client: UiClient) -> None:
        html = overview(ui_client("audit:read", lang="en"))
        assert "Findings by severity" in html
        assert "Recent sync runs" not in html and "Current snapshot" not in html

    def test_a_token_with_neither_scope_is_told_so(self, ui_client: UiClient) -> None:
        html = overview(ui_client("route:read", lang="en"))
        assert "nothing to show here" in html
        assert "Recent sync runs" not in html and "Findings by severity" not in html


class TestOwnerRestriction:
    def test_a_restricted_token_sees_its_owners_figures_as_the_api_counts_them(
        self, ui_client: UiClient, synced_app: App, world: World
    ) -> None:
        everyone = overview(ui_client("audit:read", lang="en"))
        client = ui_client("audit:read", owners=(world.owner_in,), lang="en")
        html = overview(client)
        findings = api(client, "/v1/audit")["findings"]
        assert {(f["owner"] or {}).get("sor_id") for f in findings} <= {world.owner_in}
        mine = Counter(f["severity"] for f in findings)
        assert severity_counts(html) == {s: mine[s] for s in ("error", "warning", "info")}
        assert severity_counts(html) != severity_counts(everyone)
        snapshot_id = current_id(synced_app)
        counts = api(client, "/v1/adoption")["snapshots"][-1]["counts"]["all"]
        cells = trend_row(html, snapshot_id)
        assert cells[2:5] == [
            str(counts["fhir_only"]),
            str(counts["legacy_only"]),
            str(counts["both"]),
        ]
        assert trend_row(everyone, snapshot_id) != cells
        assert "count the data of your institution owners only" in html

    def test_its_adoption_is_counted_once_per_snapshot(
        self,
        ui_client: UiClient,
        synced_app: App,
        world: World,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        counted: list[int] = []
        count = queries.adoption_on

        def counting(*args: Any, **kwargs: Any) -> Any:
            counted.append(args[2].id)
            return count(*args, **kwargs)

        monkeypatch.setattr(queries, "adoption_on", counting)
        client = ui_client("audit:read", owners=(world.owner_in,), lang="en")
        first, again = overview(client), overview(client)
        assert severity_counts(first) == severity_counts(again)
        with synced_app.uow() as uow:
            assert sorted(counted) == sorted(s.id for s in uow.registry.list_snapshots())

    def test_another_owners_figures_are_not_those_shown(
        self, ui_client: UiClient, world: World
    ) -> None:
        mine = ui_client("audit:read", owners=(world.owner_in,), lang="en")
        theirs = ui_client("audit:read", owners=(world.owner_out,), lang="en")
        other = Counter(f["severity"] for f in api(theirs, "/v1/audit")["findings"])
        shown = severity_counts(overview(mine))
        own = Counter(f["severity"] for f in api(mine, "/v1/audit")["findings"])
        assert shown == {s: own[s] for s in ("error", "warning", "info")}
        if own != other:
            assert shown != {s: other[s] for s in ("error", "warning", "info")}


class TestLanguage:
    def test_danish_is_the_default(self, ui_client: UiClient) -> None:
        html = overview(ui_client("registry:read", "audit:read"))
        assert '<html lang="da">' in html
        for danish in ("Overblik", "Aktuelt øjebliksbillede", "Fund efter alvorlighed"):
            assert danish in html
        assert "Udbredelse af CareCommunication (FDIS91)" in html  # the chart's title too
        assert "Current snapshot" not in html

    def test_english_on_request(self, ui_client: UiClient) -> None:
        html = overview(ui_client("registry:read", "audit:read", lang="en"))
        assert '<html lang="en">' in html
        assert "Current snapshot" in html and "Findings by severity" in html
        assert "Aktuelt øjebliksbillede" not in html


# -- the menu ------------------------------------------------------------------------------------


class TestMenu:
    def test_the_menu_offers_the_pages_of_the_callers_scopes_and_no_others(
        self, ui_client: UiClient
    ) -> None:
        auditor = ui_client("audit:read", "registry:read").get("/ui/").text
        menu = auditor[auditor.index("<nav") : auditor.index("</nav>")]
        assert 'href="/ui/audit"' in menu and 'href="/ui/registry"' in menu
        assert 'href="/ui/route"' not in menu
        router = ui_client("route:read").get("/ui/").text
        menu = router[router.index("<nav") : router.index("</nav>")]
        assert 'href="/ui/route"' in menu and 'href="/ui/audit"' not in menu
