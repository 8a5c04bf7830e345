"""How a delivered message's attachments travel (inline or one binary message each), and the
findings on them that never refuse a message by themselves."""

from __future__ import annotations

from collections.abc import Mapping

from soredi_sync.domain.message_types import MessageType
from soredi_sync.domain.routing.index import RoutingIndex
from soredi_sync.domain.routing.model import (
    Address,
    Attachment,
    AttachmentContent,
    AttachmentPlan,
    WarningCode,
    _Trace,
)
from soredi_sync.domain.routing.policy import RoutingPolicy


def _attachment_name(index: int, attachment: Attachment) -> str:
    title = repr(attachment.title) if attachment.title else "untitled"
    return f"attachment {index} ({title}, {attachment.mime_type or 'no declared type'})"


class _Attachments:
    """The attachment steps of :class:`~soredi_sync.domain.routing.Resolver`."""

    index: RoutingIndex
    policy: RoutingPolicy
    _binary: Mapping[str, tuple[MessageType, ...]]  # syntax -> its binary attachment types

    def _attachment_warnings(
        self, attachments: tuple[Attachment, ...], converting: bool, trace: _Trace
    ) -> None:
        """The findings on each attachment that never refuse a message by themselves."""
        link_rejected = converting and self.policy.limits.reject_link_attachments
        for index, attachment in enumerate(attachments, 1):
            sniffed = attachment.sniffed_type
            if sniffed and sniffed != attachment.mime_type:
                trace.warn(
                    WarningCode.ATTACHMENT_TYPE_MISMATCH,
                    f"{_attachment_name(index, attachment)}: its bytes are {sniffed}"
                    + (" (no type declared)" if not attachment.mime_type else "")
                    + (
                        f"; converted as {sniffed}"
                        if converting or not attachment.mime_type
                        else f"; delivered unchanged, labelled {attachment.mime_type}, which "
                        "the receiver may fail to open"
                    ),
                )
            content = attachment.content
            if content is AttachmentContent.LINK and not link_rejected:
                trace.warn(
                    WarningCode.ATTACHMENT_LINK,
                    f"{_attachment_name(index, attachment)} is a link only (no data): "
                    + (
                        "converted without it (a conversion cannot fetch it)"
                        if converting
                        else "delivered as a link; the receiver must fetch it"
                    ),
                )
            elif content is AttachmentContent.NONE and not converting:
                trace.warn(
                    WarningCode.ATTACHMENT_WITHOUT_CONTENT,
                    f"{_attachment_name(index, attachment)} has neither data nor a url",
                )

    def _plan_attachments(
        self,
        attachments: tuple[Attachment, ...],
        syntax: str,
        converting: bool,
        address: Address,
        trace: _Trace,
    ) -> tuple[AttachmentPlan, ...] | None:
        """How each attachment travels; None when the receiver cannot take them."""
        # A conversion drops link-only attachments (on_attachment_link = "warn"; "reject" has
        # refused the message before this).
        travelling: list[tuple[int, Attachment]] = []
        for index, a in enumerate(attachments, 1):
            if converting and a.content is AttachmentContent.LINK:
                trace.add("attachment", "left-out", f"{_attachment_name(index, a)}: a link only")
            else:
                travelling.append((index, a))
        if not travelling:
            return ()
        carrier = self._attachment_carrier(syntax, address, trace)
        if carrier is None:
            return None
        plans = []
        for index, a in travelling:
            # A conversion writes the type anew (the bytes' own where they show one); native
            # delivery passes the message on unchanged, label and all.
            travels_as = (
                (a.sniffed_type or a.mime_type) if converting else (a.mime_type or a.sniffed_type)
            ) or ""
            trace.add(
                "attachment",
                a.content.value,
                f"{_attachment_name(index, a)}: {a.size} bytes, bytes show "
                f"{a.sniffed_type or 'no known type'}, travels as {travels_as or 'no type'} "
                + ("inline" if carrier == "inline" else f"in a {carrier}"),
            )
            plans.append(
                AttachmentPlan(
                    mime_type=travels_as,
                    size=a.size,
                    carried_as=carrier,
                    index=index,
                    title=a.title,
                    declared_type=a.mime_type or None,
                    sniffed_type=a.sniffed_type,
                    content=a.content,
                )
            )
        return tuple(plans)

    def _attachment_carrier(self, syntax: str, address: Address, trace: _Trace) -> str | None:
        """'inline' where the syntax carries attachments itself, else the binary type to use."""
        binary_types = self._binary.get(syntax, ())
        if not binary_types:
            trace.add("attachments", "inline", f"{syntax} carries attachments in the message")
            return "inline"
        advertised = self.index.types_by_gln.get(address.gln or "", frozenset())
        for mt in binary_types:
            if mt.code in advertised:
                trace.add("attachments", "separate", f"one {mt.code} per attachment")
                return mt.code
        trace.add(
            "attachments",
            "impossible",
            f"receiver takes no {'/'.join(mt.code for mt in binary_types)}",
        )
        return None
