"""The FHIR directory (IHE mCSD) as versions: after each sync the snapshot's resources
(``Organization`` per SOR unit, ``Endpoint`` per GLN, rendered by ``domain/mcsd.py``) are
compared with the latest stored version of each, and a new version is stored for each that
changed or appeared, a deletion for each that is gone (:func:`record_versions`). What the
``/fhir`` API and the export serve is read back from those versions, so a client following
``_history?_since=`` ends where a fresh export of the same snapshot starts.

A resource's ``meta.versionId`` is the id of the snapshot that made its version and
``meta.lastUpdated`` that snapshot's time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from soredi_sync.domain.mcsd import DirectoryContext, Version, iter_directory
from soredi_sync.domain.model import Registry
from soredi_sync.errors import NoSnapshot, NotFound, SorediError
from soredi_sync.ports.records import FhirVersion, SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork

RESOURCE_TYPES = ("Organization", "Endpoint")


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of the resource without ``meta``, its members in a fixed order: of the compact
    UTF-8 JSON with sorted keys (``orjson``'s bytes are the standard library's with
    ``sort_keys=True, separators=(",", ":"), ensure_ascii=False``, five times sooner)."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def with_meta(resource: dict[str, Any], snapshot: SnapshotInfo) -> dict[str, Any]:
    """``resource`` with the ``meta`` of a version made by ``snapshot`` (``resourceType`` and
    ``id`` first, as FHIR JSON usually reads)."""
    head: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id") if k in resource}
    rest = {k: v for k, v in resource.items() if k not in head and k != "meta"}
    return {**head, "meta": Version(snapshot.id, snapshot.taken_at).meta(), **rest}


@dataclass(frozen=True)
class VersionOutcome:
    snapshot_id: int
    new: dict[str, int]  # resource type -> resources that appeared or changed
    deleted: dict[str, int]  # resource type -> resources that are gone
    unchanged: dict[str, int]


BATCH = 1000  # versions written at a time (a first snapshot writes every resource)
# Versions written by one snapshot after which the planner's statistics are brought up to date
# at once (a first national snapshot writes 94,000 into an empty table: until autovacuum's
# next look, PostgreSQL would sort every Endpoint for each history page).
RESTATE_AFTER = 10_000


def record_versions(
    uow: UnitOfWork, snapshot: SnapshotInfo, resources: Mapping[str, Iterable[dict[str, Any]]]
) -> VersionOutcome:
    """Store the versions ``snapshot`` makes: ``resources`` by type, as rendered for it (any
    ``meta`` is replaced), read one at a time. Commits.

    :raises ValueError: two resources of one type have the same id
    """
    new: dict[str, int] = {}
    deleted: dict[str, int] = {}
    unchanged: dict[str, int] = {}
    stamp = snapshot.taken_at
    for resource_type in RESOURCE_TYPES:
        latest = uow.fhir.latest_hashes(resource_type)
        seen: set[str] = set()
        batch: list[FhirVersion] = []
        changed = 0
        for resource in resources.get(resource_type, ()):
            resource_id = resource["id"]
            if resource_id in seen:
                raise ValueError(f"{resource_type}/{resource_id} is rendered twice")
            seen.add(resource_id)
            digest = content_hash(resource)
            if latest.get(resource_id) == digest:
                continue
            changed += 1
            batch.append(
                FhirVersion(
                    resource_type,
                    resource_id,
                    snapshot.id,
                    stamp,
                    False,
                    digest,
                    with_meta(resource, snapshot),
                )
            )
            if len(batch) >= BATCH:
                uow.fhir.add(batch)
                batch = []
        gone = sorted(
            rid for rid, digest in latest.items() if digest is not None and rid not in seen
        )
        batch += [
            FhirVersion(resource_type, rid, snapshot.id, stamp, True, None, None) for rid in gone
        ]
        uow.fhir.add(batch)
        new[resource_type] = changed
        deleted[resource_type] = len(gone)
        unchanged[resource_type] = len(seen) - changed
    uow.commit()
    if sum(new.values()) + sum(deleted.values()) >= RESTATE_AFTER:
        uow.fhir.update_statistics()
        uow.commit()
    return VersionOutcome(snapshot.id, new, deleted, unchanged)


def rendered(
    registry: Registry, snapshot: SnapshotInfo, context: DirectoryContext
) -> dict[str, Iterator[dict[str, Any]]]:
    """The snapshot's resources as ``domain/mcsd.py`` renders them, by type, one at a time."""
    organizations, endpoints = iter_directory(
        registry,
        on=snapshot.effective_date,
        versions=Version(snapshot.id, snapshot.taken_at),
        context=context,
    )
    return {"Organization": organizations, "Endpoint": endpoints}


