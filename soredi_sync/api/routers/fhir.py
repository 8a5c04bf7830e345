"""The FHIR R4 directory (IHE mCSD shaped), read-only, under ``/fhir`` (``registry:read``).

``Organization`` (a SOR unit) and ``Endpoint`` (a GLN) are served from their stored versions:
read, search (``services/fhir_search.py``: an in-memory index per process, never a database
scan per request) and history (the versions as the database holds them, oldest first). The
``CapabilityStatement`` at ``/fhir/metadata`` needs no token and says exactly what is supported
(``fhir_schemas.py``). Answers are ``application/fhir+json`` (``_format=json`` is accepted, any
other format is 406); every error is an ``OperationOutcome`` (``api/fhir_outcome.py``).

An owner-restricted token sees its owners' resources only; the others are absent (404, left
out of searches), and it may not read history: a history narrowed to owners would leave out,
without a trace, the deletions and the moves between owners that an update client must follow
(the change feed ``/v1/changes`` refuses such tokens for the same reason).

Reads and searches are plain ``def`` (the thread pool), as the other registry reads.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from soredi_sync.api.deps import RegistryReader, context
from soredi_sync.api.fhir_outcome import FHIR_MEDIA_TYPE, FhirResponse
from soredi_sync.api.problems import ApiProblem, Forbidden
from soredi_sync.api.routers import fhir_schemas as schemas
from soredi_sync.domain.mcsd import Version
from soredi_sync.ports.records import FhirVersion, TokenRecord
from soredi_sync.services.fhir_directory import RESOURCE_TYPES
from soredi_sync.services.fhir_search import (
    DEFAULT_COUNT,
    MAX_COUNT,
    DirectoryIndex,
    Indexed,
    InvalidSearch,
    SearchPage,
    decode_page,
    encode_page,
    parse_instant,
    parse_search,
    read_history,
    run_search,
    visible,
)

router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse)

_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_JSON_RANGES = {"*/*", "application/*", *(f for f in _JSON_FORMATS if "/" in f)}
_FORM = "application/x-www-form-urlencoded"
_HISTORY_KNOWN = {"_since", "_count", "_page", "_format", "_pretty"}


def _invalid(exc: InvalidSearch) -> ApiProblem:
    return ApiProblem(400, "invalid-search", str(exc))


def _negotiate(request: Request, parameters: Sequence[tuple[str, str]] = ()) -> None:
    """JSON is the only format: ``_format`` (which wins) or ``Accept`` asking for another is
    refused with 406."""
    formats = [v for k, v in parameters if k == "_format"] or request.query_params.getlist(
        "_format"
    )
    for wanted in formats:
        if wanted.split(";")[0].strip().lower() not in _JSON_FORMATS:
            raise ApiProblem(406, "not-acceptable", f"_format={wanted} is not served: use json")
    if formats:
        return
    accept = request.headers.get("accept")
    if not accept or not accept.strip():
        return
    for media_range in accept.split(","):
        kind, *options = (part.strip() for part in media_range.split(";"))
        refused = any(o.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for o in options)
        if kind.lower() in _JSON_RANGES and not refused:
            return
    raise ApiProblem(406, "not-acceptable", f"only {FHIR_MEDIA_TYPE} is served, not {accept!r}")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _strict(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(p.strip().replace(" ", "") == "handling=strict" for p in prefer.split(";"))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _instant(moment: datetime) -> str:
    """A FHIR instant as a resource's ``meta.lastUpdated`` reads (``domain/mcsd.Version``)."""
    return Version(0, moment).meta()["lastUpdated"]


# -- metadata -----------------------------------------------------------------------------------


@router.get(
    "/metadata",
    response_model=None,
    responses={200: {"model": schemas.CapabilityStatement}, **schemas.fhir_responses(406)},
    summary="The CapabilityStatement: what this FHIR server supports",
    operation_id="getCapabilityStatement",
    openapi_extra={"parameters": [schemas.FORMAT_PARAMETER]},
)
def metadata(request: Request) -> Response:
    """No token needed."""
    _negotiate(request)
    statement = schemas.capability_statement(_base(request), request.app.version)
    return FhirResponse(statement)


# -- history of the whole directory -------------------------------------------------------------


@router.get(
    "/_history",
    response_model=None,
    responses={200: {"model": schemas.Bundle}, **schemas.fhir_responses(400, 401, 403, 406)},
    summary="Every version of every Organization and Endpoint, oldest first",
    operation_id="listHistory",
    openapi_extra={"parameters": schemas.HISTORY_PARAMETERS},
)
def system_history(request: Request, caller: RegistryReader) -> Response:
    """Needs `registry:read` and a token without an owner restriction. A Bundle of type
    `history`: `PUT` for a new or changed version, `DELETE` for a deletion; continue with the
    `next` link."""
    return _history(request, caller, RESOURCE_TYPES, "_history")


