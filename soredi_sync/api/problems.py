"""Every error of the HTTP API as ``application/problem+json`` (RFC 9457).

The project's exceptions are mapped to statuses here and nowhere else: ``NotFound`` → 404,
``NoSnapshot`` → 503, ``RoutingInputError`` → 422, ``InvalidBundle`` → 400 (unreadable) or
422, ``OutsideOwners`` → 403; :class:`ApiProblem` carries the API's own (401, 403, 413, 415).
FastAPI's request validation errors and Starlette's 404/405 get the same shape. The published
document refers every error answer to the one :class:`Problem` schema (docs/openapi.md).
Under ``/fhir`` the same errors are FHIR ``OperationOutcome``s instead (``api/fhir_outcome.py``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from soredi_sync.api.fhir_outcome import is_fhir_request, outcome_response
from soredi_sync.domain.routing import RoutingInputError
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.parsing.refusals import InvalidBundle
from soredi_sync.services.tokens import OutsideOwners

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:soredi-sync:problem:"
PROBLEM_REF = "#/components/schemas/Problem"


def _absent_when_unused(schema: dict[str, Any]) -> None:
    # An extension member is left out, never null: no ``default: null`` in its schema.
    schema.pop("default", None)


class ValidationIssue(BaseModel):
    """One reason a request is not valid (a `validation` problem's `errors`)."""

    loc: list[str | int] = Field(description="where: `body`, `query`, `path`, then the field")
    msg: str
    type: str = Field(description="the kind of error, e.g. `missing`, `extra_forbidden`")


class Problem(BaseModel):
    """An RFC 9457 problem document, the body of every error answer
    (`application/problem+json`). `type` names the kind of problem for programs
    (`urn:soredi-sync:problem:<kind>`, or `about:blank` where the status says it all); the
    extension members are present only on the problems that carry them."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:soredi-sync:problem:not-found"])
    title: str = Field(description="the status's reason phrase", examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(description="what went wrong, for people")
    instance: str = Field(description="the path of the request", examples=["/v1/glns/1"])
    bundle_problem: str | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_when_unused,
        description="`invalid-bundle` problems (400/422 from `POST /v1/route/message`): what is "
        "wrong with the message, for programs (`empty`, `not-xml-or-json`, `malformed`, "
        "`no-receiver`, `unknown-message-type`, ...; more may come)",
        examples=["no-receiver"],
    )
    errors: list[ValidationIssue] | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_when_unused,
        description="`validation` problems (422): what is not valid, and where",
    )
    data_age_seconds: float | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_absent_when_unused,
        description="`stale-data` problems (503 from `/readyz`): seconds since the data was "
        "last confirmed by a source",
    )


class ApiProblem(Exception):
    """An error the API answers with a problem document.

    :param kind: short name of the problem; ``type`` becomes ``urn:soredi-sync:problem:<kind>``
    """

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


class Unauthorized(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(
            401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="soredi-sync"'}
        )


class Forbidden(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(403, "forbidden", detail)


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    if is_fhir_request(request):  # FHIR clients read an OperationOutcome (api/fhir_outcome.py)
        return outcome_response(status, detail, kind=kind, headers=headers, **extensions)
    body = problem_body(status, detail, request.url.path, kind=kind, **extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_body(
    status: int, detail: str | None, instance: str, *, kind: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """A problem document's members (also an item's problem in a batch answer)."""
    return {
        "type": _TYPE_PREFIX + kind if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extensions,
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem documents with these statuses, each a
    reference to the one ``Problem`` component (:func:`problem_schemas`).

    Given under ``application/problem+json``, the media type actually served: with ``model=``
    FastAPI would put it under the route's ``application/json``.
    """
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


def problem_schemas() -> dict[str, dict[str, Any]]:
    """The ``components/schemas`` entries that :data:`PROBLEM_REF` needs: ``Problem`` and the
    models it uses."""
    _, schema = models_json_schema(
        [(Problem, "serialization")], ref_template="#/components/schemas/{model}"
    )
    return dict(schema["$defs"])


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        request, exc.status, exc.detail, kind=exc.kind, headers=exc.headers, **exc.extensions
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 404, str(exc), kind="not-found")


async def _no_snapshot(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, str(exc), kind="no-snapshot")


async def _outside_owners(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 403, str(exc), kind="forbidden")


async def _routing_input(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 422, str(exc), kind="routing-input")


async def _invalid_bundle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidBundle)
    status = 400 if exc.unreadable else 422
    return problem_response(
        request, status, str(exc), kind="invalid-bundle", bundle_problem=exc.problem.value
    )


def marks_authorization(dependency: Any) -> Any:
    """Mark a route's token dependency, so a request that fails validation before that
    dependency ran is authorized first (:func:`_authorized_first`)."""
    dependency.authorizes = True
    return dependency


async def _authorized_first(request: Request) -> JSONResponse | None:
    """The 401/403 an invalid request would have had with a valid body, or None when its token
    passes.

    FastAPI reads and validates the body (and parameters) before it runs the route's
    dependencies, so without this a malformed body to a /v1 endpoint would be answered 400/422
    to a caller with no token at all, and the error would describe the endpoint's input to it.
    Only failing requests pay for this; the happy path is untouched.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    pending = list(dependant.dependencies)
    while pending:
        dependency = pending.pop()
        call = dependency.call
        if getattr(call, "authorizes", False):
            from soredi_sync.api.security import bearer_scheme

            try:
                await call(request, await bearer_scheme(request))
            except ApiProblem as problem:
                return await _api_problem(request, problem)
            return None
        pending.extend(dependency.dependencies)
    return None


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refused = await _authorized_first(request)
    if refused is not None:
        return refused
    # loc/msg/type only: the offending input is the caller's own, and may be large.
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return problem_response(
        request, 422, "the request is not valid", kind="validation", errors=errors
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body that cannot be read at all
        refused = await _authorized_first(request)
        if refused is not None:
            return refused
    headers = dict(exc.headers) if exc.headers else None
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(request, exc.status_code, detail, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after answering, so the server logs the traceback once.
    return problem_response(request, 500, "internal error", kind="internal")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(NoSnapshot, _no_snapshot)
    app.add_exception_handler(OutsideOwners, _outside_owners)
    app.add_exception_handler(RoutingInputError, _routing_input)
    app.add_exception_handler(InvalidBundle, _invalid_bundle)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