def record_fhir_versions(
    uow: UnitOfWork, context: DirectoryContext, snapshot_id: int | None = None
) -> VersionOutcome:
    """Render a snapshot (default: the current one) and store the versions it makes; the step
    after each sync (``services/after_sync.py``). Commits.

    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no such snapshot
    """
    snapshot = _snapshot(uow, snapshot_id)
    registry = uow.registry.load_registry(snapshot.id)
    return record_versions(uow, snapshot, rendered(registry, snapshot, context))


class NoVersions(SorediError):
    """No FHIR versions are stored for the snapshot asked for (they are stored from the sync
    after the upgrade that brought them on; an earlier snapshot has none)."""

    def __init__(self, snapshot_id: int) -> None:
        super().__init__(
            f"no FHIR directory versions are stored for snapshot {snapshot_id}: they are "
            "stored after each sync since the upgrade that added them"
        )


def ensure_versions(
    uow: UnitOfWork, context: DirectoryContext, snapshot_id: int | None = None
) -> SnapshotInfo:
    """The snapshot (default: the current one) with its versions stored: the current
    snapshot's are recorded again (nothing is written when they are, as after its sync; a
    database synced before versions were stored gets them now); an earlier snapshot must have
    versions made by it or before.

    :raises NoSnapshot: nothing synced yet
    :raises NotFound: no such snapshot
    :raises NoVersions: an earlier snapshot without stored versions
    """
    snapshot = _snapshot(uow, snapshot_id)
    current = uow.registry.current_snapshot()
    if current is not None and snapshot.id == current.id:
        record_fhir_versions(uow, context, snapshot.id)
    elif not uow.fhir.has_versions_up_to(snapshot.id):
        raise NoVersions(snapshot.id)
    return snapshot


def _snapshot(uow: UnitOfWork, snapshot_id: int | None) -> SnapshotInfo:
    if snapshot_id is None:
        current = uow.registry.current_snapshot()
        if current is None:
            raise NoSnapshot()
        return current
    found = uow.registry.get_snapshot(snapshot_id)
    if found is None:
        raise NotFound("snapshot", str(snapshot_id))
    return found


@dataclass(frozen=True)
class ExportedFile:
    resource_type: str
    path: Path
    count: int
    size: int  # bytes


def export_ndjson(
    uow: UnitOfWork, out: Path, *, at_snapshot: int | None = None
) -> list[ExportedFile]:
    """Write ``<out>/<ResourceType>.ndjson`` (FHIR Bulk Data: one resource per line, UTF-8)
    for each resource type, the versions current on ``at_snapshot`` (None: the latest), each
    as the database holds its JSON text (never decoded)."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for resource_type in RESOURCE_TYPES:
        path = out / f"{resource_type}.ndjson"
        count = 0
        with path.open("w", encoding="utf-8", newline="\n") as file:
            for version in uow.fhir.iter_current(resource_type, at_snapshot, as_json=True):
                assert version.content_json is not None  # current: never a deletion
                file.write(version.content_json)  # as stored: one line of JSON
                file.write("\n")
                count += 1
        files.append(ExportedFile(resource_type, path, count, path.stat().st_size))
    return files
