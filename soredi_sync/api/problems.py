"""Every error of the HTTP API as ``application/problem+json`` (RFC 9457).

The project's exceptions are mapped to statuses here and nowhere else: ``NotFound`` → 404,
``NoSnapshot`` → 503, ``RoutingInputError`` → 422, ``InvalidBundle`` → 400 (unreadable) or
422; :class:`ApiProblem` carries the API's own (401, 403, 413, 415). FastAPI's request
validation errors and Starlette's 404/405 get the same shape.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from soredi_sync.domain.routing import RoutingInputError
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.parsing.bundle import InvalidBundle

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:soredi-sync:problem:"


class Problem(BaseModel):
    """An RFC 9457 problem. ``type`` names the kind of problem for programs."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


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
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + kind if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem documents with these statuses.

    The schema is given inline under ``application/problem+json``, the media type actually
    served: with ``model=`` FastAPI would put it under the route's ``application/json``.
    """
    schema = Problem.model_json_schema()
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        request, exc.status, exc.detail, kind=exc.kind, headers=exc.headers, **exc.extensions
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 404, str(exc), kind="not-found")


async def _no_snapshot(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, str(exc), kind="no-snapshot")


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
    app.add_exception_handler(RoutingInputError, _routing_input)
    app.add_exception_handler(InvalidBundle, _invalid_bundle)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
