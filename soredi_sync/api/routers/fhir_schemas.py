"""What the ``/fhir`` endpoints publish: the shapes of their answers in the OpenAPI document
(loose: FHIR's own definitions are the contract, these name the members clients rely on), the
search parameters as OpenAPI parameters, and the ``CapabilityStatement`` of ``/fhir/metadata``.

Both the parameters and the CapabilityStatement are made from
:data:`~soredi_sync.services.fhir_search.SEARCH_PARAMETERS` and the include lists beside it, so
they say exactly what the searches do.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from soredi_sync.api.fhir_outcome import FHIR_MEDIA_TYPE
from soredi_sync.services.fhir_directory import RESOURCE_TYPES
from soredi_sync.services.fhir_search import (
    DEFAULT_COUNT,
    INCLUDES,
    MAX_COUNT,
    REVINCLUDES,
    SEARCH_PARAMETERS,
)

FHIR_VERSION = "4.0.1"
# When the CapabilityStatement below last changed (its `date`): change it with it.
CAPABILITIES_CHANGED = "2026-12-04"


def _absent_when_unused(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # a member left out, never null


class FhirModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class OperationOutcomeIssue(FhirModel):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str = Field(description="http://hl7.org/fhir/R4/valueset-issue-type.html")
    diagnostics: str | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )


class OperationOutcome(FhirModel):
    """A FHIR R4 OperationOutcome: the body of every error under `/fhir`."""

    resourceType: Literal["OperationOutcome"]
    issue: list[OperationOutcomeIssue]


class ResourceMeta(FhirModel):
    versionId: str = Field(description="the id of the snapshot that made this version")
    lastUpdated: str = Field(description="when that snapshot was taken")


class Resource(FhirModel):
    """A FHIR R4 resource as stored: `Organization` (a SOR unit) or `Endpoint` (a GLN); the
    mapping is in docs/fhir.md."""

    resourceType: str
    id: str
    meta: ResourceMeta


class Organization(Resource):
    """A FHIR R4 Organization (IHE mCSD): one SOR unit."""

    resourceType: Literal["Organization"]


class Endpoint(Resource):
    """A FHIR R4 Endpoint (IHE mCSD): one GLN."""

    resourceType: Literal["Endpoint"]


class BundleLink(FhirModel):
    relation: str = Field(description="`self`, `first`, `next`, `previous`")
    url: str


class BundleEntrySearch(FhirModel):
    mode: Literal["match", "include", "outcome"]


class BundleEntryRequest(FhirModel):
    method: Literal["PUT", "DELETE"]
    url: str


class BundleEntryResponse(FhirModel):
    status: str
    etag: str
    lastModified: str


class BundleEntry(FhirModel):
    fullUrl: str
    resource: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )
    search: BundleEntrySearch | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )
    request: BundleEntryRequest | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )
    response: BundleEntryResponse | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )


class BundleMeta(FhirModel):
    lastUpdated: str = Field(
        description="searchset: the time of the newest version the directory holds; history: "
        "the newest change on the page (on the first page, of the whole history): the `_since` "
        "of the next history request"
    )


class Bundle(FhirModel):
    """A FHIR R4 Bundle: `searchset` (a page of search results, then what `_include` and
    `_revinclude` brought in) or `history` (versions, newest first)."""

    resourceType: Literal["Bundle"]
    meta: BundleMeta | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )
    type: Literal["searchset", "history"]
    total: int | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_absent_when_unused)
    link: list[BundleLink]
    entry: list[BundleEntry] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_when_unused
    )


class CapabilityStatement(FhirModel):
    """A FHIR R4 CapabilityStatement: what this server does."""

    resourceType: Literal["CapabilityStatement"]
    status: str
    kind: str
    fhirVersion: str
    format: list[str]


def fhir_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for errors answered as an OperationOutcome (under the routes'
    ``application/fhir+json``)."""
    return {
        status: {"model": OperationOutcome, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


# -- parameters ---------------------------------------------------------------------------------


def _parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_STRING = {"type": "string"}
ID_PARAMETER = {
    "name": "resource_id",
    "in": "path",
    "required": True,
    "description": "the resource's id: a SOR-ID (Organization) or a GLN (Endpoint)",
    "schema": _STRING,
}
VERSION_ID_PARAMETER = {
    "name": "version_id",
    "in": "path",
    "required": True,
    "description": "the version: the snapshot that made it (the resource's `meta.versionId`)",
    "schema": _STRING,
}
FORMAT_PARAMETER = _parameter(
    "_format", "`json` or `application/fhir+json` (the only format; others: 406)", _STRING
)
COUNT_PARAMETER = _parameter(
    "_count",
    f"entries per page (default {DEFAULT_COUNT}; more than {MAX_COUNT} is {MAX_COUNT})",
    {"type": "integer", "minimum": 0},
)
PAGE_PARAMETER = _parameter(
    "_page",
    "a page of the same search or history: take it from a `next` or `previous` link",
    _STRING,
)


def search_parameters(resource_type: str) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of ``GET /fhir/<resource_type>``."""
    found = []
    for parameter in SEARCH_PARAMETERS[resource_type]:
        description = f"{parameter.type}: {parameter.documentation}"
        if parameter.name == "_lastUpdated":
            schema: dict[str, Any] = {"type": "array", "items": _STRING}
            found.append(_parameter(parameter.name, description + " (repeat: all hold)", schema))
            continue
        found.append(_parameter(parameter.name, description, _STRING))
        for modifier in parameter.modifiers:
            if modifier in ("contains", "exact", "missing"):
                found.append(
                    _parameter(
                        f"{parameter.name}:{modifier}", f"{parameter.name}, :{modifier}", _STRING
                    )
                )
    if INCLUDES[resource_type]:
        found.append(
            _parameter(
                "_include",
                "the resources the matches refer to",
                {"enum": list(INCLUDES[resource_type])},
            )
        )
    found.append(
        _parameter(
            "_revinclude",
            "the resources that refer to the matches",
            {"enum": list(REVINCLUDES[resource_type])},
        )
    )
    return [*found, COUNT_PARAMETER, PAGE_PARAMETER, FORMAT_PARAMETER]


HISTORY_PARAMETERS = [
    _parameter(
        "_since",
        "only versions made at or after this instant (e.g. `2026-12-02T10:00:00Z`); default: all",
        _STRING,
    ),
    COUNT_PARAMETER,
    PAGE_PARAMETER,
    FORMAT_PARAMETER,
]


def form_body(resource_type: str) -> dict[str, Any]:
    """The OpenAPI request body of ``POST /fhir/<resource_type>/_search``."""
    properties = {p["name"]: p["schema"] for p in search_parameters(resource_type)}
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties}
                }
            },
        }
    }


# -- the CapabilityStatement --------------------------------------------------------------------


def capability_statement(base_url: str, software_version: str) -> dict[str, Any]:
    """What ``/fhir/metadata`` answers; ``base_url`` ends in ``/fhir``."""
    resources = []
    for resource_type in RESOURCE_TYPES:
        resources.append(
            {
                "type": resource_type,
                "interaction": [
                    {"code": "read"},
                    {"code": "vread"},
                    {"code": "search-type"},
                    {"code": "history-instance"},
                    {"code": "history-type"},
                ],
                "versioning": "versioned",
                "readHistory": True,
                "updateCreate": False,
                "conditionalRead": "not-supported",
                "searchInclude": list(INCLUDES[resource_type]),
                "searchRevInclude": list(REVINCLUDES[resource_type]),
                "searchParam": [
                    {
                        "name": p.name,
                        "definition": p.definition,
                        "type": p.type,
                        "documentation": p.documentation
                        + (
                            f" (modifiers: {', '.join(':' + m for m in p.modifiers)})"
                            if p.modifiers
                            else ""
                        ),
                    }
                    for p in SEARCH_PARAMETERS[resource_type]
                ],
            }
        )
    resources = [{k: v for k, v in r.items() if v != []} for r in resources]
    return {
        "resourceType": "CapabilityStatement",
        "name": "SorediSyncCareServicesDirectory",
        "title": "soredi-sync: SOR and SOR-EDI as a FHIR care-services directory",
        "status": "active",
        "date": CAPABILITIES_CHANGED,
        "publisher": "soredi-sync",
        "description": (
            "Read-only: the SOR units as Organization and the SOR-EDI GLNs as Endpoint, shaped "
            "after IHE mCSD, each version made by a sync of SOR. It does not claim the mCSD "
            "Care Services Selective Supplier: Location, Practitioner, PractitionerRole, "
            "HealthcareService and OrganizationAffiliation are not served."
        ),
        "kind": "instance",
        "software": {"name": "soredi-sync", "version": software_version},
        "implementation": {"description": "soredi-sync FHIR directory", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every interaction but this CapabilityStatement needs a bearer token with "
                    "the scope registry:read; a token restricted to institution owners sees "
                    "only their Organizations (by the root of the partOf tree) and the "
                    "Endpoints those refer to, and may read neither history nor earlier versions. "
                    "Search results come in "
                    f"id order, {DEFAULT_COUNT} per page unless _count says otherwise (at most "
                    f"{MAX_COUNT}), with next and previous links. Unknown search parameters are "
                    "ignored and reported in an OperationOutcome entry (search.mode outcome), "
                    "or refused with 400 under the header Prefer: handling=strict; an "
                    "unsupported modifier or a malformed value is refused with 400. History "
                    "entries are PUT (a new or changed version) or DELETE, newest first; a history "
                    "paged by its next links holds the versions stored when its first page was "
                    "read. A version's id is the snapshot that made it, its lastUpdated that "
                    "snapshot's time, shared by every version the snapshot made; the first "
                    "history page's meta.lastUpdated is the newest change, the _since to ask "
                    "with next (at or after: that snapshot's versions come again)."
                ),
                "security": {
                    "description": "Authorization: Bearer <token> (soredi-sync token create "
                    "--scope registry:read)"
                },
                "resource": resources,
                "interaction": [{"code": "history-system"}],
            }
        ],
    }
