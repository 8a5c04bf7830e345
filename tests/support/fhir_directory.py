"""A hand-made FHIR directory for the ``/fhir`` read side: Organizations and Endpoints shaped
as ``domain/mcsd.py`` renders them, over two snapshots (a rename, a deletion, a new owner).

The owners' trees, as of the second snapshot::

    100 Region Alpha Hospital          -> Endpoint 5790000000011
      101 Kardiologisk Afdeling Nord   -> 5790000000011 (named ... Østerbro in the first)
        102 Sengeafsnit 3              -> 5790000000011
    200 Beta Klinik (inactive, own GLN) -> 5790000000028 (status off)
      201 Åbent Hus                    -> 5790000000028
    301 Delta Sundhed (new)            -> 5790000000042 (new)
    400 Bulk Owner
      401 ... 460 Unit 01 ... Unit 60

and in the first snapshot only: 300 Gamma Care (an owner of its own) and Endpoint
5790000000035, which no Organization refers to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soredi_sync.bootstrap import App
from soredi_sync.ports.records import SnapshotInfo
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.fhir_directory import record_versions
from tests.support.app import sync_day

SOR_SYSTEM = "urn:oid:1.2.208.176.1.1"
GLN_SYSTEM = "https://www.gs1.org/gln"
SNOMED = "http://snomed.info/sct"
KIND_SYSTEM = "https://soredi-sync.example/fhir/CodeSystem/sor-unit-kind"
CONNECTION_SYSTEM = "https://soredi-sync.example/fhir/CodeSystem/endpoint-connection-type"
HOSPITAL = "22232009"
CLINIC = "264372000"

EA, EB, EC, ED = "5790000000011", "5790000000028", "5790000000035", "5790000000042"
BULK = [str(401 + n) for n in range(60)]


def organization(
    sor_id: str,
    name: str,
    *,
    part_of: str | None = None,
    endpoint: str | None = None,
    gln: str | None = None,
    active: bool = True,
    type_code: str = HOSPITAL,
) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [{"use": "official", "system": SOR_SYSTEM, "value": sor_id}]
    if gln:
        identifiers.append({"system": GLN_SYSTEM, "value": gln})
    kind = "institution-owner" if part_of is None else "organisational-unit"
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": sor_id,
        "identifier": identifiers,
        "active": active,
        "type": [
            {"coding": [{"system": SNOMED, "code": type_code}]},
            {"coding": [{"system": KIND_SYSTEM, "code": kind}]},
        ],
        "name": name,
    }
    if part_of:
        resource["partOf"] = {"reference": f"Organization/{part_of}"}
    if endpoint:
        resource["endpoint"] = [{"reference": f"Endpoint/{endpoint}"}]
    return resource


def endpoint(gln: str, *, status: str = "active", name: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "id": gln,
        "identifier": [{"system": GLN_SYSTEM, "value": gln}],
        "status": status,
        "connectionType": {"system": CONNECTION_SYSTEM, "code": "medcom-vans"},
        "name": name or f"GLN {gln}",
        "payloadType": [{"text": "No MedCom message types registered in SOR-EDI"}],
        "address": f"urn:gln:{gln}",
    }


def first_snapshot() -> dict[str, list[dict[str, Any]]]:
    organizations = [
        organization("100", "Region Alpha Hospital", endpoint=EA),
        organization("101", "Kardiologisk Afdeling Østerbro", part_of="100", endpoint=EA),
        organization("102", "Sengeafsnit 3", part_of="101", endpoint=EA),
        organization("200", "Beta Klinik", endpoint=EB, gln=EB, active=False, type_code=CLINIC),
        organization("201", "Åbent Hus", part_of="200", endpoint=EB, type_code=CLINIC),
        organization("300", "Gamma Care"),
        organization("400", "Bulk Owner"),
        *(
            organization(sor_id, f"Unit {n + 1:02d}", part_of="400")
            for n, sor_id in enumerate(BULK)
        ),
    ]
    endpoints = [endpoint(EA), endpoint(EB, status="off"), endpoint(EC)]
    return {"Organization": organizations, "Endpoint": endpoints}


def second_snapshot() -> dict[str, list[dict[str, Any]]]:
    resources = first_snapshot()
    organizations = [o for o in resources["Organization"] if o["id"] != "300"]
    renamed = next(o for o in organizations if o["id"] == "101")
    renamed["name"] = "Kardiologisk Afdeling Nord"
    organizations.append(organization("301", "Delta Sundhed", endpoint=ED))
    endpoints = [e for e in resources["Endpoint"] if e["id"] != EC] + [endpoint(ED)]
    return {"Organization": organizations, "Endpoint": endpoints}


@dataclass(frozen=True)
class Directory:
    """The two snapshots the versions were recorded for (the second is the current one)."""

    first: SnapshotInfo
    second: SnapshotInfo


def record_directory(
    uow_factory: Callable[[], UnitOfWork], first: SnapshotInfo, second: SnapshotInfo
) -> Directory:
    """Record the first snapshot's resources, then the second's (each commits)."""
    with uow_factory() as uow:
        record_versions(uow, first, first_snapshot())
    with uow_factory() as uow:
        record_versions(uow, second, second_snapshot())
    return Directory(first, second)


def instant(snapshot: SnapshotInfo) -> str:
    """The snapshot's time as a FHIR instant to the microsecond."""
    return snapshot.taken_at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def record_third(app: App, sandbox_dir: Path, resources: dict[str, Any]) -> None:
    """Sync day 2 of the sandbox (a third snapshot) and record ``resources`` as its versions."""
    sync_day(app, sandbox_dir, 2)
    with app.uow() as uow:
        third = uow.registry.current_snapshot()
        assert third is not None
        record_versions(uow, third, resources)
