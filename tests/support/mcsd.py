"""FHIR R4 checks for the mCSD directory (soredi_sync.domain.mcsd).

Two layers: ``fhir.resources``' R4B models (R4B's Organization and Endpoint are R4's, element
for element; the package's top level is R5, whose Endpoint differs), and :func:`r4_problems`,
the R4 rules those models let through: empty or null values, the length of an id, the
regular expressions of the primitive types, required bindings, cardinalities, invariants and
the shape of references. A resource that passes both also survives the model's round trip
unchanged, so nothing was silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

from fhir.resources.R4B.endpoint import Endpoint
from fhir.resources.R4B.organization import Organization

MODELS: dict[str, Any] = {"Organization": Organization, "Endpoint": Endpoint}

# R4 datatypes (http://hl7.org/fhir/R4/datatypes.html), anchored
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")
CODE = re.compile(r"^[^\s]+( [^\s]+)*\Z")
URI = re.compile(r"^\S*\Z")
DATE_TIME = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?\Z"
)
INSTANT = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))\Z"
)
ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+\Z")  # a URI with a scheme
MIME_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+\Z")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Endpoint.status: required binding to http://hl7.org/fhir/ValueSet/endpoint-status
ENDPOINT_STATUS = {"active", "suspended", "error", "off", "entered-in-error", "test"}
IDENTIFIER_USE = {"usual", "official", "temp", "secondary", "old"}
ORGANIZATION_PERIOD = "http://hl7.org/fhir/StructureDefinition/organization-period"


def assert_valid_r4(resource: dict[str, Any]) -> None:
    """The resource passes the R4B model, :func:`r4_problems` and the model's round trip."""
    problems = r4_problems(resource)
    assert not problems, f"{resource.get('resourceType')}/{resource.get('id')}: {problems}"
    model = MODELS[resource["resourceType"]].model_validate(resource)
    again = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    assert again == resource, f"the {resource['resourceType']} model changed the resource"


def r4_problems(resource: dict[str, Any]) -> list[str]:
    """What in ``resource`` breaks an R4 rule the models do not check, as ``path: rule``."""
    problems = [f"{path}: {rule}" for path, rule in _json_rules(resource, "")]
    kind = resource.get("resourceType")
    check = {"Organization": _organization, "Endpoint": _endpoint}.get(str(kind))
    if check is None:
        return [*problems, f"resourceType: not an Organization or Endpoint ({kind!r})"]
    problems += [f"{path}: {rule}" for path, rule in check(resource)]
    return problems


# -- JSON representation (http://hl7.org/fhir/R4/json.html) ------------------------------------


