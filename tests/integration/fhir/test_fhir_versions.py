"""The FHIR directory's versions on both engines: stored after each sync, exported as NDJSON,
and followed through their history from one snapshot's export to the next snapshot's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from soredi_sync.bootstrap import App
from soredi_sync.services import fhir_directory
from soredi_sync.services.fhir_directory import RESOURCE_TYPES, rendered
from tests.support.app import sync_day
from tests.support.cli_runner import Cli


def _export(cli: Cli, out: Path, *args: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``export fhir`` into ``out``: type -> id -> resource."""
    cli("export", "fhir", "--out", str(out), *args)
    return {
        t: {
            r["id"]: r
            for r in map(json.loads, (out / f"{t}.ndjson").read_text("utf-8").splitlines())
        }
        for t in RESOURCE_TYPES
    }


def _without_meta(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rid: {k: v for k, v in r.items() if k != "meta"} for rid, r in resources.items()}


def test_each_sync_stores_the_snapshots_resources_and_the_export_is_them(
    cli: Cli, app: App, sandbox_dir: Path, tmp_path: Path
) -> None:
    cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
    first = _export(cli, tmp_path / "one")
    cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
    second = _export(cli, tmp_path / "two")
    with app.uow() as uow:
        current = uow.registry.current_snapshot()
        assert current is not None
        fresh = rendered(
            uow.registry.load_registry(current.id), current, app.reference.directory_context
        )
    for resource_type in RESOURCE_TYPES:
        expected = {r["id"]: r for r in fresh[resource_type]}  # one pass: an iterator
        assert _without_meta(second[resource_type]) == _without_meta(expected)
        versions = {r["meta"]["versionId"] for r in second[resource_type].values()}
        assert versions <= {"1", "2"} and "2" in versions, resource_type
        kept = [rid for rid, r in second[resource_type].items() if r["meta"]["versionId"] == "1"]
        assert kept and all(second[resource_type][rid] == first[resource_type][rid] for rid in kept)
    assert len(first["Organization"]) > 0 and len(first["Endpoint"]) > 0


def test_the_history_since_one_export_leads_to_the_next_snapshots_export(
    cli: Cli, app: App, sandbox_dir: Path, tmp_path: Path
) -> None:
    cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
    state = _export(cli, tmp_path / "one")
    with app.uow() as uow:
        first = uow.registry.current_snapshot()
    assert first is not None
    cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
    with app.uow() as uow:
        for resource_type in RESOURCE_TYPES:
            history = uow.fhir.history(resource_type, since=first.taken_at, limit=1_000_000)
            assert history, f"day 1 changes some {resource_type}"
            for version in history:
                if version.deleted:
                    state[resource_type].pop(version.resource_id)
                else:
                    assert version.content is not None
                    state[resource_type][version.resource_id] = version.content
    assert state == _export(cli, tmp_path / "two")


def test_an_earlier_snapshot_without_versions_is_refused_and_the_current_one_is_filled_in(
    cli: Cli, app: App, sandbox_dir: Path, tmp_path: Path
) -> None:
    sync_day(app, sandbox_dir, 0)  # the sync use case alone: no follow-up, no versions
    sync_day(app, sandbox_dir, 1)
    refused = cli("export", "fhir", "--out", str(tmp_path / "x"), "--snapshot", "1", expect=1)
    assert "no FHIR directory versions are stored for snapshot 1" in refused.output
    exported = _export(cli, tmp_path / "now")
    assert {r["meta"]["versionId"] for r in exported["Organization"].values()} == {"2"}


def test_history_read_as_json_text_is_the_stored_content_compact_and_unescaped(
    cli: Cli, app: App, sandbox_dir: Path
) -> None:
    cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
    cli("sync", "--from-dir", str(sandbox_dir / "day-001"))
    danish = False
    with app.uow() as uow:
        for resource_type in RESOURCE_TYPES:
            decoded = uow.fhir.history(resource_type, since=None, limit=1_000_000)
            texts = uow.fhir.history(resource_type, since=None, limit=1_000_000, as_json=True)
            assert [v.id for v in texts] == [v.id for v in decoded]
            for text, version in zip(texts, decoded, strict=True):
                assert text.content is None
                if version.deleted:
                    assert text.content_json is None
                    continue
                assert text.content_json is not None
                assert json.loads(text.content_json) == version.content
                assert text.content_json == json.dumps(
                    version.content, ensure_ascii=False, separators=(",", ":")
                )
                danish = danish or any(letter in text.content_json for letter in "æøåÆØÅ")
    assert danish, "no name with æ, ø or å: the text would not show how it is stored"


def test_a_sync_that_writes_many_versions_analyzes_the_table_on_postgresql_only(
    cli: Cli, app: App, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fhir_directory, "RESTATE_AFTER", 10)  # the tiny sandbox writes ~100
    cli("sync", "--from-dir", str(sandbox_dir / "day-000"))
    with app.engine.connect() as conn:
        if app.engine.dialect.name == "postgresql":
            tuples = conn.execute(
                text(
                    "SELECT reltuples FROM pg_class WHERE oid = 'fhir_resource_versions'::regclass"
                )
            ).scalar_one()
            assert tuples > 0  # -1 until the table is analyzed
        else:  # SQLite's planner takes the (type, id) index without statistics
            stat_tables = conn.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar_one()
            assert stat_tables == 0
