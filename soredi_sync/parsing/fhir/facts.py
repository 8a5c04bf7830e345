"""What routing needs to know of one message Bundle (:class:`BundleFacts`), and the routing
question it asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from soredi_sync.domain.identifiers import ReceiverIdentifier
from soredi_sync.domain.routing import Attachment, RouteRequest


@dataclass(frozen=True, slots=True)
class BundleFacts:
    """What routing needs to know of one message Bundle.

    ``message_type`` is the FHIR SOR-EDI type a receiver must advertise to take the message
    natively (``FDIS91``, ``FCTL``, ``FDIS20``) and ``business_message`` its business message;
    ``definition`` is ``MessageHeader.definition`` as written (a canonical, maybe with
    ``|version``). ``receiver_identifiers`` are every identifier of the receiver Organization
    and the destination's endpoint, as written; ``receiver_gln`` and ``receiver_sor_id`` are
    the first usable GLN and SOR-ID among them, in any spelling (for logs). ``category_coded``
    is False for a Communication whose category carries no code (or a CareCommunication with
    no category), None for a message without a Communication.
    ``text_length`` is the characters of every ``contentString`` payload together;
    ``attachments`` are the ``contentAttachment`` payloads (declared MIME type lower-cased
    without parameters, "" when none; size in bytes as declared or, failing that, as decoded
    from the base64 data; the type the first bytes show; how the content travels: data, link,
    none); ``total_size`` is the length in bytes of the bundle as received. ``notes`` says what
    was odd but not fatal (an attachment without size or data, an unresolved sender, ...).
    """

    bundle_id: str | None
    message_id: str | None
    event_code: str
    message_type: str
    business_message: str
    receiver_gln: str | None
    receiver_sor_id: str | None
    sender_gln: str | None
    sender_sor_id: str | None
    category: str | None
    topic: str | None
    text_length: int
    attachments: tuple[Attachment, ...]
    total_size: int
    wire_format: str  # "xml" or "json"
    notes: tuple[str, ...] = ()
    definition: str | None = None
    receiver_identifiers: tuple[ReceiverIdentifier, ...] = ()
    category_coded: bool | None = None

    @property
    def syntax(self) -> str:
        """The sender syntax of every bundle: ``fhir``."""
        return "fhir"

    def legacy_subject(self, category_names: Mapping[str, str]) -> str | None:
        """The XDIS91 subject a conversion makes: category name and topic, comma-separated.

        :param category_names: category code -> the name the legacy message shows (the Danish
            display of MedCom's category code list); an unknown code is shown as itself
        """
        name = category_names.get(self.category, self.category) if self.category else None
        parts = [part for part in (name, self.topic) if part]
        return ", ".join(parts) if parts else None

    def to_route_request(
        self,
        sender_syntax: str | None = None,
        at: date | None = None,
        *,
        category_names: Mapping[str, str] | None = None,
    ) -> RouteRequest:
        """The routing question for this message.

        :param sender_syntax: the syntax the sender is taken to use; None: ``fhir``
        :param category_names: when given, the request carries the exact legacy subject
            (:meth:`legacy_subject`); otherwise the resolver builds one from the category code
            and topic
        """
        return RouteRequest(
            business_message=self.business_message,
            sender_syntax=sender_syntax or self.syntax,
            receiver_gln=self.receiver_gln,
            receiver_sor_id=self.receiver_sor_id,
            text_length=self.text_length,
            subject=self.legacy_subject(category_names) if category_names is not None else None,
            category=self.category,
            topic=self.topic,
            attachments=self.attachments,
            total_size=self.total_size,
            at=at,
            message_id=self.message_id,
            receiver_identifiers=self.receiver_identifiers,
            category_coded=self.category_coded,
            sender_gln=self.sender_gln,
            sender_sor_id=self.sender_sor_id,
        )
