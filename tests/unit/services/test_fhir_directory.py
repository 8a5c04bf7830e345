"""The FHIR directory's versions on the fakes: a version per resource that appeared or changed,
a deletion per resource gone, meta from the snapshot, and the export of what is current."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.services import fhir_directory
from soredi_sync.services.fhir_directory import content_hash, export_ndjson, record_versions
from tests.support.factories import snapshot_info


def _org(sor_id: str, name: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": sor_id, "name": name}


def _record(uow: FakeUnitOfWork, snapshot_id: int, *orgs: dict[str, Any]):  # type: ignore[no-untyped-def]
    with uow:
        return record_versions(uow, snapshot_info(snapshot_id), {"Organization": orgs})


def test_the_planner_statistics_are_updated_after_a_snapshot_that_writes_many_versions(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fhir_directory, "RESTATE_AFTER", 3)
    _record(uow, 1, _org("1", "A"), _org("2", "B"))
    assert uow.fhir.statistics_updated == 0  # two versions: below the threshold
    _record(uow, 2, _org("1", "A2"), _org("2", "B2"), _org("3", "C"))
    assert uow.fhir.statistics_updated == 1
    _record(uow, 3, _org("1", "A2"), _org("2", "B2"), _org("3", "C"))
    assert uow.fhir.statistics_updated == 1  # nothing changed, nothing written


def test_the_first_snapshot_makes_a_version_of_every_resource_with_its_meta(
    uow: FakeUnitOfWork,
) -> None:
    outcome = _record(uow, 1, _org("1", "A"), _org("2", "B"))
    assert outcome.new == {"Organization": 2, "Endpoint": 0}
    current = uow.fhir.current("Organization")
    assert [v.content for v in current] == [
        {
            "resourceType": "Organization",
            "id": rid,
            "meta": {"versionId": "1", "lastUpdated": "2026-11-01T06:00:00Z"},
            "name": name,
        }
        for rid, name in (("1", "A"), ("2", "B"))
    ]


def test_the_next_snapshot_stores_only_what_changed_appeared_or_is_gone(
    uow: FakeUnitOfWork,
) -> None:
    _record(uow, 1, _org("1", "A"), _org("2", "B"), _org("3", "C"))
    outcome = _record(uow, 2, _org("1", "A"), _org("2", "B2"), _org("4", "D"))
    assert outcome.new["Organization"] == 2  # 2 changed, 4 appeared
    assert outcome.deleted["Organization"] == 1  # 3
    assert outcome.unchanged["Organization"] == 1
    current = {v.resource_id: v for v in uow.fhir.current("Organization")}
    assert sorted(current) == ["1", "2", "4"]
    assert current["1"].snapshot_id == 1 and current["2"].snapshot_id == 2
    since = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    history = uow.fhir.history("Organization", since=since)
    assert [(v.resource_id, v.deleted) for v in history] == [
        ("2", False),
        ("4", False),
        ("3", True),
    ]
    on_day_one = [v.resource_id for v in uow.fhir.current("Organization", at_snapshot=1)]
    assert on_day_one == ["1", "2", "3"]


def test_a_resource_that_comes_back_after_its_deletion_gets_a_new_version(
    uow: FakeUnitOfWork,
) -> None:
    _record(uow, 1, _org("1", "A"))
    _record(uow, 2)
    outcome = _record(uow, 3, _org("1", "A"))
    assert outcome.new["Organization"] == 1
    assert [v.snapshot_id for v in uow.fhir.current("Organization")] == [3]


def test_the_hash_ignores_meta_and_member_order() -> None:
    one = {"resourceType": "Organization", "id": "1", "name": "A", "meta": {"versionId": "1"}}
    other = {"name": "A", "id": "1", "resourceType": "Organization"}
    assert content_hash(one) == content_hash(other)
    assert content_hash(one) != content_hash({**other, "name": "B"})


def test_a_resource_rendered_twice_is_refused(uow: FakeUnitOfWork) -> None:
    with pytest.raises(ValueError, match="Organization/1"):
        _record(uow, 1, _org("1", "A"), _org("1", "B"))


def test_the_export_writes_one_ndjson_file_per_type_of_the_current_versions(
    uow: FakeUnitOfWork, tmp_path: Path
) -> None:
    _record(uow, 1, _org("1", "A"), _org("2", "B"))
    _record(uow, 2, _org("1", "A"))
    with uow:
        files = export_ndjson(uow, tmp_path)
    by_type = {f.resource_type: f for f in files}
    lines = by_type["Organization"].path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["1"]
    assert by_type["Organization"].count == 1 and by_type["Endpoint"].count == 0
    assert by_type["Organization"].size == by_type["Organization"].path.stat().st_size


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_the_content_hash_is_the_one_earlier_versions_were_stored_with(
    resource: dict[str, Any],
) -> None:
    """The hash stored with every version is compared with the next snapshot's: a different
    encoding would make a new version of every resource on the next sync."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert content_hash(resource) == hashlib.sha256(canonical.encode()).hexdigest()
