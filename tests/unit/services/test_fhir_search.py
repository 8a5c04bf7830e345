"""The FHIR directory's read side on the fakes: the index of the latest versions (owners by the
root of the partOf tree, deletions), when it is rebuilt, search parsing, paging and history."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.services.fhir_search import (
    DirectoryCache,
    InvalidSearch,
    Marks,
    build_index,
    decode_page,
    encode_page,
    fold,
    parse_instant,
    parse_search,
    read_history,
    run_search,
)
from soredi_sync.services.fhir_search.index import _Packer
from tests.support.factories import snapshot_info
from tests.support.fhir_directory import (
    BULK,
    EA,
    EB,
    EC,
    ED,
    GLN_SYSTEM,
    first_snapshot,
    organization,
    record_directory,
    second_snapshot,
)


@pytest.fixture
def stored(uow: FakeUnitOfWork) -> FakeUnitOfWork:
    record_directory(lambda: uow, snapshot_info(1), snapshot_info(2))
    return uow


def _ids(stored: FakeUnitOfWork, resource_type: str, *params: tuple[str, str]) -> list[str]:
    page = run_search(build_index(stored), parse_search(resource_type, params), frozenset())
    return [r.id for r in page.matches]


class TestIndex:
    def test_it_holds_the_latest_version_of_each_resource_not_deleted(
        self, stored: FakeUnitOfWork
    ) -> None:
        index = build_index(stored)
        assert index.ids["Organization"] == sorted(
            o["id"] for o in second_snapshot()["Organization"]
        )
        assert index.ids["Endpoint"] == [EA, EB, ED]
        renamed = index.get("Organization", "101")
        assert renamed is not None and renamed.names == ("Kardiologisk Afdeling Nord",)
        assert index.is_deleted("Organization", "300") and index.is_deleted("Endpoint", EC)
        assert not index.is_deleted("Organization", "101")

    def test_it_serves_each_resource_as_stored(self, stored: FakeUnitOfWork) -> None:
        import json

        index = build_index(stored)
        for version in stored.fhir.current("Endpoint") + stored.fhir.current("Organization"):
            found = index.get(version.resource_type, version.resource_id)
            assert found is not None
            assert json.loads(index.json(found)) == version.content

    def test_an_organization_belongs_to_the_root_of_its_tree_and_an_endpoint_to_its_users(
        self, stored: FakeUnitOfWork
    ) -> None:
        index = build_index(stored)
        owners = {rid: r.owners for rid, r in index.resources["Organization"].items()}
        assert owners["102"] == owners["101"] == owners["100"] == {"100"}
        assert owners["201"] == {"200"} and owners[BULK[-1]] == {"400"}
        endpoint_owners = {rid: r.owners for rid, r in index.resources["Endpoint"].items()}
        assert endpoint_owners == {EA: {"100"}, EB: {"200"}, ED: {"301"}}

    def test_a_parent_outside_the_directory_or_a_cycle_ends_the_tree(
        self, uow: FakeUnitOfWork
    ) -> None:
        from soredi_sync.services.fhir_directory import record_versions

        orgs = [
            organization("1", "A", part_of="2"),
            organization("2", "B", part_of="1"),
            organization("3", "C", part_of="99"),
        ]
        with uow:
            record_versions(uow, snapshot_info(1), {"Organization": orgs})
        owners = {rid: r.owners for rid, r in build_index(uow).resources["Organization"].items()}
        assert owners["3"] == {"3"}
        assert owners["1"] == owners["2"] and len(owners["1"]) == 1

    def test_an_empty_store_is_an_empty_index(self, uow: FakeUnitOfWork) -> None:
        index = build_index(uow)
        assert index.ids == {"Organization": [], "Endpoint": []}
        assert index.marks == Marks()


class TestCache:
    def test_the_index_is_kept_until_a_newer_version_is_stored(
        self, stored: FakeUnitOfWork
    ) -> None:
        cache = DirectoryCache(lambda: stored)
        first = cache.index()
        assert cache.index() is first
        resources = second_snapshot()
        resources["Organization"].append(organization("302", "Epsilon"))
        from soredi_sync.services.fhir_directory import record_versions

        with stored:
            record_versions(stored, snapshot_info(3), resources)
        rebuilt = cache.index()
        assert rebuilt is not first
        assert rebuilt.get("Organization", "302") is not None
        assert cache.index() is rebuilt

    def test_a_deletion_alone_is_a_newer_version(self, stored: FakeUnitOfWork) -> None:
        cache = DirectoryCache(lambda: stored)
        first = cache.index()
        resources = second_snapshot()
        resources["Endpoint"] = [e for e in resources["Endpoint"] if e["id"] != ED]
        from soredi_sync.services.fhir_directory import record_versions

        with stored:
            record_versions(stored, snapshot_info(3), resources)
        assert cache.index().get("Endpoint", ED) is None
        assert first.get("Endpoint", ED) is not None


class TestSearchParsing:
    def test_unknown_parameters_are_ignored_and_listed_or_refused_when_strict(self) -> None:
        search = parse_search("Organization", [("address", "x"), ("_id", "1")])
        assert search.ignored == ["address"]
        assert search.applied == [("_id", "1")]
        with pytest.raises(InvalidSearch, match="address"):
            parse_search("Organization", [("address", "x")], strict=True)

    def test_an_include_of_another_kind_is_ignored_and_listed(self) -> None:
        search = parse_search("Endpoint", [("_include", "Organization:endpoint")])
        assert search.ignored == ["_include=Organization:endpoint"]
        assert search.includes == []

    def test_an_include_may_name_its_target_type(self) -> None:
        search = parse_search("Organization", [("_include", "Organization:endpoint:Endpoint")])
        assert search.includes == ["Organization:endpoint"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("name:missing", "true"),
            ("status", "active"),  # an Endpoint parameter
            ("_count", "1e3"),
            ("partof:missing", "maybe"),
        ],
    )
    def test_what_organization_search_refuses(self, name: str, value: str) -> None:
        if name == "status":
            with pytest.raises(InvalidSearch):
                parse_search("Organization", [(name, value)], strict=True)
            return
        with pytest.raises(InvalidSearch):
            parse_search("Organization", [(name, value)])

    def test_count_above_the_maximum_is_the_maximum(self) -> None:
        assert parse_search("Organization", [("_count", "999999")]).count == 1000

    def test_escaped_commas_and_bars_are_part_of_a_value(self, stored: FakeUnitOfWork) -> None:
        from soredi_sync.services.fhir_directory import record_versions

        with stored:
            record_versions(
                stored,
                snapshot_info(3),
                {
                    **second_snapshot(),
                    "Organization": [
                        *second_snapshot()["Organization"],
                        organization("500", "Hansen, Jensen | Co"),
                    ],
                },
            )
        assert _ids(stored, "Organization", ("name:exact", r"Hansen\, Jensen \| Co")) == ["500"]
        assert _ids(stored, "Organization", ("name", r"hansen\,")) == ["500"]


class TestSearching:
    def test_identifier_look_up_and_any_system(self, stored: FakeUnitOfWork) -> None:
        assert _ids(stored, "Organization", ("identifier", EB)) == ["200"]
        assert _ids(stored, "Organization", ("identifier", f"{GLN_SYSTEM}|{EB}")) == ["200"]
        assert _ids(stored, "Endpoint", ("identifier", f"{GLN_SYSTEM}|")) == [EA, EB, ED]

    def test_a_date_or_partial_date_is_a_range(self, stored: FakeUnitOfWork) -> None:
        everything = len(second_snapshot()["Organization"])
        assert len(
            _ids(stored, "Organization", ("_lastUpdated", "2026-11"), ("_count", "1000"))
        ) == (everything)
        assert _ids(stored, "Organization", ("_lastUpdated", "2026-11-02")) == ["101", "301"]
        assert _ids(stored, "Organization", ("_lastUpdated", "2026-11-02T06:00")) == ["101", "301"]
        # 07:00 in Copenhagen's winter time is 06:00 UTC
        assert _ids(stored, "Organization", ("_lastUpdated", "2026-11-02T07:00:00+01:00")) == [
            "101",
            "301",
        ]
        assert _ids(stored, "Organization", ("_lastUpdated", "gt2026-11-01T06:00:00.000Z")) == [
            "101",
            "301",
        ]
        assert _ids(stored, "Organization", ("_lastUpdated", "sa2026-11-01")) == ["101", "301"]
        assert _ids(stored, "Organization", ("_lastUpdated", "eb2026-11-01")) == []
        assert _ids(stored, "Organization", ("_lastUpdated", "lt2026")) == []

    def test_name_folding_is_case_and_accent_insensitive(self) -> None:
        assert fold("ÅBENT Hus") == "abent hus"
        assert fold("Østerbro") == "østerbro"  # a letter of its own, not an accented o

    def test_owners_see_their_trees_only(self, stored: FakeUnitOfWork) -> None:
        index = build_index(stored)
        page = run_search(index, parse_search("Organization", []), frozenset({"200"}))
        assert [r.id for r in page.matches] == ["200", "201"] and page.total == 2

    def test_pages_after_and_before_an_id(self, stored: FakeUnitOfWork) -> None:
        index = build_index(stored)
        search = parse_search("Organization", [("partof", "400"), ("_count", "10")])
        first = run_search(index, search, frozenset())
        assert [r.id for r in first.matches] == BULK[:10]
        assert first.previous_page is None and first.next_page is not None
        following = parse_search(
            "Organization", [("partof", "400"), ("_count", "10"), ("_page", first.next_page)]
        )
        second = run_search(index, following, frozenset())
        assert [r.id for r in second.matches] == BULK[10:20]
        assert second.previous_page is not None
        back = parse_search(
            "Organization", [("partof", "400"), ("_count", "10"), ("_page", second.previous_page)]
        )
        assert [r.id for r in run_search(index, back, frozenset()).matches] == BULK[:10]

    def test_page_tokens_round_trip_and_garbage_is_refused(self) -> None:
        assert decode_page(encode_page("after", "5790000000011")) == ("after", "5790000000011")
        for garbage in ("***", "Zm9v", ""):
            with pytest.raises(InvalidSearch):
                decode_page(garbage)


class TestHistory:
    def test_both_types_merged_newest_first_and_paged_by_version(
        self, stored: FakeUnitOfWork
    ) -> None:
        both = ("Organization", "Endpoint")
        everything = read_history(stored, both, since=None, before_id=None, count=10_000)
        ids = [v.id for v in everything.versions]
        assert ids == sorted(ids, reverse=True)
        assert everything.next_before is None
        first_versions = sum(len(r) for r in first_snapshot().values())
        assert len(ids) == first_versions + 5
        paged, before = [], None
        while True:
            page = read_history(stored, both, since=None, before_id=before, count=3)
            assert len(page.versions) <= 3
            paged += [v.id for v in page.versions]
            if page.next_before is None:
                break
            assert page.next_before == page.versions[-1].id
            before = page.next_before
        assert paged == ids

    def test_a_page_read_after_new_versions_holds_only_older_ones(
        self, stored: FakeUnitOfWork
    ) -> None:
        first = read_history(stored, ("Endpoint",), since=None, before_id=None, count=2)
        stored.fhir.add([replace(stored.fhir.versions[-1], snapshot_id=99)])
        assert first.next_before is not None
        rest = read_history(
            stored, ("Endpoint",), since=None, before_id=first.next_before, count=99
        )
        assert all(v.id < first.next_before for v in rest.versions)
        assert 99 not in {v.snapshot_id for v in rest.versions}

    def test_one_resources_versions_newest_first(self, stored: FakeUnitOfWork) -> None:
        page = read_history(
            stored, ("Endpoint",), since=None, before_id=None, count=10, resource_id=EC
        )
        assert [v.deleted for v in page.versions] == [True, False]
        assert {v.resource_id for v in page.versions} == {EC}

    def test_since_an_instant_the_versions_made_at_or_after_it(
        self, stored: FakeUnitOfWork
    ) -> None:
        since = snapshot_info(2).taken_at
        page = read_history(stored, ("Endpoint",), since=since, before_id=None, count=100)
        assert [(v.resource_id, v.deleted) for v in page.versions] == [(EC, True), (ED, False)]
        later = read_history(
            stored,
            ("Endpoint",),
            since=since + timedelta(microseconds=1),
            before_id=None,
            count=9,
        )
        assert later.versions == []

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2026-12-02T10:00:00Z", datetime(2026, 12, 2, 10, tzinfo=UTC)),
            ("2026-12-02T11:00:00+01:00", datetime(2026, 12, 2, 10, tzinfo=UTC)),
            ("2026-12-02T10:00:00.5Z", datetime(2026, 12, 2, 10, 0, 0, 500000, tzinfo=UTC)),
            ("2026-12-02", datetime(2026, 12, 2, tzinfo=UTC)),
        ],
    )
    def test_since_is_an_instant(self, value: str, expected: datetime) -> None:
        assert parse_instant(value) == expected

    @pytest.mark.parametrize("value", ["2026-12-02T10:00:00", "2026-12", "yesterday", "2026-02-30"])
    def test_since_without_a_time_zone_or_a_day_is_refused(self, value: str) -> None:
        with pytest.raises(InvalidSearch):
            parse_instant(value)


def test_a_time_zone_offset_is_kept_exactly() -> None:
    found = parse_instant("2026-12-02T10:00:00-03:30")
    assert found.utcoffset() == timedelta(hours=-3, minutes=-30)
    assert found == datetime(2026, 12, 2, 10, tzinfo=timezone(-timedelta(hours=3, minutes=30)))


# -- the packed JSON ------------------------------------------------------------------------------


def _resources(n: int) -> list[bytes]:
    return [
        json.dumps(
            {"resourceType": "Endpoint", "id": f"579000{i:07d}", "name": f"Afdeling {i} Æblevej"},
            ensure_ascii=False,
        ).encode()
        for i in range(n)
    ]


@pytest.mark.parametrize("samples", [0, 1, 3, 2000])
def test_packed_json_unpacks_to_the_same_bytes_whatever_the_dictionary_was_made_of(
    samples: int,
) -> None:
    resources = _resources(3000)
    packer = _Packer(resources[:samples])
    packed = [packer.pack(r) for r in resources]
    assert [packer.unpack(p) for p in packed] == resources
    if samples >= 1000:
        assert sum(map(len, packed)) < sum(map(len, resources)) / 2  # 85 bytes each


def test_packed_json_unpacks_from_many_threads_at_once() -> None:
    resources = _resources(2000)
    packer = _Packer(resources)
    packed = [packer.pack(r) for r in resources]
    with ThreadPoolExecutor(8) as pool:
        rounds = list(pool.map(lambda _: [packer.unpack(p) for p in packed], range(16)))
    assert all(found == resources for found in rounds)