def _json_rules(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if value is None:
        yield path, "null is not a value in FHIR JSON"
    elif isinstance(value, str):
        if not value.strip():
            yield path, "empty or blank string"
        elif value != value.strip():
            yield path, "leading or trailing whitespace"
        if CONTROL.search(value):
            yield path, "control character"
    elif isinstance(value, list):
        if not value:
            yield path, "empty array"
        for index, item in enumerate(value):
            if isinstance(item, list):
                yield f"{path}[{index}]", "array in an array"
            yield from _json_rules(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        if not value:
            yield path, "empty object"
        for key, item in value.items():
            yield from _json_rules(item, f"{path}.{key}" if path else key)
    elif not isinstance(value, bool | int):
        yield path, f"{type(value).__name__} is not a JSON value"


# -- shared datatypes ----------------------------------------------------------------------------


def _resource(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if not ID.match(str(resource.get("id", ""))):
        yield "id", "not a FHIR id ([A-Za-z0-9-.]{1,64})"
    meta = resource.get("meta", {})
    if "versionId" in meta and not ID.match(str(meta["versionId"])):
        yield "meta.versionId", "not a FHIR id"
    if "lastUpdated" in meta and not INSTANT.match(str(meta["lastUpdated"])):
        yield "meta.lastUpdated", "not an instant (with seconds and a time zone)"
    for index, extension in enumerate(resource.get("extension", [])):
        yield from _extension(extension, f"extension[{index}]")


def _extension(extension: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    if not ABSOLUTE.match(str(extension.get("url", ""))):
        yield f"{path}.url", "not an absolute URI"
    values = [key for key in extension if key.startswith("value")]
    nested = "extension" in extension
    if len(values) > 1 or (values and nested) or not (values or nested):
        yield path, "ext-1: a value or nested extensions, not both, not neither"


def _period(period: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    for key in ("start", "end"):
        value = str(period.get(key, ""))
        if key in period and not DATE_TIME.match(value):
            yield f"{path}.{key}", "not a dateTime"
        elif len(value) == 10 and not _calendar_day(value):
            yield f"{path}.{key}", "no such day"
    if "start" in period and "end" in period and str(period["start"]) > str(period["end"]):
        yield path, "per-1: start after end"


def _calendar_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _coding(coding: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    if "system" in coding and not ABSOLUTE.match(str(coding["system"])):
        yield f"{path}.system", "not an absolute URI"
    if "code" in coding and not CODE.match(str(coding["code"])):
        yield f"{path}.code", "not a code"
    if "code" in coding and "system" not in coding:
        yield path, "a code without its system"


def _codeable_concept(concept: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    if "coding" not in concept and "text" not in concept:
        yield path, "neither coding nor text"
    for index, coding in enumerate(concept.get("coding", [])):
        yield from _coding(coding, f"{path}.coding[{index}]")


def _identifier(identifier: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    if "system" in identifier and not ABSOLUTE.match(str(identifier["system"])):
        yield f"{path}.system", "not an absolute URI"
    if "use" in identifier and identifier["use"] not in IDENTIFIER_USE:
        yield f"{path}.use", "not an identifier-use code"
    if "value" not in identifier:
        yield path, "no value"


def _reference(reference: dict[str, Any], path: str, target: str) -> Iterator[tuple[str, str]]:
    if "reference" in reference:
        kind, _, ident = str(reference["reference"]).partition("/")
        if kind != target or not ID.match(ident):
            yield f"{path}.reference", f"not a relative reference {target}/<id>"
    elif "identifier" in reference:
        yield from _identifier(reference["identifier"], f"{path}.identifier")
    else:
        yield path, "neither reference nor identifier"


# -- the two resources ---------------------------------------------------------------------------


def _organization(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from _resource(resource)
    if "name" not in resource and "identifier" not in resource:
        yield "", "org-1: a name or an identifier"
    for index, extension in enumerate(resource.get("extension", [])):
        if extension.get("url") == ORGANIZATION_PERIOD:
            if set(extension) != {"url", "valuePeriod"}:
                yield f"extension[{index}]", "organization-period holds a valuePeriod only"
            yield from _period(extension.get("valuePeriod", {}), f"extension[{index}]")
    for index, identifier in enumerate(resource.get("identifier", [])):
        yield from _identifier(identifier, f"identifier[{index}]")
    if "active" in resource and not isinstance(resource["active"], bool):
        yield "active", "not a boolean"
    for index, concept in enumerate(resource.get("type", [])):
        yield from _codeable_concept(concept, f"type[{index}]")
    for index, address in enumerate(resource.get("address", [])):
        if address.get("use") == "home":
            yield f"address[{index}]", "org-2: an organization's address is never home"
    if "partOf" in resource:
        yield from _reference(resource["partOf"], "partOf", "Organization")
        if resource["partOf"].get("reference") == f"Organization/{resource.get('id')}":
            yield "partOf", "an organization part of itself"
    for index, reference in enumerate(resource.get("endpoint", [])):
        yield from _reference(reference, f"endpoint[{index}]", "Endpoint")


def _endpoint(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from _resource(resource)
    for index, identifier in enumerate(resource.get("identifier", [])):
        yield from _identifier(identifier, f"identifier[{index}]")
    if resource.get("status") not in ENDPOINT_STATUS:
        yield "status", "required, from endpoint-status"
    connection = resource.get("connectionType")
    if not isinstance(connection, dict):
        yield "connectionType", "required, one Coding (R4)"
    else:
        yield from _coding(connection, "connectionType")
        if "code" not in connection:
            yield "connectionType", "a Coding without a code"
    if "managingOrganization" in resource:
        yield from _reference(
            resource["managingOrganization"], "managingOrganization", "Organization"
        )
    if "period" in resource:
        yield from _period(resource["period"], "period")
    payload = resource.get("payloadType")
    if not isinstance(payload, list) or not payload:
        yield "payloadType", "required, one or more (R4)"
    else:
        for index, concept in enumerate(payload):
            yield from _codeable_concept(concept, f"payloadType[{index}]")
    for index, mime_type in enumerate(resource.get("payloadMimeType", [])):
        if not MIME_TYPE.match(str(mime_type)):
            yield f"payloadMimeType[{index}]", "not a MIME type"
    address = resource.get("address")
    if not isinstance(address, str) or not ABSOLUTE.match(address) or not URI.match(address):
        yield "address", "required, an absolute url"
