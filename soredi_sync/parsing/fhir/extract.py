"""The routing facts of a message Bundle read into the shape of FHIR JSON: its message type, the
receiver and sender (references resolved within the Bundle), the category, text and attachments."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from soredi_sync.domain.identifiers import (
    LEGACY_GLN_SYSTEM,
    IdentifierKind,
    IdentifierSource,
    ReceiverIdentifier,
    read_identifier,
)
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, AttachmentContent
from soredi_sync.parsing.attachment_bytes import _Base64Data
from soredi_sync.parsing.fhir.facts import BundleFacts
from soredi_sync.parsing.fhir.nodes import _first, _items, _kind, _message_start, _text
from soredi_sync.parsing.fhir.vocabulary import (
    CARE_COMMUNICATION_EVENT,
    CATEGORY_SYSTEM,
    EVENT_BUSINESS_MESSAGES,
    EVENT_MESSAGE_TYPES,
    GLN_SYSTEMS,
    SOR_ID_SYSTEM,
)
from soredi_sync.parsing.refusals import BundleProblem, InvalidBundle

_RELATIVE_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_DESTINATION_USE = "medcom-messaging-destinationUseExtension"
_CORRESPONDENCE = EVENT_BUSINESS_MESSAGES[CARE_COMMUNICATION_EVENT]


def _identifiers_of(organization: Any) -> list[ReceiverIdentifier]:
    """Every identifier of an Organization that has a value, system and value as written."""
    found: list[ReceiverIdentifier] = []
    for identifier in _items(organization, "identifier"):
        value = _first(identifier, "value")
        if isinstance(value, int) and not isinstance(value, bool):  # a GLN as a JSON number
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            continue
        system = _first(identifier, "system")
        found.append(
            ReceiverIdentifier(
                IdentifierSource.ORGANIZATION, system if isinstance(system, str) else None, value
            )
        )
    return found


def _listing(identifiers: list[ReceiverIdentifier]) -> str:
    """What a receiver's identifiers are, for a refusal that names them all."""
    if not identifiers:
        return "no identifier and no endpoint"
    parts: list[str] = []
    for identifier in identifiers:
        if identifier.source is IdentifierSource.ENDPOINT:
            parts.append(f"the endpoint {identifier.value!r}, which names no SOR-ID")
            continue
        read = read_identifier(identifier)
        what = f"{identifier.value!r} under " + (
            repr(identifier.system) if identifier.system is not None else "no system"
        )
        if read.kind is not IdentifierKind.UNKNOWN:
            label = "GLN" if read.kind is IdentifierKind.GLN else "SOR-ID"
            what += f" (not a valid {label})"
        parts.append(what)
    return "; ".join(parts)


