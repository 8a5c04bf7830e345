"""Errors under ``/fhir`` as FHIR R4 ``OperationOutcome`` (``application/fhir+json``).

FHIR clients read an OperationOutcome, not a problem document, so
:func:`~soredi_sync.api.problems.problem_response` hands every error of a request under
``/fhir`` to :func:`outcome_response`: the same statuses and headers (a 401 keeps its
``WWW-Authenticate``), one ``issue`` per problem, its ``code`` from the problem's kind or, for
Starlette's own errors, from the status.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

FHIR_PREFIX = "/fhir"
FHIR_MEDIA_TYPE = "application/fhir+json"

# http://hl7.org/fhir/R4/valueset-issue-type.html
_CODE_OF_KIND = {
    "unauthorized": "login",
    "forbidden": "forbidden",
    "not-found": "not-found",
    "gone": "deleted",
    "validation": "invalid",
    "invalid-search": "invalid",
    "not-acceptable": "not-supported",
    "unsupported-media-type": "not-supported",
    "too-large": "too-costly",
    "headers-too-large": "too-costly",
    "body-timeout": "timeout",
    "no-snapshot": "transient",
    "internal": "exception",
}
_CODE_OF_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    408: "timeout",
    410: "deleted",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    431: "too-costly",
    503: "transient",
}


class FhirResponse(JSONResponse):
    """JSON as FHIR's media type (``/fhir`` answers and their OpenAPI entries)."""

    media_type = FHIR_MEDIA_TYPE


def is_fhir_request(connection: HTTPConnection) -> bool:
    """Whether the request is for the FHIR API (its path under ``/fhir``, whatever the
    application's root path)."""
    path = connection.url.path
    root = connection.scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


def operation_outcome(
    status: int, detail: str | None, *, kind: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The OperationOutcome of an error: one issue, or one per validation error."""
    code = _CODE_OF_KIND.get(kind or "") or _CODE_OF_STATUS.get(
        status, "exception" if status >= 500 else "processing"
    )
    severity = "fatal" if status >= 500 else "error"
    issues: list[dict[str, Any]] = []
    for error in extensions.get("errors") or ():
        where = ".".join(str(part) for part in error.get("loc", ()))
        issues.append(
            {"severity": severity, "code": code, "diagnostics": f"{where}: {error.get('msg')}"}
        )
    if not issues:
        issue: dict[str, Any] = {"severity": severity, "code": code}
        if detail:
            issue["diagnostics"] = detail
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_response(
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return FhirResponse(
        operation_outcome(status, detail, kind=kind, **extensions),
        status_code=status,
        headers=headers,
    )
