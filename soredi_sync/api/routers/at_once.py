"""The ordinary request answered at once, every other one by FastAPI.

A route declared as usual (its body model and token dependency publish the contract and answer
every problem) can be given a *quick* handler through :func:`at_once`: an async function that
answers the ordinary request itself, or returns None, and FastAPI's own handler then answers
(401, 403, 415, 422, ..., exactly as it would have). What the quick path leaves out is what
FastAPI does for any route: decoding the body into Python objects and validating those, and
solving the dependencies. The body model validates the bytes in one compiled step, and the
token is the one ``api/limits.py`` verified for this request already.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from soredi_sync.api.deps import context
from soredi_sync.api.security import VERIFIED_TOKEN
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services.tokens import Scope

JSON_MEDIA_TYPE = "application/json"
Quick = Callable[[Request], Awaitable[Response | None]]
Model = TypeVar("Model", bound=BaseModel)


def quick_caller(request: Request, scope: Scope) -> TokenRecord | None:
    """The caller of a JSON request with a live bearer token that has ``scope``; None for any
    other request."""
    headers = request.headers
    content_type = headers.get("content-type")
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != JSON_MEDIA_TYPE:
        return None
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    verified = request.scope.get(VERIFIED_TOKEN)
    record = verified[1] if verified is not None and verified[0] == token else None
    if record is None:
        record = context(request).verifier.verify(token)
    if record is None or scope not in record.scopes:
        return None
    return record


async def quick_body(request: Request, model: type[Model]) -> Model | None:
    """The body as ``model`` when it validates; None otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError:
        return None


def at_once(quick: Quick) -> type[APIRoute]:
    """A route class whose handler asks ``quick`` first (looked up at each request)."""

    class AtOnce(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            standard = super().get_route_handler()

            async def handler(request: Request) -> Response:
                answer = await quick(request)
                return answer if answer is not None else await standard(request)

            return handler

    return AtOnce
