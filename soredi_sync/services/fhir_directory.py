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
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soredi_sync.ports.records import FhirVersion, SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork

RESOURCE_TYPES = ("Organization", "Endpoint")


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of the resource without ``meta``, its members in a fixed order."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_meta(resource: dict[str, Any], snapshot: SnapshotInfo) -> dict[str, Any]:
    """``resource`` with the ``meta`` of a version made by ``snapshot`` (``resourceType`` and
    ``id`` first, as FHIR JSON usually reads)."""
    head: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id") if k in resource}
    rest = {k: v for k, v in resource.items() if k not in head and k != "meta"}
    meta = {"versionId": str(snapshot.id), "lastUpdated": _instant(snapshot)}
    return {**head, "meta": meta, **rest}


def _instant(snapshot: SnapshotInfo) -> str:
    return snapshot.taken_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class VersionOutcome:
    snapshot_id: int
    new: dict[str, int]  # resource type -> resources that appeared or changed
    deleted: dict[str, int]  # resource type -> resources that are gone
    unchanged: dict[str, int]


def record_versions(
    uow: UnitOfWork, snapshot: SnapshotInfo, resources: dict[str, Iterable[dict[str, Any]]]
) -> VersionOutcome:
    """Store the versions ``snapshot`` makes: ``resources`` by type, as rendered for it (any
    ``meta`` is replaced). Commits.

    :raises ValueError: two resources of one type have the same id
    """
    new: dict[str, int] = {}
    deleted: dict[str, int] = {}
    unchanged: dict[str, int] = {}
    stamp = snapshot.taken_at
    for resource_type in RESOURCE_TYPES:
        latest = uow.fhir.latest_hashes(resource_type)
        seen: set[str] = set()
        versions: list[FhirVersion] = []
        for resource in resources.get(resource_type, ()):
            resource_id = resource["id"]
            if resource_id in seen:
                raise ValueError(f"{resource_type}/{resource_id} is rendered twice")
            seen.add(resource_id)
            digest = content_hash(resource)
            if latest.get(resource_id) == digest:
                continue
            versions.append(
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
        gone = [rid for rid, digest in latest.items() if digest is not None and rid not in seen]
        versions += [
            FhirVersion(resource_type, rid, snapshot.id, stamp, True, None, None)
            for rid in sorted(gone)
        ]
        uow.fhir.add(versions)
        new[resource_type] = len(versions) - len(gone)
        deleted[resource_type] = len(gone)
        unchanged[resource_type] = len(seen) - new[resource_type]
    uow.commit()
    return VersionOutcome(snapshot.id, new, deleted, unchanged)


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
    for each resource type, the versions current on ``at_snapshot`` (None: the latest)."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for resource_type in RESOURCE_TYPES:
        path = out / f"{resource_type}.ndjson"
        count = 0
        with path.open("w", encoding="utf-8", newline="\n") as file:
            for version in uow.fhir.current(resource_type, at_snapshot):
                file.write(json.dumps(version.content, ensure_ascii=False, separators=(",", ":")))
                file.write("\n")
                count += 1
        files.append(ExportedFile(resource_type, path, count, path.stat().st_size))
    return files
