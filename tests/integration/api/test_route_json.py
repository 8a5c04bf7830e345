"""The routing answer written straight from the decision (``api/routers/route_json.py``) is
byte for byte what ``RouteOut`` writes, on every decision of a broad request mix over the
synced sandbox: every GLN and unit, every business message, syntax and attachment plan the
resolver makes, rejections included."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from soredi_sync.api.routers.route_json import decision_json
from soredi_sync.api.routers.routing_schemas import MessageReadOut, RouteOut
from soredi_sync.bootstrap import App
from soredi_sync.domain.routing import (
    Attachment,
    AttachmentContent,
    RouteDecision,
    RouteRequest,
    RoutingInputError,
)

ATTACHMENT_SETS = [
    (),
    (Attachment("application/pdf", 250_000),),
    (
        Attachment("image/png", 12_000, "Røntgen æøå", AttachmentContent.SEPARATE, "image/png"),
        Attachment("application/msword", 90_000_000, None, AttachmentContent.LINK),
        Attachment("", 10, "ingen type", AttachmentContent.NONE),
    ),
]


def _requests(app: App) -> list[RouteRequest]:
    resolver = app.routing().resolver()
    registry = resolver.index.registry
    businesses = resolver.business_messages()
    receivers = [(gln, None) for gln in sorted(registry.glns)]
    receivers += [(None, sor_id) for sor_id in sorted(registry.units)[:40]]
    receivers += [("5790000000000", None), (None, "999999999999999")]  # unknown
    requests = []
    for (gln, sor_id), business, syntax, attachments in itertools.product(
        receivers, businesses, ("fhir", "oioxml", "edifact"), ATTACHMENT_SETS
    ):
        requests.append(
            RouteRequest(
                business_message=business,
                sender_syntax=syntax,
                receiver_gln=gln,
                receiver_sor_id=sor_id,
                text_length=len(requests) * 97 % 60_000,
                category="Svar på undersøgelse" if len(requests) % 3 else None,
                topic='Kontrol\u00a0— "citat" \\ og linjeskift\n',
                attachments=attachments,
                at=date(2027, 1, 4) if len(requests) % 5 == 0 else None,
            )
        )
    return requests


def test_every_decision_is_written_exactly_as_route_out_writes_it(synced_app: App) -> None:
    service = synced_app.routing()
    now = service.now() + timedelta(seconds=12.3456)
    decisions: list[tuple[RouteRequest, RouteDecision]] = []
    for request in _requests(synced_app):
        try:
            decisions.append((request, service.route(request)))
        except RoutingInputError:
            continue
    kinds = {
        (d.decision.value, d.reason, bool(d.attachments), bool(d.warnings)) for _, d in decisions
    }
    assert len(decisions) > 1000 and len(kinds) >= 6, kinds
    message = MessageReadOut(syntax="oioxml", message_type="XDIS91", business_message="x")
    for number, (request, decision) in enumerate(decisions):
        message_id = None if number % 2 else f"msg-{number}-ø"
        read = message if number % 7 == 0 else None
        expected = RouteOut.model_validate(decision, context={"now": now})
        expected.message_id = message_id
        expected.message = read
        assert decision_json(decision, now, message_id=message_id, message=read) == (
            expected.model_dump_json().encode()
        ), request
