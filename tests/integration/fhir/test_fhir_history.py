"""History under ``/fhir`` on both engines: the whole directory's, a type's and one resource's
(newest first, as FHIR R4 lists a history), paged by ``next`` links that keep the moment of
their first page, the bookmark an update client asks with next, and vread of one version.

The directory is the hand-made one of ``tests/support/fhir_directory.py`` over ``synced_app``'s
two snapshots: 101 renamed, 301 and Endpoint ED new, 300 and Endpoint EC deleted by the second.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soredi_sync.bootstrap import App
from soredi_sync.services.fhir_directory import RESOURCE_TYPES
from tests.support.fhir_api import (
    FHIR,
    Headers,
    Mirror,
    assert_outcome,
    bookmark,
    fetch,
    history,
    link,
    page_through,
    relative,
    replay,
)
from tests.support.fhir_directory import (
    EA,
    EB,
    EC,
    ED,
    Directory,
    first_snapshot,
    instant,
    record_third,
    second_snapshot,
)


def moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def requests(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["request"]["method"], e["request"]["url"]) for e in entries]


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


class TestTypeAndSystemHistory:
    def test_since_the_second_snapshot_its_changes_and_deletions_newest_first(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        since = instant(directory.second)  # at or after
        entries = history(client, reader, f"/fhir/Organization/_history?_since={since}")
        assert requests(entries) == [
            ("DELETE", "Organization/300"),
            ("PUT", "Organization/301"),
            ("PUT", "Organization/101"),
        ]
        deleted, _new, changed = entries
        assert changed["resource"]["name"] == "Kardiologisk Afdeling Nord"
        assert changed["fullUrl"] == "http://testserver/fhir/Organization/101"
        assert changed["response"]["etag"] == f'W/"{directory.second.id}"'
        assert changed["response"]["lastModified"] == changed["resource"]["meta"]["lastUpdated"]
        assert "resource" not in deleted
        assert deleted["response"]["etag"] == f'W/"{directory.second.id}"'

    def test_without_since_every_version_newest_first_and_paged_by_next_links(
        self, client: TestClient, reader: Headers
    ) -> None:
        entries = history(client, reader, "/fhir/Endpoint/_history?_count=2")
        assert requests(entries) == [
            ("DELETE", f"Endpoint/{EC}"),
            ("PUT", f"Endpoint/{ED}"),
            ("PUT", f"Endpoint/{EC}"),
            ("PUT", f"Endpoint/{EB}"),
            ("PUT", f"Endpoint/{EA}"),
        ]

    def test_the_whole_directorys_history_merges_both_types_newest_first(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        since = instant(directory.second)
        entries = history(client, reader, f"/fhir/_history?_since={since}&_count=2")
        assert sorted(e["request"]["url"] for e in entries) == sorted(
            ["Organization/101", "Organization/301", "Organization/300", f"Endpoint/{ED}"]
            + [f"Endpoint/{EC}"]
        )
        everything = history(client, reader, "/fhir/_history?_count=1000")
        snapshots = [int(e["response"]["etag"][3:-1]) for e in everything]
        assert snapshots == sorted(snapshots, reverse=True)
        first_versions = len(first_snapshot()["Organization"]) + len(first_snapshot()["Endpoint"])
        assert len(everything) == first_versions + 5

    def test_replaying_the_history_since_a_snapshot_leads_from_its_state_to_the_current_one(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        mirror: Mirror = {t: {r["id"]: r for r in first_snapshot()[t]} for t in RESOURCE_TYPES}
        replay(
            mirror, history(client, reader, f"/fhir/_history?_since={instant(directory.second)}")
        )
        current = {
            resource_type: {
                e["resource"]["id"]: e["resource"]
                for page in page_through(client, reader, f"/fhir/{resource_type}?_count=1000")
                for e in page.get("entry", [])
            }
            for resource_type in RESOURCE_TYPES
        }
        assert {t: {i: without_meta(r) for i, r in m.items()} for t, m in mirror.items()} == {
            t: {i: without_meta(r) for i, r in m.items()} for t, m in current.items()
        }

    def test_a_history_paged_while_a_snapshot_lands_keeps_the_moment_of_its_first_page(
        self, client: TestClient, reader: Headers, synced_app: App, sandbox_dir: Path
    ) -> None:
        first = fetch(client, "/fhir/Endpoint/_history?_count=2", reader)
        resources = second_snapshot()
        resources["Endpoint"] = [e for e in resources["Endpoint"] if e["id"] != EB]
        record_third(synced_app, sandbox_dir, resources)  # deletes EB: a newer version
        rest = history(client, reader, relative(link(first, "next") or ""))
        assert requests(first["entry"] + rest) == [
            ("DELETE", f"Endpoint/{EC}"),
            ("PUT", f"Endpoint/{ED}"),
            ("PUT", f"Endpoint/{EC}"),
            ("PUT", f"Endpoint/{EB}"),
            ("PUT", f"Endpoint/{EA}"),
        ]
        again = history(client, reader, "/fhir/Endpoint/_history")
        assert requests(again)[0] == ("DELETE", f"Endpoint/{EB}")

    def test_since_now_is_empty(self, client: TestClient, reader: Headers) -> None:
        bundle = fetch(client, "/fhir/Organization/_history?_since=2999-01-01T00:00:00Z", reader)
        assert bundle["type"] == "history" and "entry" not in bundle
        assert "meta" not in bundle
        assert link(bundle, "next") is None

    @pytest.mark.parametrize(
        "query", ["_since=yesterday", "_since=2026-12-02T10:00:00", "_count=x", "_page=Zm9v"]
    )
    def test_a_malformed_value_is_400(
        self, client: TestClient, reader: Headers, query: str
    ) -> None:
        response = client.get(f"/fhir/Organization/_history?{query}", headers=reader)
        assert_outcome(response, 400, "invalid")


class TestBookmark:
    def test_the_first_history_page_says_the_time_of_the_newest_change(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        bundle = fetch(client, "/fhir/_history?_count=1", reader)
        assert moment(bookmark(bundle)) == directory.second.taken_at
        assert bookmark(bundle) == bundle["entry"][0]["response"]["lastModified"]

    def test_a_search_says_the_time_of_the_newest_version_the_directory_holds(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        bundle = fetch(client, "/fhir/Organization?_id=102", reader)  # 102: of the first
        assert moment(bookmark(bundle)) == directory.second.taken_at

    def test_asking_again_from_the_bookmark_gives_its_snapshot_again_and_nothing_older(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        since = bookmark(fetch(client, "/fhir/_history?_count=1", reader))
        entries = history(client, reader, f"/fhir/_history?_since={since}")
        assert {e["response"]["etag"] for e in entries} == {f'W/"{directory.second.id}"'}
        assert len(entries) == 5

    def test_an_update_client_following_its_bookmarks_ends_equal_to_the_directory(
        self, client: TestClient, reader: Headers, synced_app: App, sandbox_dir: Path
    ) -> None:
        pages = {t: page_through(client, reader, f"/fhir/{t}?_count=7") for t in RESOURCE_TYPES}
        mirror: Mirror = {
            t: {e["resource"]["id"]: e["resource"] for p in pages[t] for e in p.get("entry", [])}
            for t in RESOURCE_TYPES
        }
        since = bookmark(pages["Organization"][0])
        resources = second_snapshot()
        resources["Organization"] = [o for o in resources["Organization"] if o["id"] != "102"]
        record_third(synced_app, sandbox_dir, resources)
        replay(mirror, history(client, reader, f"/fhir/_history?_since={since}&_count=3"))
        assert "102" not in mirror["Organization"]
        current = {
            t: {e["resource"]["id"]: e["resource"] for p in pages for e in p.get("entry", [])}
            for t, pages in (
                (t, page_through(client, reader, f"/fhir/{t}?_count=1000")) for t in RESOURCE_TYPES
            )
        }
        assert mirror == current


class TestInstanceHistory:
    def test_a_renamed_organizations_versions_newest_first(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        entries = history(client, reader, "/fhir/Organization/101/_history")
        assert requests(entries) == [("PUT", "Organization/101")] * 2
        assert [e["resource"]["name"] for e in entries] == [
            "Kardiologisk Afdeling Nord",
            "Kardiologisk Afdeling Østerbro",
        ]
        assert [e["resource"]["meta"]["versionId"] for e in entries] == [
            str(directory.second.id),
            str(directory.first.id),
        ]

    def test_a_deleted_endpoints_history_starts_with_its_deletion(
        self, client: TestClient, reader: Headers
    ) -> None:
        entries = history(client, reader, f"/fhir/Endpoint/{EC}/_history?_count=1")
        assert requests(entries) == [("DELETE", f"Endpoint/{EC}"), ("PUT", f"Endpoint/{EC}")]

    def test_since_the_second_snapshot_only_its_version(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        since = instant(directory.second)
        entries = history(client, reader, f"/fhir/Organization/101/_history?_since={since}")
        assert [e["resource"]["name"] for e in entries] == ["Kardiologisk Afdeling Nord"]
        unchanged = fetch(client, f"/fhir/Organization/102/_history?_since={since}", reader)
        assert "entry" not in unchanged

    def test_an_id_that_never_had_a_version_is_404(
        self, client: TestClient, reader: Headers
    ) -> None:
        response = client.get("/fhir/Organization/999/_history", headers=reader)
        assert_outcome(response, 404, "not-found")
        response = client.get("/fhir/Endpoint/101/_history", headers=reader)  # a SOR-ID
        assert_outcome(response, 404, "not-found")


class TestVread:
    def test_each_version_of_a_renamed_organization_as_its_snapshot_made_it(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        for snapshot, name in (
            (directory.first, "Kardiologisk Afdeling Østerbro"),
            (directory.second, "Kardiologisk Afdeling Nord"),
        ):
            response = client.get(f"/fhir/Organization/101/_history/{snapshot.id}", headers=reader)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == FHIR
            assert response.headers["etag"] == f'W/"{snapshot.id}"'
            body = response.json()
            assert body["name"] == name
            assert body["meta"]["versionId"] == str(snapshot.id)

    def test_the_current_version_read_by_its_version_id_is_the_read(
        self, client: TestClient, reader: Headers
    ) -> None:
        current = fetch(client, f"/fhir/Endpoint/{EA}", reader)
        version = current["meta"]["versionId"]
        assert fetch(client, f"/fhir/Endpoint/{EA}/_history/{version}", reader) == current

    def test_a_snapshot_that_made_no_version_of_it_is_404(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        url = f"/fhir/Organization/102/_history/{directory.second.id}"  # unchanged by it
        assert_outcome(client.get(url, headers=reader), 404, "not-found")
        for version in ("x", "-1", "1" * 30):
            response = client.get(f"/fhir/Organization/101/_history/{version}", headers=reader)
            assert_outcome(response, 404, "not-found")

    def test_the_version_that_deleted_it_is_410(
        self, client: TestClient, reader: Headers, directory: Directory
    ) -> None:
        url = f"/fhir/Organization/300/_history/{directory.second.id}"
        assert_outcome(client.get(url, headers=reader), 410, "deleted")
        kept = fetch(client, f"/fhir/Organization/300/_history/{directory.first.id}", reader)
        assert kept["name"] == "Gamma Care"