class _Extractor:
    def __init__(
        self,
        bundle: dict[str, Any],
        allow_events: frozenset[str],
        message_types: MessageTypeRegistry | None = None,
    ) -> None:
        self.bundle = bundle
        self.allow_events = allow_events
        self.message_types = message_types
        self.notes: list[str] = []
        self.by_url: dict[str, Any] = {}
        self.by_id: dict[tuple[str, str], list[Any]] = {}
        self.resources: list[dict[str, Any]] = []

    def facts(self, total_size: int, wire_format: str) -> BundleFacts:
        bundle = self.bundle
        entries, header, event = _message_start(bundle, self.allow_events)
        self._index(entries)
        header_url = _text(entries[0], "fullUrl")
        definition = _text(header, "definition")
        message_type, business_message = self._message_type(event, definition)

        receiver, identifiers = self._receiver(header, header_url)
        receiver_gln, receiver_sor_id = self._first_usable(identifiers, "receiver")
        if receiver_gln is None and receiver_sor_id is None:
            raise InvalidBundle(
                BundleProblem.RECEIVER_UNIDENTIFIED,
                f"the receiver {receiver} has neither a GLN nor a SOR-ID that can be read "
                f"(a GLN under {', '.join(sorted(GLN_SYSTEMS))} or {LEGACY_GLN_SYSTEM}; a SOR-ID "
                f"under {SOR_ID_SYSTEM} or in a SOR endpoint): it has {_listing(identifiers)}",
            )
        sender_gln, sender_sor_id = self._sender(header, header_url)

        communication = self._communication(header, header_url, business_message)
        category, category_coded = self._category(communication, business_message)
        text_length, attachments = self._payloads(communication)
        bundle_identifier = _first(bundle, "identifier")
        return BundleFacts(
            bundle_id=_text(bundle, "id"),
            message_id=_text(header, "id") or _text(bundle_identifier, "value"),
            event_code=event,
            message_type=message_type,
            business_message=business_message,
            receiver_gln=receiver_gln,
            receiver_sor_id=receiver_sor_id,
            sender_gln=sender_gln,
            sender_sor_id=sender_sor_id,
            category=category,
            topic=_text(_first(communication, "topic"), "text"),
            text_length=text_length,
            attachments=attachments,
            total_size=total_size,
            wire_format=wire_format,
            notes=tuple(self.notes),
            definition=definition,
            receiver_identifiers=tuple(identifiers),
            category_coded=category_coded,
        )

    # -- the message type --------------------------------------------------------------------

    def _message_type(self, event: str, definition: str | None) -> tuple[str, str]:
        """The FHIR message type and business message. The definition and the event each name
        a type through the registry (the event through :data:`EVENT_MESSAGE_TYPES` when the
        registry does not know it); the event's wins, and a definition naming another type, or
        none the registry knows, is noted. Without a registry, :data:`EVENT_MESSAGE_TYPES`."""
        types = self.message_types
        if types is None:
            return EVENT_MESSAGE_TYPES[event], EVENT_BUSINESS_MESSAGES[event]
        by_event = types.code_for_definition(event) or EVENT_MESSAGE_TYPES.get(event)
        by_definition = types.code_for_definition(definition) if definition else None
        if definition is not None and by_definition is None:
            self.notes.append(
                f"the message definition {definition!r} is not in the message-type registry: "
                f"the type is the event's ({event})"
            )
        elif by_event is not None and by_definition is not None and by_event != by_definition:
            self.notes.append(
                f"the message definition {definition!r} names {by_definition} but the event "
                f"{event} names {by_event}: used the event's"
            )
        code = by_event or by_definition
        if code is None:  # pragma: no cover - parse_bundle accepts only events it can type
            raise InvalidBundle(
                BundleProblem.UNKNOWN_MESSAGE_TYPE,
                f"no message type is known for the event {event}",
                event_code=event,
            )
        if code in types:
            return code, types.get(code).business_message
        return code, EVENT_BUSINESS_MESSAGES[event]

    # -- header ------------------------------------------------------------------------------

    def _receiver(
        self, header: Any, header_url: str | None
    ) -> tuple[str, list[ReceiverIdentifier]]:
        """The receiver, described for people, and every identifier it is given: the receiver
        Organization's, then the chosen destination's endpoint."""
        destinations = _items(header, "destination")
        if not destinations:
            raise InvalidBundle(
                BundleProblem.NO_RECEIVER, "the MessageHeader has no destination: no receiver"
            )
        primary = [d for d in destinations if self._destination_use(d) == "primary"]
        destination = (primary or destinations)[0]
        if len(destinations) > 1:
            self.notes.append(
                f"{len(destinations)} destinations: routed to the "
                + ("primary one" if primary else "first one")
            )
        endpoint = _text(destination, "endpoint")
        endpoints = (
            [ReceiverIdentifier(IdentifierSource.ENDPOINT, None, endpoint)] if endpoint else []
        )
        reference = _first(destination, "receiver")
        if not isinstance(reference, dict) or not (
            _text(reference, "reference") or _items(reference, "identifier")
        ):
            if endpoints and read_identifier(endpoints[0]).usable:
                self.notes.append(
                    f"the MessageHeader destination has no receiver: addressed by its endpoint "
                    f"{endpoint}"
                )
                return f"endpoint {endpoint}", endpoints
            raise InvalidBundle(
                BundleProblem.NO_RECEIVER,
                "the MessageHeader destination has no receiver"
                + (f", and its endpoint {endpoint!r} names no SOR-ID" if endpoint else ""),
            )
        target = _text(reference, "reference")
        if target is None:  # a logical reference: the identifier stands for the Organization
            organization = {
                "resourceType": "Organization",
                "identifier": _items(reference, "identifier"),
            }
            return "Organization (by identifier)", _identifiers_of(organization) + endpoints
        resource = self._resolve(target, header, header_url)
        if resource is None:
            raise InvalidBundle(
                BundleProblem.RECEIVER_NOT_FOUND,
                f"the receiver reference {target!r} matches no entry in the Bundle "
                "(by fullUrl or by Organization id)",
            )
        if _kind(resource) != "Organization":
            raise InvalidBundle(
                BundleProblem.RECEIVER_NOT_ORGANIZATION,
                f"the receiver reference {target!r} is a {_kind(resource)}, not an Organization",
            )
        return self._describe(resource), _identifiers_of(resource) + endpoints

    @staticmethod
    def _destination_use(destination: Any) -> str | None:
        for extension in _items(destination, "extension"):
            url = _text(extension, "url")
            if url and url.endswith(_DESTINATION_USE):
                return _text(_first(extension, "valueCoding"), "code")
        return None

    def _sender(self, header: Any, header_url: str | None) -> tuple[str | None, str | None]:
        reference = _first(header, "sender")
        target = _text(reference, "reference")
        if target is None:
            if _items(reference, "identifier"):
                organization = {"identifier": _items(reference, "identifier")}
                return self._first_usable(_identifiers_of(organization), "sender")
            self.notes.append("the MessageHeader has no sender")
            return None, None
        resource = self._resolve(target, header, header_url)
        if resource is None:
            self.notes.append(f"the sender reference {target!r} matches no entry in the Bundle")
            return None, None
        gln, sor_id = self._first_usable(_identifiers_of(resource), "sender")
        if gln is None and sor_id is None:
            self.notes.append(f"the sender {self._describe(resource)} has no GLN or SOR-ID")
        return gln, sor_id

    def _first_usable(
        self, identifiers: Iterable[ReceiverIdentifier], role: str
    ) -> tuple[str | None, str | None]:
        """The first usable GLN and SOR-ID, in any spelling; several of one kind on the
        Organization itself are noted (the endpoint is compared by the resolver)."""
        found: dict[IdentifierKind, list[str]] = {IdentifierKind.GLN: [], IdentifierKind.SOR_ID: []}
        first: dict[IdentifierKind, str] = {}
        for identifier in identifiers:
            read = read_identifier(identifier)
            if not read.usable or read.value is None:
                continue
            first.setdefault(read.kind, read.value)
            if identifier.source is IdentifierSource.ORGANIZATION:
                found[read.kind].append(read.value)
        for kind, label in ((IdentifierKind.GLN, "GLNs"), (IdentifierKind.SOR_ID, "SOR-IDs")):
            values = found[kind]
            if len(set(values)) > 1:
                self.notes.append(f"the {role} has {len(set(values))} {label}: used {values[0]}")
        return first.get(IdentifierKind.GLN), first.get(IdentifierKind.SOR_ID)

    # -- references --------------------------------------------------------------------------

    def _index(self, entries: list[Any]) -> None:
        for entry in entries:
            resource = _first(entry, "resource")
            if not isinstance(resource, dict):
                continue
            self.resources.append(resource)
            url = _text(entry, "fullUrl")
            if url is not None:
                self.by_url.setdefault(url, resource)
            resource_id = _text(resource, "id")
            if resource_id is not None:
                self.by_id.setdefault((_kind(resource), resource_id), []).append(resource)

    def _resolve(self, reference: str, source: Any, source_url: str | None) -> Any:
        """The resource a literal reference points at within the Bundle, or None."""
        if reference.startswith("#"):
            for contained in _items(source, "contained"):
                if _text(contained, "id") == reference[1:]:
                    return contained
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        match = _RELATIVE_REFERENCE.match(reference)
        if match is None:
            return None
        kind, resource_id = match.group(1), match.group(2)
        # A relative reference is resolved against the base of the referring entry's fullUrl.
        if source_url is not None and "://" in source_url:
            base = source_url.rsplit("/", 2)[0]
            found = self.by_url.get(f"{base}/{kind}/{resource_id}")
            if found is not None:
                return found
        candidates = self.by_id.get((kind, resource_id), [])
        return candidates[0] if len(candidates) == 1 else None

    @staticmethod
    def _describe(resource: Any) -> str:
        name = _text(resource, "name")
        resource_id = _text(resource, "id")
        parts = [_kind(resource)]
        if resource_id:
            parts.append(resource_id)
        if name:
            parts.append(f"({name})")
        return " ".join(parts)

    # -- the communication -------------------------------------------------------------------

    def _communication(self, header: Any, header_url: str | None, business_message: str) -> Any:
        for focus in _items(header, "focus"):
            target = _text(focus, "reference")
            if target is None:
                continue
            resource = self._resolve(target, header, header_url)
            if _kind(resource) == "Communication":
                return resource
        found = [r for r in self.resources if _kind(r) == "Communication"]
        if found:
            if len(found) > 1:
                self.notes.append(f"{len(found)} Communication resources: read the first")
            return found[0]
        if business_message == _CORRESPONDENCE:
            raise InvalidBundle(
                BundleProblem.NO_COMMUNICATION,
                "the CareCommunication Bundle has no Communication resource",
            )
        return None

    def _category(
        self, communication: Any, business_message: str
    ) -> tuple[str | None, bool | None]:
        """The category code (MedCom's coding first) and whether there is one: False for a
        category without a code, or none in a CareCommunication; None without a Communication."""
        if communication is None:
            return None, None
        categories = _items(communication, "category")
        codes: list[tuple[bool, str]] = []
        for category in categories:
            for coding in _items(category, "coding"):
                code = _text(coding, "code")
                if code is not None:
                    codes.append((_text(coding, "system") != CATEGORY_SYSTEM, code))
        if codes:
            return min(codes)[1], True
        if categories:
            self.notes.append("the Communication has a category without a code")
            return None, False
        if business_message == _CORRESPONDENCE:
            self.notes.append("the CareCommunication has no category")
            return None, False
        return None, None

    def _payloads(self, communication: Any) -> tuple[int, tuple[Attachment, ...]]:
        text_length = 0
        attachments: list[Attachment] = []
        for number, payload in enumerate(_items(communication, "payload"), start=1):
            content = _first(payload, "contentString")
            if isinstance(content, str):
                text_length += len(content)
                continue
            attachment = _first(payload, "contentAttachment")
            if isinstance(attachment, dict):
                attachments.append(self._attachment(attachment, number))
            elif _first(payload, "contentReference") is not None:
                self.notes.append(f"payload {number} is a reference: not counted")
        return text_length, tuple(attachments)

    def _attachment(self, attachment: dict[str, Any], number: int) -> Attachment:
        label = f"attachment in payload {number}"
        title = _text(attachment, "title")
        if title:
            label += f" ({title!r})"
        mime_type = (_text(attachment, "contentType") or "").split(";", 1)[0].strip().lower()
        if not mime_type:
            self.notes.append(f"the {label} has no contentType")
        raw = _first(attachment, "data")
        data = _Base64Data.of(raw) if isinstance(raw, str) else raw
        if not isinstance(data, _Base64Data):
            data = None
        elif data.malformed:
            self.notes.append(f"the {label} has data whose length is not valid base64")
        if data is not None and data.size == 0:
            self.notes.append(f"the {label} has empty data")
            data = None
        url = _text(attachment, "url")
        if data is not None:
            content = AttachmentContent.DATA
        elif url is not None:
            content = AttachmentContent.LINK
        else:
            content = AttachmentContent.NONE
            self.notes.append(f"the {label} has neither data nor url: it has no content")
        declared = _first(attachment, "size")
        if declared is not None:
            size = self._size(declared, label)
            if data is not None and data.size != size:
                self.notes.append(
                    f"the {label} declares size {size} but its data decodes to {data.size} "
                    "bytes: used the declared size"
                )
        elif data is not None:
            size = data.size
        else:
            size = 0
            if content is AttachmentContent.LINK:
                self.notes.append(f"the {label} is a link ({url}) without size: size taken as 0")
        return Attachment(
            mime_type,
            size,
            title=title,
            content=content,
            sniffed_type=data.sniffed_type if data is not None else None,
        )

    @staticmethod
    def _size(value: Any, label: str) -> int:
        # R4 JSON: a number; XML and R5 JSON (integer64): a string of digits.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value.strip())
        raise InvalidBundle(
            BundleProblem.INVALID_ATTACHMENT,
            f"the {label} has an invalid size {value!r} (expected a non-negative integer)",
        )