def _history(
    request: Request,
    caller: TokenRecord,
    resource_types: Sequence[str],
    path: str,
    resource_id: str | None = None,
) -> Response:
    _negotiate(request)
    _unrestricted(caller)
    parameters = list(request.query_params.multi_items())
    unknown = sorted({name for name, _ in parameters if name not in _HISTORY_KNOWN})
    if unknown and _strict(request):
        raise ApiProblem(400, "invalid-search", f"unknown parameters: {', '.join(unknown)}")
    try:
        values = dict(parameters)
        since = parse_instant(values["_since"]) if values.get("_since") else None
        count = _count(values.get("_count"))
        before_id = _history_page(values.get("_page"))
    except InvalidSearch as exc:
        raise _invalid(exc) from None
    with context(request).app.uow() as uow:
        page = read_history(
            uow,
            resource_types,
            since=since,
            before_id=before_id,
            count=count,
            resource_id=resource_id,
        )
        if resource_id is not None and not page.versions:
            [resource_type] = resource_types
            if not uow.fhir.newest_first(resource_type, since=None, resource_id=resource_id):
                raise ApiProblem(404, "not-found", f"no {resource_type}/{resource_id}")
    base = _base(request)
    kept = [(k, v) for k, v in parameters if k in ("_since",)] + [("_count", str(count))]
    links = [{"relation": "self", "url": f"{base}/{path}?{urlencode(parameters)}"}]
    if page.next_before is not None:
        token = encode_page("version", str(page.next_before))
        links.append(
            {"relation": "next", "url": f"{base}/{path}?{urlencode([*kept, ('_page', token)])}"}
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle"}
    if page.versions:  # newest first: this page's newest change (the first page's: the newest)
        bundle["meta"] = {"lastUpdated": _instant(page.versions[0].last_updated)}
    head = _dumps({**bundle, "type": "history", "link": links})
    if page.versions:
        entries = b",".join(_history_entry(base, v) for v in page.versions)
        head = head[:-1] + b',"entry":[' + entries + b"]}"
    return Response(head, media_type=FHIR_MEDIA_TYPE)


def _unrestricted(caller: TokenRecord) -> None:
    if caller.owners:
        raise Forbidden(
            "history needs a token without an owner restriction: narrowed to owners it "
            "would leave out deletions and moves between owners"
        )


def _count(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_COUNT
    if not value.isdigit() or len(value) > 9:
        raise InvalidSearch(f"_count must be a whole number from 0, not {value!r}")
    return min(int(value), MAX_COUNT)


def _history_page(token: str | None) -> int | None:
    if not token:
        return None
    direction, version = decode_page(token)
    if direction != "version" or not version.isdigit() or len(version) > 18:
        raise InvalidSearch("_page is not a page of this history")
    return int(version)


def _history_entry(base: str, version: FhirVersion) -> bytes:
    """One entry, the resource's stored JSON text spliced in as it is (not decoded)."""
    reference = f"{version.resource_type}/{version.resource_id}"
    resource = b""
    if not version.deleted:
        if version.content_json is None:
            raise ValueError(f"version {version.id} of {reference} was read without its text")
        resource = b',"resource":' + version.content_json.encode()
    request = {"method": "DELETE" if version.deleted else "PUT", "url": reference}
    response = {
        "status": "204 No Content" if version.deleted else "200 OK",
        "etag": f'W/"{version.snapshot_id}"',
        "lastModified": _instant(version.last_updated),
    }
    return (
        b'{"fullUrl":'
        + _dumps(f"{base}/{reference}")
        + resource
        + b',"request":'
        + _dumps(request)
        + b',"response":'
        + _dumps(response)
        + b"}"
    )


# -- one resource type --------------------------------------------------------------------------


def _search_response(
    request: Request,
    caller: TokenRecord,
    resource_type: str,
    parameters: Sequence[tuple[str, str]],
) -> Response:
    try:
        search = parse_search(resource_type, parameters, strict=_strict(request))
        index = context(request).app.fhir_directory().index()
        page = run_search(index, search, caller.owners)
    except InvalidSearch as exc:
        raise _invalid(exc) from None
    return Response(_search_bundle(_base(request), index, page), media_type=FHIR_MEDIA_TYPE)


def _search_bundle(base: str, index: DirectoryIndex, page: SearchPage) -> bytes:
    search = page.search
    kind = search.resource_type
    query = [*search.applied, ("_count", str(search.count))]

    def link(relation: str, token: str | None) -> dict[str, str]:
        pairs = query if token is None else [*query, ("_page", token)]
        return {"relation": relation, "url": f"{base}/{kind}?{urlencode(pairs)}"}

    links = [link("self", encode_page(*search.page) if search.page else None)]
    links.append(link("first", None))
    if page.previous_page:
        links.append(link("previous", page.previous_page))
    if page.next_page:
        links.append(link("next", page.next_page))
    head: dict[str, Any] = {"resourceType": "Bundle"}
    if index.marks.last_updated is not None:  # the directory as of its newest version
        head["meta"] = {"lastUpdated": _instant(index.marks.last_updated)}
    head |= {"type": "searchset", "total": page.total, "link": links}
    entries = [_search_entry(base, index, r, b"match") for r in page.matches]
    entries += [_search_entry(base, index, r, b"include") for r in page.included]
    if search.ignored:  # FHIR's lenient handling: ignored, and said so
        issue = {
            "severity": "warning",
            "code": "not-supported",
            "diagnostics": f"ignored, not supported: {', '.join(search.ignored)}",
        }
        outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
        entry = {"fullUrl": uuid.uuid4().urn, "resource": outcome, "search": {"mode": "outcome"}}
        entries.append(_dumps(entry))
    if not entries:
        return _dumps(head)
    return _dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


def _search_entry(base: str, index: DirectoryIndex, resource: Indexed, mode: bytes) -> bytes:
    url = _dumps(f"{base}/{resource.resource_type}/{resource.id}")
    return (
        b'{"fullUrl":'
        + url
        + b',"resource":'
        + index.json(resource)
        + b',"search":{"mode":"'
        + mode
        + b'"}}'
    )


def _read(request: Request, caller: TokenRecord, resource_type: str, resource_id: str) -> Response:
    _negotiate(request)
    index = context(request).app.fhir_directory().index()
    found = index.get(resource_type, resource_id)
    if found is None or not visible(found, caller.owners):
        # A deleted resource is 410 to a token that could see every owner; a restricted token
        # cannot be told whose it was, so to it the resource is simply not there.
        if found is None and not caller.owners and index.is_deleted(resource_type, resource_id):
            raise ApiProblem(410, "gone", f"{resource_type}/{resource_id} has been deleted")
        raise ApiProblem(404, "not-found", f"no {resource_type}/{resource_id}")
    headers = {
        "ETag": found.etag,
        "Last-Modified": format_datetime(found.last_updated, usegmt=True),
    }
    return Response(index.json(found), media_type=FHIR_MEDIA_TYPE, headers=headers)


def _vread(
    request: Request, caller: TokenRecord, resource_type: str, resource_id: str, version_id: str
) -> Response:
    """One version of a resource: ``version_id`` is the snapshot that made it (its
    ``meta.versionId``)."""
    _negotiate(request)
    _unrestricted(caller)
    reference = f"{resource_type}/{resource_id}/_history/{version_id}"
    if not version_id.isdigit() or len(version_id) > 18:
        raise ApiProblem(404, "not-found", f"no {reference}")
    with context(request).app.uow() as uow:
        found = uow.fhir.version(resource_type, resource_id, int(version_id))
    if found is None:
        raise ApiProblem(404, "not-found", f"no {reference}")
    if found.deleted or found.content_json is None:
        raise ApiProblem(
            410, "gone", f"{resource_type}/{resource_id} was deleted by version {version_id}"
        )
    headers = {
        "ETag": f'W/"{found.snapshot_id}"',
        "Last-Modified": format_datetime(found.last_updated, usegmt=True),
    }
    return Response(found.content_json.encode(), media_type=FHIR_MEDIA_TYPE, headers=headers)


def _add_type_routes(resource_type: str) -> None:
    """The routes of ``/fhir/<resource_type>``: history and search before the read, whose
    ``{id}`` would take ``_history`` and ``_search`` (never valid FHIR ids) otherwise."""
    plural = resource_type + "s"
    model = schemas.Organization if resource_type == "Organization" else schemas.Endpoint
    restriction = (
        "an owner-restricted token sees only its owners' resources (the others are absent)"
    )

    def history(request: Request, caller: RegistryReader) -> Response:
        return _history(request, caller, (resource_type,), f"{resource_type}/_history")

    history.__doc__ = (
        f"Needs `registry:read` and a token without an owner restriction. Every version of "
        f"every {resource_type}, oldest first, as a Bundle of type `history` (`PUT`: new or "
        "changed, `DELETE`: deleted); follow `next`, and later ask again with `_since`."
    )
    router.add_api_route(
        f"/{resource_type}/_history",
        history,
        methods=["GET"],
        response_model=None,
        responses={200: {"model": schemas.Bundle}, **schemas.fhir_responses(400, 401, 403, 406)},
        summary=f"Every version of every {resource_type}, oldest first",
        operation_id=f"list{resource_type}History",
        openapi_extra={"parameters": schemas.HISTORY_PARAMETERS},
    )

    def search(request: Request, caller: RegistryReader) -> Response:
        _negotiate(request)
        parameters = list(request.query_params.multi_items())
        return _search_response(request, caller, resource_type, parameters)

    search.__doc__ = (
        f"Needs `registry:read`; {restriction}. A Bundle of type `searchset`: one page of "
        "matches in id order, `total`, and `next`/`previous` links."
    )
    router.add_api_route(
        f"/{resource_type}",
        search,
        methods=["GET"],
        response_model=None,
        responses={200: {"model": schemas.Bundle}, **schemas.fhir_responses(400, 401, 403, 406)},
        summary=f"Search {plural}",
        operation_id=f"search{plural}",
        openapi_extra={"parameters": schemas.search_parameters(resource_type)},
    )

    async def search_by_post(request: Request, caller: RegistryReader) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and content_type != _FORM:
            raise ApiProblem(415, "unsupported-media-type", f"the body must be {_FORM}")
        try:
            form = parse_qsl(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise ApiProblem(400, "invalid-search", "the body is not UTF-8") from None
        parameters = [*request.query_params.multi_items(), *form]
        _negotiate(request, parameters)
        return await run_in_threadpool(_search_response, request, caller, resource_type, parameters)

    search_by_post.__doc__ = (
        f"Needs `registry:read`; {restriction}. The search of `GET /fhir/{resource_type}` with "
        f"its parameters in a form body ({_FORM}), as FHIR's `_search`."
    )
    router.add_api_route(
        f"/{resource_type}/_search",
        search_by_post,
        methods=["POST"],
        response_model=None,
        responses={
            200: {"model": schemas.Bundle},
            **schemas.fhir_responses(400, 401, 403, 406, 408, 413, 415),
        },
        summary=f"Search {plural} (parameters in a form body)",
        operation_id=f"search{plural}ByPost",
        openapi_extra=schemas.form_body(resource_type),
    )

    def instance_history(request: Request, caller: RegistryReader) -> Response:
        rid = request.path_params["resource_id"]
        return _history(request, caller, (resource_type,), f"{resource_type}/{rid}/_history", rid)

    instance_history.__doc__ = (
        f"Needs `registry:read` and a token without an owner restriction. Every version of one "
        f"{resource_type}, newest first, as a Bundle of type `history` (`DELETE`: deleted by "
        "that snapshot); 404 for an id that never had a version."
    )
    router.add_api_route(
        f"/{resource_type}/{{resource_id}}/_history",
        instance_history,
        methods=["GET"],
        response_model=None,
        responses={
            200: {"model": schemas.Bundle},
            **schemas.fhir_responses(400, 401, 403, 404, 406),
        },
        summary=f"Every version of one {resource_type}, newest first",
        operation_id=f"list{resource_type}VersionHistory",
        openapi_extra={"parameters": [schemas.ID_PARAMETER, *schemas.HISTORY_PARAMETERS]},
    )

    def vread(request: Request, caller: RegistryReader) -> Response:
        path = request.path_params
        return _vread(request, caller, resource_type, path["resource_id"], path["version_id"])

    vread.__doc__ = (
        f"Needs `registry:read` and a token without an owner restriction. The version of a "
        f"{resource_type} that a snapshot made (`meta.versionId`); 410 if that version is its "
        "deletion, 404 if the snapshot made no version of it."
    )
    router.add_api_route(
        f"/{resource_type}/{{resource_id}}/_history/{{version_id}}",
        vread,
        methods=["GET"],
        response_model=None,
        responses={
            200: {"model": model},
            **schemas.fhir_responses(401, 403, 404, 406, 410),
        },
        summary=f"One version of a {resource_type}",
        operation_id=f"get{resource_type}Version",
        openapi_extra={
            "parameters": [
                schemas.ID_PARAMETER,
                schemas.VERSION_ID_PARAMETER,
                schemas.FORMAT_PARAMETER,
            ]
        },
    )

    # The id is taken from the path as it is: any id that is not there is a 404 (FHIR's
    # answer), never a validation error.
    def read(request: Request, caller: RegistryReader) -> Response:
        return _read(request, caller, resource_type, request.path_params["resource_id"])

    read.__doc__ = (
        f"Needs `registry:read`; {restriction}. The current version; a deleted "
        f"{resource_type} is 410."
    )
    router.add_api_route(
        f"/{resource_type}/{{resource_id}}",
        read,
        methods=["GET"],
        response_model=None,
        responses={
            200: {"model": model},
            **schemas.fhir_responses(401, 403, 404, 406, 410),
        },
        summary=f"A {resource_type}",
        operation_id=f"get{resource_type}",
        openapi_extra={"parameters": [schemas.ID_PARAMETER, schemas.FORMAT_PARAMETER]},
    )


for _resource_type in RESOURCE_TYPES:
    _add_type_routes(_resource_type)
