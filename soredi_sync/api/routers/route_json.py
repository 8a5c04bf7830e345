"""A routing decision as the JSON of :class:`~soredi_sync.api.routers.routing_schemas.RouteOut`,
written straight from the domain's :class:`RouteDecision` with ``orjson``.

The published shape is ``RouteOut``'s, and its bytes are ``RouteOut.model_validate(decision,
context={"now": now}).model_dump_json()``'s, member for member and in the same order
(``tests/integration/api/test_route_json.py`` compares them on every decision of a request mix).
Building the model from the decision and dumping it took about 39 us a decision on the national
profile, most of it ``model_validate`` reading attributes through its validators; this takes
about 5, which is what a batch of a thousand decisions needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from soredi_sync.api.routers.routing_schemas import MessageReadOut
from soredi_sync.domain.routing import RouteDecision

_OPTIONS = orjson.OPT_UTC_Z  # UTC as "Z", as pydantic writes it


def decision_dict(
    decision: RouteDecision,
    now: datetime,
    *,
    message_id: str | None = None,
    message: MessageReadOut | None = None,
) -> dict[str, Any]:
    """``decision`` as ``RouteOut``'s members, ready for ``orjson.dumps``."""
    snapshot = decision.snapshot
    return {
        "decision": decision.decision.value,
        "reason": None if decision.reason is None else decision.reason.value,
        "message_type": decision.message_type,
        "message_types": list(decision.message_types),
        "syntax": decision.syntax,
        # ConversionPlan, Address, RouteWarning and TraceEntry are dataclasses whose fields are
        # the published members, in the same order: orjson writes them as they are.
        "conversion": decision.conversion,
        "attachments": [
            {
                "index": a.index,
                "title": a.title,
                "mime_type": a.mime_type,
                "declared_type": a.declared_type,
                "sniffed_type": a.sniffed_type,
                "size": a.size,
                "content": a.content.value,
                "carried_as": a.carried_as,
            }
            for a in decision.attachments
        ],
        "address": decision.address,
        "warnings": decision.warnings,
        "snapshot": {
            "id": snapshot.id,
            "taken_at": snapshot.taken_at,
            # RouteOut's age: rounded to the millisecond, as a float.
            "age_seconds": float(round((now - snapshot.taken_at).total_seconds(), 3)),
        },
        "decided_on": decision.decided_on,
        "trace": decision.trace,
        "message_id": message_id,
        "message": None if message is None else message.model_dump(),
    }


def decision_json(
    decision: RouteDecision,
    now: datetime,
    *,
    message_id: str | None = None,
    message: MessageReadOut | None = None,
) -> bytes:
    """``decision`` as the bytes of ``RouteOut``'s JSON."""
    return orjson.dumps(
        decision_dict(decision, now, message_id=message_id, message=message), option=_OPTIONS
    )


def dumps(value: Any) -> bytes:
    """Any structure holding decisions' dicts, with their options."""
    return orjson.dumps(value, option=_OPTIONS)
