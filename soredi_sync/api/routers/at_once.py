"""The ordinary request answered at once, every other one by FastAPI.

A route declared as usual (its body model and token dependency publish the contract and answer
every problem) can be given a *quick* handler through :func:`at_once`: an async function that
answers the ordinary request itself, or returns None, and FastAPI's own handler then answers
(401, 403, 415, 422, ..., exactly as it would have). What the quick path leaves out is what
FastAPI does for any route: decoding the body into Python objects and validating those, and
solving the dependencies. The body is validated from its bytes in one compiled step, by the
body model's own schema read into dicts (:class:`DictValidator`), and the token is the one
``api/limits.py`` verified for this request already.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pydantic_core import CoreSchema, SchemaValidator
from pydantic_core import core_schema as cs

from soredi_sync.api.deps import context
from soredi_sync.api.security import VERIFIED_TOKEN
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services.tokens import Scope

JSON_MEDIA_TYPE = "application/json"
Quick = Callable[[Request], Awaitable[Response | None]]


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


_PLAIN_FIELD = {"type", "schema", "metadata"}  # a model field without aliases or exclusions


class DictValidator:
    """Validates a body exactly as ``model`` does, into plain dicts instead of model instances.

    Made from the model's own core schema, each nested model read as a typed dict with the
    same fields, constraints, defaults and extra-field rule: building a thousand models with
    their validators costs more than the validation itself. A Python validator of the models
    cannot run on a dict: each one must be named in ``rechecked``, and the caller then checks
    what it checks (and answers through FastAPI when that fails). Any other is refused here,
    so that no rule is dropped unseen.
    """

    def __init__(self, model: type[BaseModel], rechecked: Collection[object]) -> None:
        self._rechecked = tuple(rechecked)
        self._validator = SchemaValidator(self._as_dicts(model.__pydantic_core_schema__))

    def __call__(self, data: bytes) -> Any:
        """The body as dicts; raises :class:`pydantic.ValidationError` where ``model`` would."""
        return self._validator.validate_json(data)

    def _as_dicts(self, schema: Any) -> CoreSchema:
        kind = schema["type"]
        if kind == "model":
            fields = schema["schema"]
            plain = fields["type"] == "model-fields" and not schema.get("custom_init")
            if not plain or any(set(f) - _PLAIN_FIELD for f in fields["fields"].values()):
                raise TypeError(f"{schema['cls'].__name__}: not a plain model (aliases?)")
            return cs.typed_dict_schema(
                {
                    name: cs.typed_dict_field(
                        self._as_dicts(field["schema"]),
                        required=field["schema"]["type"] != "default",
                    )
                    for name, field in fields["fields"].items()
                },
                extra_behavior=schema["cls"].model_config.get("extra") or "ignore",
                config=schema.get("config"),  # the model's own (strictness, str handling)
            )
        if kind.startswith("function-"):
            if schema["function"]["function"] not in self._rechecked:
                raise TypeError(f"{schema['function']['function']!r} would not run on dicts")
            return self._as_dicts(schema["schema"])
        if kind == "list":
            return {**schema, "items_schema": self._as_dicts(schema["items_schema"])}
        if kind in ("default", "nullable"):
            return {**schema, "schema": self._as_dicts(schema["schema"])}
        if kind in ("str", "int", "bool", "date", "literal"):
            return dict(schema)
        raise TypeError(f"a {kind!r} schema is not read as dicts here")


async def quick_dicts(request: Request, validator: DictValidator) -> Any:
    """The body as ``validator`` reads it; None when it does not validate."""
    try:
        return validator(await request.body())
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
