"""Routing decisions on the current snapshot: ``route`` (a message described by options) and
``route-message`` (a message file; ``route-bundle`` is its older name)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soredi_sync.cli.common import (
    EXIT_REJECTED,
    EXIT_USAGE,
    at_option,
    console,
    emit_json,
    fail,
    json_option,
    jsonable,
    open_app,
    reference_of,
)
from soredi_sync.errors import SorediError

if TYPE_CHECKING:
    from soredi_sync.domain.model import Registry
    from soredi_sync.domain.routing import Attachment, Resolver, RouteRequest
    from soredi_sync.reference_data import ReferenceData


def _attachment(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[Attachment, ...]:
    from soredi_sync.domain.routing import Attachment

    result = []
    for value in values:
        mime, sep, size = value.rpartition(":")
        if not sep or not mime or not size.isdigit():
            raise click.BadParameter(f"{value!r} is not MIME:BYTES (e.g. application/pdf:20000)")
        result.append(Attachment(mime, int(size)))
    return tuple(result)


@click.command("route")
@click.option(
    "--receiver",
    required=True,
    metavar="GLN|SOR_ID",
    help="The receiver's GLN or SOR-ID (prefix gln: or sor: to say which).",
)
@click.option("--message", "business_message", default="correspondence", show_default=True)
@click.option(
    "--sender-syntax",
    type=click.Choice(["fhir", "oioxml", "edifact"]),
    default="fhir",
    show_default=True,
)
@click.option(
    "--attachment", "attachments", multiple=True, callback=_attachment, metavar="MIME:BYTES"
)
@click.option("--text-length", type=click.IntRange(0), help="Characters of message text.")
@click.option("--subject", help="Subject as a legacy receiver would get it.")
@click.option("--total-size", type=click.IntRange(0), help="Bytes of the whole message.")
@at_option
@json_option
@click.pass_context
def route(
    ctx: click.Context,
    receiver: str,
    business_message: str,
    sender_syntax: str,
    attachments: tuple[Attachment, ...],
    text_length: int | None,
    subject: str | None,
    total_size: int | None,
    at: date | None,
    as_json: bool,
) -> None:
    """Decide how a message to RECEIVER is delivered (deliver natively, convert, or reject)."""
    from soredi_sync.domain.routing import RouteRequest

    def build(resolver: Resolver) -> RouteRequest:
        gln, sor_id = _receiver(receiver, resolver.index.registry)
        return RouteRequest(
            business_message=business_message,
            sender_syntax=sender_syntax,
            receiver_gln=gln,
            receiver_sor_id=sor_id,
            text_length=text_length,
            subject=subject,
            attachments=attachments,
            total_size=total_size,
            at=at,
        )

    _route_and_print(ctx, build, as_json)


_MESSAGE_HELP = (
    "Decide for a message exactly as a gateway holds it: a FHIR message Bundle (XML or JSON; "
    "CareCommunication, Acknowledgement, HospitalNotification), an OIOXML Emessage (XDIS91, "
    "XCTL03, XBIN01, ...) or an EDIFACT interchange (DIS91, CTL03, ...). The sender syntax is "
    "read from the file; --sender-syntax routes a FHIR message as if sent in another."
)


@click.command("route-message", help=_MESSAGE_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sender-syntax",
    type=click.Choice(["fhir", "oioxml", "edifact"]),
    help="Route a FHIR message as if sent in this syntax (default: the file's own).",
)
@at_option
@json_option
@click.pass_context
def route_message(
    ctx: click.Context, file: Path, sender_syntax: str | None, at: date | None, as_json: bool
) -> None:
    from soredi_sync.domain.routing import RoutingInputError
    from soredi_sync.parsing.message import parse_message, route_request_for

    reference = reference_of(ctx)
    try:
        facts = parse_message(file.read_bytes(), None, message_types=reference.message_types)
    except SorediError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        ctx.exit(EXIT_USAGE)
    try:
        request = route_request_for(
            facts, sender_syntax, at, category_names=reference.category_names
        )
    except RoutingInputError as exc:
        raise click.UsageError(f"{file.name}: {exc}") from None
    read = {
        "syntax": facts.syntax,
        "message_type": facts.message_type,
        "business_message": facts.business_message,
        "message_id": facts.message_id,
    }
    _route_and_print(ctx, lambda _resolver: request, as_json, read=read, reference=reference)


# The older name, for scripts that call it: the same command.
route_bundle = click.Command(
    "route-bundle",
    callback=route_message.callback,
    params=route_message.params,
    help="The same as route-message (its older name).",
)


def _receiver(value: str, registry: Registry) -> tuple[str | None, str | None]:
    """(GLN, SOR-ID) for a --receiver value: explicit prefix, else whichever the snapshot knows."""
    kind, sep, rest = value.partition(":")
    if sep and kind in ("gln", "sor"):
        return (rest, None) if kind == "gln" else (None, rest)
    if value in registry.glns:
        return value, None
    if value in registry.units:
        return None, value
    # Unknown either way: a 13-digit number is read as a GLN (SOR-IDs are mostly longer).
    return (value, None) if len(value) == 13 and value.isdigit() else (None, value)


def _route_and_print(
    ctx: click.Context,
    build: Callable[[Resolver], RouteRequest],
    as_json: bool,
    *,
    read: dict[str, str | None] | None = None,
    reference: ReferenceData | None = None,
) -> None:
    """Decide for the request ``build(resolver)`` makes and print the decision; ``read`` is
    what was read from a message file (syntax, message type, business message, message id),
    ``reference`` the reference data read for it."""
    from soredi_sync.domain.routing import RoutingInputError

    with open_app(ctx, reference=reference) as app:
        service = app.routing()
        try:
            resolver = service.resolver()
            request = build(resolver)
            decision = resolver.resolve(request, service.today())
        except RoutingInputError as exc:
            raise click.UsageError(str(exc)) from None
        except SorediError as exc:
            fail(ctx, exc)
        now = service.now()
    if as_json:
        data = jsonable(decision)
        data["snapshot"]["age_seconds"] = round(decision.age_seconds(now), 1)
        if read is not None:
            data["message"] = read
        emit_json(data)
    else:
        from soredi_sync.reports.console import describe_read, render_decision

        render_decision(
            console(),
            decision,
            now,
            read=describe_read(read, request) if read is not None else None,
        )
    if decision.decision.value == "reject":
        ctx.exit(EXIT_REJECTED)
