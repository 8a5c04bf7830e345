"""The limits a converted message must keep (attachments, size, the legacy subject and text):
each either refuses the message or warns, as the policy says."""

from __future__ import annotations

from soredi_sync.domain.routing.attachments import _attachment_name
from soredi_sync.domain.routing.model import (
    Attachment,
    AttachmentContent,
    Reason,
    RouteRequest,
    WarningCode,
    _Trace,
)
from soredi_sync.domain.routing.policy import RoutingPolicy

_WITH_CONTENT = frozenset({AttachmentContent.DATA, AttachmentContent.SEPARATE})


def _has_content(attachment: Attachment) -> bool:
    return attachment.content in _WITH_CONTENT


class _LimitChecks:
    """The conversion limit checks of :class:`~soredi_sync.domain.routing.Resolver`."""

    policy: RoutingPolicy

    def _check_limits(self, request: RouteRequest, syntax: str, trace: _Trace) -> Reason | None:
        """The limits of a converted message, in this order: attachments (too many, without
        content, links, types, size), then the legacy subject and text."""
        limits = self.policy.limits
        attachments = request.attachments
        if attachments:
            reason = self._check_attachment_limits(attachments, trace)
            if reason is not None:
                return reason
        total = request.total_size
        if total is None and attachments:
            total = sum(a.size for a in attachments if _has_content(a))
        if total is not None and total > limits.max_total_bytes:
            trace.add("limits", "too-large", f"{total} bytes > {limits.max_total_bytes}")
            return Reason.TOO_LARGE
        legacy = syntax != "fhir"
        if request.category_coded is False:
            if legacy and limits.reject_missing_category:
                trace.add(
                    "limits",
                    "category-missing",
                    "the category has no code: the legacy subject is built from it",
                )
                return Reason.CATEGORY_MISSING
            trace.warn(
                WarningCode.CATEGORY_MISSING,
                "the message's category has no code"
                + (
                    ": the legacy subject, built from the category, will be incomplete"
                    if legacy
                    else ""
                ),
            )
        if legacy:
            subject = request.legacy_subject()
            if subject is not None and len(subject) > limits.legacy_subject_max:
                detail = f"{len(subject)} characters > {limits.legacy_subject_max}"
                if limits.reject_long_subject:
                    trace.add("limits", "subject-too-long", detail)
                    return Reason.SUBJECT_TOO_LONG
                trace.warn(
                    WarningCode.SUBJECT_TRUNCATED,
                    f"subject will be cut to {limits.legacy_subject_max} characters ({detail})",
                )
            text = request.text_length
            if text is not None and text > limits.legacy_text_max:
                detail = f"{text} characters > {limits.legacy_text_max}"
                if limits.reject_long_text:
                    trace.add("limits", "text-too-long", detail)
                    return Reason.TEXT_TOO_LONG
                trace.warn(
                    WarningCode.TEXT_OVER_LEGACY_LIMIT,
                    f"text is longer than the old legacy limit ({detail}); "
                    "a receiver that still has it must answer with a negative receipt",
                )
        trace.add("limits", "ok", "within the conversion limits")
        return None

    def _check_attachment_limits(
        self, attachments: tuple[Attachment, ...], trace: _Trace
    ) -> Reason | None:
        limits = self.policy.limits
        if len(attachments) > limits.max_attachments:
            trace.add(
                "limits", "too-many-attachments", f"{len(attachments)} > {limits.max_attachments}"
            )
            return Reason.TOO_MANY_ATTACHMENTS
        empty: list[str] = []
        links: list[str] = []
        bad: list[str] = []
        for index, a in enumerate(attachments, 1):
            if a.content is AttachmentContent.NONE:
                empty.append(_attachment_name(index, a))
            elif a.content is AttachmentContent.LINK:
                links.append(_attachment_name(index, a))
            elif (a.sniffed_type or a.mime_type) not in limits.allowed_mime_types:
                bad.append(
                    _attachment_name(index, a)
                    + (f" whose bytes are {a.sniffed_type}" if a.sniffed_type else "")
                )
        if empty:
            trace.add(
                "limits",
                "without-content",
                "; ".join(empty) + ": neither data nor a url, nothing to convert",
            )
            return Reason.ATTACHMENT_WITHOUT_CONTENT
        if links and limits.reject_link_attachments:
            trace.add(
                "limits",
                "link-not-convertible",
                "; ".join(links) + ": a link only, which a conversion cannot fetch",
            )
            return Reason.ATTACHMENT_LINK_NOT_CONVERTIBLE
        if bad:
            trace.add("limits", "mime-not-allowed", "; ".join(bad))
            return Reason.MIME_NOT_ALLOWED
        return None
