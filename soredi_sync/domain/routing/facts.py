"""The facts of a routing question that the decision log keeps, and the question made from them.

A logged decision can be decided again (on another date, another snapshot, another policy: the
cut-over priced in messages) only if the log holds what the resolver reads. It reads no
content: of the texts it needs only the length of the subject a legacy receiver would get; of
an attachment its declared and sniffed types, size and how its bytes travel, not its title; of
the receiver the identifiers as the message wrote them. So the log keeps exactly those, and
:func:`question_of` makes a :class:`RouteRequest` the resolver decides as it decided the
original: same outcome, reason, types, conversion, address and warnings (the trace names no
attachment title and shows a placeholder subject of the same length).

The facts are a small JSON object with short keys, absent where the question had nothing:
``v`` (the layout's version), ``text`` (text length), ``subject`` (legacy subject length),
``coded`` (category coded), ``total`` (total size), ``at`` (decision date asked for), ``att``
(attachments: ``[mime_type, size, content, sniffed_type]``), ``ids`` (receiver identifiers:
``[source, system, value, kind_hint]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from soredi_sync.domain.identifiers import IdentifierKind, IdentifierSource, ReceiverIdentifier
from soredi_sync.domain.routing.model import Attachment, AttachmentContent, RouteRequest

FACTS_VERSION = 1
_SUBJECT_PLACEHOLDER = "x"  # the replayed subject: this character, as often as the original's


def facts_of(request: RouteRequest) -> dict[str, Any]:
    """What the decision log keeps of ``request`` besides its columns (the receiver's GLN and
    SOR-ID, business message, sender syntax, message id)."""
    facts: dict[str, Any] = {"v": FACTS_VERSION}
    if request.text_length is not None:
        facts["text"] = request.text_length
    subject = request.legacy_subject()
    if subject is not None:
        facts["subject"] = len(subject)
    if request.category_coded is not None:
        facts["coded"] = request.category_coded
    if request.total_size is not None:
        facts["total"] = request.total_size
    if request.at is not None:
        facts["at"] = request.at.isoformat()
    if request.attachments:
        facts["att"] = [
            [a.mime_type, a.size, a.content.value, a.sniffed_type] for a in request.attachments
        ]
    if request.receiver_identifiers:
        facts["ids"] = [
            [i.source.value, i.system, i.value, i.kind_hint.value if i.kind_hint else None]
            for i in request.receiver_identifiers
        ]
    return facts


def question_of(
    facts: Mapping[str, Any],
    *,
    business_message: str,
    sender_syntax: str,
    receiver_gln: str | None,
    receiver_sor_id: str | None,
    message_id: str | None = None,
) -> RouteRequest:
    """The question the resolver decides as it decided the one ``facts`` were kept of.

    :raises ValueError: facts of an unknown layout
    """
    if facts.get("v") != FACTS_VERSION:
        raise ValueError(f"decision facts of layout {facts.get('v')!r}, not {FACTS_VERSION}")
    subject = facts.get("subject")
    at = facts.get("at")
    return RouteRequest(
        business_message=business_message,
        sender_syntax=sender_syntax,
        receiver_gln=receiver_gln,
        receiver_sor_id=receiver_sor_id,
        text_length=facts.get("text"),
        subject=None if subject is None else _SUBJECT_PLACEHOLDER * subject,
        attachments=tuple(
            Attachment(mime_type, size, None, AttachmentContent(content), sniffed)
            for mime_type, size, content, sniffed in facts.get("att", ())
        ),
        total_size=facts.get("total"),
        at=None if at is None else date.fromisoformat(at),
        message_id=message_id,
        receiver_identifiers=tuple(
            ReceiverIdentifier(
                IdentifierSource(source), system, value, IdentifierKind(kind) if kind else None
            )
            for source, system, value, kind in facts.get("ids", ())
        ),
        category_coded=facts.get("coded"),
    )
