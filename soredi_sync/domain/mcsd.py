"""SOR and SOR-EDI as an IHE mCSD care-services directory: FHIR R4 Organization and Endpoint.

One ``Organization`` per SOR unit and one ``Endpoint`` per GLN, as plain FHIR R4 JSON (dicts,
lists, strings and booleans, ready for ``json.dumps``), linked by ``Organization.endpoint`` with
GLN inheritance resolved. ``docs/fhir.md`` tables the mapping element by element; the code
systems this project had to define are the ``[assumed]`` constants below, kept in this one place.

Pure: the caller gives the day that decides ``active``, the version (snapshot) of each resource
and the reference data (:class:`DirectoryContext`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.identifiers import GLN_SYSTEMS, SOR_ID_SYSTEM
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import (
    Capability,
    Gln,
    GlnMode,
    Registry,
    Unit,
    UnitKind,
    effective_gln,
)

Resource = dict[str, Any]

# -- published systems ---------------------------------------------------------------------------

GLN_SYSTEM = GLN_SYSTEMS[0]
SNOMED_CT = "http://snomed.info/sct"
# R4's Organization has no period element; the core extension carries SOR's validity dates.
ORGANIZATION_PERIOD = "http://hl7.org/fhir/StructureDefinition/organization-period"
# MedCom's MessageHeader event codes (as in real MedCom messages)
MEDCOM_EVENT_CODES = "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-eventCodes"
# EHMI's message-definition URIs (config/ehmi-message-definitions.tsv)
EHMI_MESSAGE_DEFINITIONS = (
    "http://medcomehmi.dk/ig/terminology/CodeSystem/ehmi-message-definition-uri"
)
# [assumed] A MessageDefinition canonical as a code: the system for "the code is a URI".
URI_SYSTEM = "urn:ietf:rfc:3986"

# -- [assumed] this project's own systems --------------------------------------------------------
# No published code system names SOR's tree levels, the VANS transport, legacy SOR-EDI standard
# IDs or SOR communication suppliers as identifiers. The project publishes no canonical base
# yet, so its systems sit under a reserved example domain until one is chosen: change it here.

CANONICAL_BASE = "https://soredi-sync.example/fhir"
UNIT_KIND_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/sor-unit-kind"
CONNECTION_TYPE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/endpoint-connection-type"
MESSAGE_TYPE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/sor-edi-message-type"
VANS_SYSTEM = f"{CANONICAL_BASE}/sid/sor-communication-supplier"
VANS_CONNECTION = {
    "system": CONNECTION_TYPE_SYSTEM,
    "code": "medcom-vans",
    "display": "MedCom message exchange through a VANS",
}
# Endpoint.address is a url (1..1); a VANS endpoint is reached by its GLN, not by a URL.
ADDRESS_PREFIX = "urn:gln:"
# What the MedCom syntaxes travel as (FHIR messages in XML on the VANS network).
MIME_TYPES = {
    "fhir": "application/fhir+xml",
    "oioxml": "text/xml",
    "xml": "text/xml",
    "edifact": "application/EDIFACT",
}
NO_MESSAGE_TYPES = "No MedCom message types registered in SOR-EDI"

_KIND_DISPLAY = {
    UnitKind.INSTITUTION_OWNER: "Institution owner",
    UnitKind.HEALTH_INSTITUTION: "Health institution",
    UnitKind.ORGANISATIONAL_UNIT: "Organisational unit",
}

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True, slots=True)
class Version:
    """The snapshot that made a resource: ``meta.versionId`` and ``meta.lastUpdated``.

    :raises ValueError: ``updated`` is naive (without a time zone)
    """

    snapshot_id: int
    updated: datetime

    def __post_init__(self) -> None:
        if self.updated.tzinfo is None or self.updated.utcoffset() is None:
            raise ValueError("a resource version's time must carry a time zone")

    def meta(self) -> dict[str, str]:
        moment = self.updated.astimezone(UTC).replace(tzinfo=None)
        spec = "microseconds" if moment.microsecond else "seconds"
        return {
            "versionId": str(self.snapshot_id),
            "lastUpdated": moment.isoformat(timespec=spec) + "Z",
        }


@dataclass(frozen=True)
class DirectoryContext:
    """The reference data the Endpoint mapping reads (from ``config/``, see reference_data).

    ``ehmi_uris`` maps (SOR-EDI standard ID, version code) to the EHMI message-definition URI.
    """

    message_types: MessageTypeRegistry
    vans_names: Mapping[str, str]
    ehmi_uris: Mapping[tuple[str, str], str]
    # (standard ID, version codes) -> its payloadType, made once: a national snapshot has
    # about 420,000 capabilities and a few hundred distinct ones. Shared by the resources that
    # render it, so never changed in place.
    _payload_types: dict[tuple[str, str | None], Resource] = field(
        default_factory=dict, compare=False, repr=False
    )


VersionSource = Version | Mapping[tuple[str, str], Version] | Callable[[str, str], Version]


def organization(unit: Unit, *, endpoint_gln: str | None, on: date, version: Version) -> Resource:
    """The unit as an mCSD Organization.

    :param endpoint_gln: the unit's effective GLN (its own or inherited, see
        :func:`~soredi_sync.domain.model.effective_gln`) when that GLN has an Endpoint, else None
    :param on: the day that decides ``active`` (SOR's FromDate/ToDate)
    :raises ValueError: the SOR-ID, a parent's SOR-ID or the GLN is not a valid FHIR id
    """
    resource: Resource = {
        "resourceType": "Organization",
        "id": _fhir_id(unit.sor_id),
        "meta": version.meta(),
    }
    period = _period(unit.from_date, unit.to_date)
    if period:
        resource["extension"] = [{"url": ORGANIZATION_PERIOD, "valuePeriod": period}]
    identifiers: list[Resource] = [
        {"use": "official", "system": SOR_ID_SYSTEM, "value": unit.sor_id}
    ]
    if unit.gln_mode is GlnMode.OWN and unit.gln:
        identifiers.append({"system": GLN_SYSTEM, "value": unit.gln})
    resource["identifier"] = identifiers
    resource["active"] = unit.is_open_on(on)
    resource["type"] = _organization_types(unit)
    name = _text(unit.name)
    if name:
        resource["name"] = name
    postal_code = _text(unit.postal_code)
    if postal_code:
        resource["address"] = [{"postalCode": postal_code}]
    if unit.parent_sor_id:
        resource["partOf"] = {"reference": f"Organization/{_fhir_id(unit.parent_sor_id)}"}
    if endpoint_gln:
        resource["endpoint"] = [{"reference": f"Endpoint/{_fhir_id(endpoint_gln)}"}]
    return resource


def endpoint(
    gln: Gln,
    capabilities: Iterable[Capability],
    *,
    context: DirectoryContext,
    version: Version,
    name: str | None = None,
) -> Resource:
    """The GLN as an mCSD Endpoint: its VANS, its status and one payloadType per message type.

    :param capabilities: the GLN's SOR-EDI rows
    :param name: the name of the unit that carries the GLN, when known ("GLN <gln>" otherwise)
    :raises ValueError: a capability of another GLN, or a GLN that is not a valid FHIR id
    """
    rows = sorted(capabilities, key=lambda capability: capability.message_type)
    strangers = sorted({row.gln for row in rows} - {gln.gln})
    if strangers:
        raise ValueError(f"capabilities of {', '.join(strangers)} given for GLN {gln.gln}")
    resource: Resource = {
        "resourceType": "Endpoint",
        "id": _fhir_id(gln.gln),
        "meta": version.meta(),
        "identifier": [{"system": GLN_SYSTEM, "value": gln.gln}],
        "status": "active" if gln.active else "off",
        "connectionType": dict(VANS_CONNECTION),
        "name": _text(name) or f"GLN {gln.gln}",
    }
    if gln.vans:
        vans: Resource = {"identifier": {"system": VANS_SYSTEM, "value": gln.vans}}
        vans_name = _text(context.vans_names.get(gln.vans))
        if vans_name:
            vans["display"] = vans_name
        resource["managingOrganization"] = vans
    period = _period(gln.from_date, gln.to_date)
    if period:
        resource["period"] = period
    resource["payloadType"] = [_payload_type(row, context) for row in rows] or [
        {"text": NO_MESSAGE_TYPES}
    ]
    mime_types = sorted(
        {
            MIME_TYPES[context.message_types.get(row.message_type).syntax]
            for row in rows
            if row.message_type in context.message_types
        }
    )
    if mime_types:
        resource["payloadMimeType"] = mime_types
    resource["address"] = f"{ADDRESS_PREFIX}{gln.gln}"
    return resource


def directory(
    registry: Registry, *, on: date, versions: VersionSource, context: DirectoryContext
) -> tuple[list[Resource], list[Resource]]:
    """Every unit of a snapshot as an Organization and every GLN as an Endpoint, by id.

    A unit links the Endpoint of its effective GLN (own or inherited) when that GLN is in the
    registry; an Endpoint is named after the unit that carries its GLN.

    :param versions: one Version for every resource, or a mapping or callable from
        (resource type, id) to the resource's Version
    :returns: (organizations, endpoints)
    """
    organizations, endpoints = iter_directory(registry, on=on, versions=versions, context=context)
    return list(organizations), list(endpoints)


def iter_directory(
    registry: Registry, *, on: date, versions: VersionSource, context: DirectoryContext
) -> tuple[Iterator[Resource], Iterator[Resource]]:
    """:func:`directory`, one resource at a time (a national snapshot has about 94,000)."""
    version_of = _version_lookup(versions)

    def organizations() -> Iterator[Resource]:
        for sor_id in sorted(registry.units):
            effective = effective_gln(registry.units, sor_id).gln
            yield organization(
                registry.units[sor_id],
                endpoint_gln=effective if effective in registry.glns else None,
                on=on,
                version=version_of("Organization", sor_id),
            )

    def endpoints() -> Iterator[Resource]:
        carriers = _carrier_names(registry)
        for code in sorted(registry.glns):
            yield endpoint(
                registry.glns[code],
                registry.capabilities.get(code, {}).values(),
                context=context,
                version=version_of("Endpoint", code),
                name=carriers.get(code),
            )

    return organizations(), endpoints()


# -- parts ---------------------------------------------------------------------------------------


def _organization_types(unit: Unit) -> list[Resource]:
    types: list[Resource] = []
    type_code = _text(unit.type_code)
    if type_code:
        types.append({"coding": [{"system": SNOMED_CT, "code": type_code}]})
    types.append(
        {
            "coding": [
                {
                    "system": UNIT_KIND_SYSTEM,
                    "code": unit.kind.value,
                    "display": _KIND_DISPLAY[unit.kind],
                }
            ]
        }
    )
    return types


def _payload_type(capability: Capability, context: DirectoryContext) -> Resource:
    """One accepted message type: the MedCom definition (FHIR types), the EHMI URI of each
    version (legacy types) and always the SOR-EDI standard ID; the text names the versions."""
    key = (capability.message_type, capability.version_code)
    found = context._payload_types.get(key)
    if found is None:
        found = context._payload_types[key] = _new_payload_type(capability, context)
    return found


def _new_payload_type(capability: Capability, context: DirectoryContext) -> Resource:
    codings: list[Resource] = []
    if capability.message_type in context.message_types:
        definitions = context.message_types.get(capability.message_type).definitions
        canonicals = [d for d in definitions if "://" in d]
        event_codes = [d for d in definitions if "://" not in d]
        codings += [{"system": URI_SYSTEM, "code": d} for d in canonicals]
        codings += [{"system": MEDCOM_EVENT_CODES, "code": d} for d in event_codes]
    versions = [v for v in (capability.version_code or "").split(",") if v]
    for version_code in versions:
        uri = context.ehmi_uris.get((capability.message_type, version_code))
        if uri:
            codings.append({"system": EHMI_MESSAGE_DEFINITIONS, "code": uri})
    codings.append({"system": MESSAGE_TYPE_SYSTEM, "code": capability.message_type})
    return {"coding": codings, "text": " ".join([capability.message_type, *versions])}


def _carrier_names(registry: Registry) -> dict[str, str]:
    """GLN -> the name of the unit carrying it (the GLN record's owner, else the lowest SOR-ID
    among the units that own it)."""
    owners: dict[str, list[str]] = {}
    for unit in registry.units.values():
        if unit.gln_mode is GlnMode.OWN and unit.gln:
            owners.setdefault(unit.gln, []).append(unit.sor_id)
    names = {}
    for code, record in registry.glns.items():
        holders = sorted(owners.get(code, ()))
        carrier = record.owner_sor_id if record.owner_sor_id in registry.units else None
        carrier = carrier or (holders[0] if holders else None)
        if carrier is not None:
            names[code] = registry.units[carrier].name
    return names


def _version_lookup(versions: VersionSource) -> Callable[[str, str], Version]:
    if isinstance(versions, Version):
        single = versions
        return lambda resource_type, resource_id: single
    if isinstance(versions, Mapping):
        table = versions
        return lambda resource_type, resource_id: table[(resource_type, resource_id)]
    return versions


def _period(start: date | None, end: date | None) -> dict[str, str]:
    """SOR's dates as a Period (an end date is inclusive in both); dates that contradict each
    other (end before start) give no period rather than an invalid one."""
    if start is not None and end is not None and end < start:
        return {}
    period = {}
    if start is not None:
        period["start"] = start.isoformat()
    if end is not None:
        period["end"] = end.isoformat()
    return period


def _fhir_id(value: str) -> str:
    if not _FHIR_ID.match(value):
        raise ValueError(f"{value!r} is not a valid FHIR id")
    return value


def _text(value: str | None) -> str:
    """A FHIR string: no control characters, no surrounding blanks (empty when nothing is left)."""
    return _CONTROL.sub(" ", value).strip() if value else ""
