"""The routing facts of a MedCom EDIFACT interchange (DIS91, CTL03, BIN01, DIS20, ...).

An interchange is ``[UNA] UNB (UNH ... UNT)+ UNZ``. Routing reads:

- the service characters from UNA (component, element, release, terminator; without UNA the
  defaults of the syntax level: ``: + ? '``, or the level-B control characters);
- from UNB the syntax identifier (its character set: ``UNOC`` is ISO-8859-1, ``UNOA``/``UNOB``
  ASCII, ...; the text is decoded in it), the sender and the recipient (qualifier ``14``:
  EAN/GLN) and the interchange reference;
- from the first message's UNH its reference, its message identifier (``MEDDIS:D:93A:UN:D9134L``:
  the fifth component is MedCom's version code, looked up in the registry) and its common
  access reference (``DIS91``), the fallback; an interchange of several messages routes the first
  and says how many it holds;
- the letter: the subject from ``FTX+OE``, the text from the other free-text FTX segments (one
  line per component; a component ending in ``\\`` runs on into the next, a lone ``.`` is an
  empty line - MedCom's conventions), references to binary objects sent apart (``FTX+BIN``) or
  links (``FTX+URL``), and the binary objects themselves (``UNO``, whose bytes follow it raw, and
  ``UNP``).

Segments may be followed by CR/LF, and a file wrapped at a fixed width has line breaks inside
segments: neither is data in the character sets EDIFACT allows, so both are dropped. Input is
read a segment at a time with compiled patterns (no per-byte Python loop), its segments and data
elements counted against the :class:`~soredi_sync.parsing.refusals.BundleBudget` element budget,
and a binary object is skipped by its declared length, never copied. A malformed interchange
(no UNB or UNH, an unterminated segment, no UNT or UNZ - a truncated file) is refused with
``MALFORMED`` and a message saying where.
"""

from __future__ import annotations

from soredi_sync.domain.identifiers import IdentifierKind, IdentifierSource, ReceiverIdentifier
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, AttachmentContent
from soredi_sync.parsing.attachment_bytes import sniff_mime_type
from soredi_sync.parsing.edifact_interchange import (
    _Binary,
    _component,
    _Interchange,
    _Message,
    _Segment,
    _Tokenizer,
)
from soredi_sync.parsing.facts import (
    LegacyFacts,
    TypeClue,
    first_usable_gln,
    message_type_of,
    mime_type_for_extension,
)
from soredi_sync.parsing.refusals import DEFAULT_BUDGET, BundleBudget, BundleProblem, InvalidMessage

GLN_QUALIFIER = "14"  # UNB partner identification code qualifier: EAN (GLN)
SUBJECT_QUALIFIER = "OE"  # FTX+OE: the letter's subject
# FTX qualifiers of references (MedCom): a binary object sent apart, a link, other material.
REFERENCE_QUALIFIERS = frozenset({"BIN", "URL", "SUP"})


def parse_edifact(
    data: bytes, *, message_types: MessageTypeRegistry, budget: BundleBudget | None = None
) -> LegacyFacts:
    """Read the routing facts of an EDIFACT interchange.

    :param data: the interchange exactly as received
    :param message_types: the registry that names the message type (``config/message-types.tsv``)
    :param budget: the element budget (segments and data elements together); default
        :data:`~soredi_sync.parsing.refusals.DEFAULT_BUDGET`
    :raises InvalidMessage: ``MALFORMED`` for an interchange that cannot be read (the message
        says where), ``TOO_MANY_ELEMENTS`` over the budget, ``UNKNOWN_MESSAGE_TYPE`` for a type
        the registry does not know, ``NO_RECEIVER`` for a UNB without recipient
    """
    notes: list[str] = []
    interchange = _Tokenizer(data, budget or DEFAULT_BUDGET, notes).interchange()
    return _Facts(interchange, message_types, notes).facts(len(data))


# -- the facts --------------------------------------------------------------------------------


class _Facts:
    def __init__(
        self, interchange: _Interchange, message_types: MessageTypeRegistry, notes: list[str]
    ) -> None:
        self.interchange = interchange
        self.message_types = message_types
        self.notes = notes

    def text(self, segment: _Segment, element: int, component: int) -> str:
        try:
            value = segment.elements[element][component]
        except IndexError:
            return ""
        return value.decode(self.interchange.codec, errors="replace")

    def facts(self, total_size: int) -> LegacyFacts:
        interchange = self.interchange
        header = interchange.header
        message = interchange.messages[0]
        unh = message.header
        notes = self.notes
        message_type = message_type_of(
            self.message_types,
            "edifact",
            (
                TypeClue("UNH message identifier", _component(unh, 1, 4), is_version_code=True),
                TypeClue("UNH common access reference", _component(unh, 2, 0)),
            ),
            notes,
            context=f"UNH {_component(unh, 1, 0) or 'message'}",
        )
        self._check_trailers(message)
        if len(interchange.messages) > 1:
            others = ", ".join(
                _component(m.header, 2, 0) or _component(m.header, 1, 4) or "?"
                for m in interchange.messages
            )
            notes.append(
                f"the interchange holds {len(interchange.messages)} messages ({others}): "
                "routed the first"
            )
        receivers = self._partner(header, 2, "recipient")
        if not receivers:
            raise InvalidMessage(
                BundleProblem.NO_RECEIVER, "UNB names no recipient: no receiver to route to"
            )
        senders = self._partner(header, 1, "sender")
        subject, text_length, attachments = self._letter(message)
        if message_type.business_message == "binary-attachment" and not message.binaries:
            notes.append(f"the {message_type.code} message carries no binary object (UNO)")
        version = _component(unh, 1, 4)
        return LegacyFacts(
            syntax="edifact",
            message_type=message_type.code,
            business_message=message_type.business_message,
            message_id=_component(unh, 0, 0) or _component(header, 4, 0) or None,
            receiver_identifiers=receivers,
            receiver_gln=first_usable_gln(receivers),
            sender_gln=first_usable_gln(senders),
            subject=subject,
            text_length=text_length,
            attachments=attachments,
            total_size=total_size,
            wire_format="edifact",
            encoding=interchange.codec,
            notes=tuple(notes),
            version_code=version or None,
            envelope_id=_component(header, 4, 0) or None,
            message_count=len(interchange.messages),
        )

    def _partner(self, header: _Segment, element: int, role: str) -> tuple[ReceiverIdentifier, ...]:
        value = self.text(header, element, 0).strip()
        if not value:
            return ()
        qualifier = _component(header, element, 1)
        kind: IdentifierKind | None = IdentifierKind.GLN
        if not qualifier:
            self.notes.append(f"the UNB {role} {value} has no qualifier: read as a GLN")
        elif qualifier != GLN_QUALIFIER:
            self.notes.append(
                f"the UNB {role} {value} has qualifier {qualifier}, not {GLN_QUALIFIER} (GLN)"
            )
            kind = None
        return (ReceiverIdentifier(IdentifierSource.EDIFACT, None, value, kind),)

    def _check_trailers(self, message: _Message) -> None:
        unt = message.segments[-1]
        reference = _component(message.header, 0, 0)
        if _component(unt, 1, 0) != reference:
            self.notes.append(f"UNT names message {_component(unt, 1, 0)!r}, UNH {reference!r}")
        count = _component(unt, 0, 0)
        if count != str(len(message.segments)):
            self.notes.append(
                f"UNT counts {count or 'no'} segments but message {reference!r} has "
                f"{len(message.segments)}"
            )
        trailer = self.interchange.trailer
        if _component(trailer, 0, 0) != str(len(self.interchange.messages)):
            self.notes.append(
                f"UNZ counts {_component(trailer, 0, 0) or 'no'} messages but the interchange "
                f"has {len(self.interchange.messages)}"
            )
        if _component(trailer, 1, 0) != _component(self.interchange.header, 4, 0):
            self.notes.append("UNZ names another interchange reference than UNB")

    def _letter(self, message: _Message) -> tuple[str | None, int | None, tuple[Attachment, ...]]:
        subject: list[str] = []
        lines: list[str] = []
        continuing = False
        attachments: list[Attachment] = []
        has_text = False
        references = 0
        for segment in message.segments:
            if segment.tag != "FTX":
                continue
            qualifier = _component(segment, 0, 0)
            components = [
                value.decode(self.interchange.codec, errors="replace")
                for value in (segment.elements[3] if len(segment.elements) > 3 else [])
            ]
            if qualifier == SUBJECT_QUALIFIER:
                subject.append(_join_lines(_text_lines(components), " "))
            elif qualifier in REFERENCE_QUALIFIERS:
                references += 1
                attachment = self._reference(qualifier, components, references)
                if attachment is not None:
                    attachments.append(attachment)
            else:
                has_text = True
                continuing = _add_text_lines(lines, components, continuing)
        for number, binary in enumerate(message.binaries, start=1):
            attachments.append(self._binary(binary, number))
        subject_text = " ".join(part for part in subject if part).strip() or None
        text_length = len("\n".join(lines).strip()) if has_text else None
        return subject_text, text_length, tuple(attachments)

    def _reference(self, qualifier: str, components: list[str], number: int) -> Attachment | None:
        description = components[0].strip() if components else ""
        if qualifier == "BIN":
            parts = components + [""] * (5 - len(components))
            size_text = parts[4].strip()
            size = int(size_text) if size_text.isascii() and size_text.isdigit() else 0
            if not size_text.isdigit():
                self.notes.append(f"reference {number} (FTX+BIN) has no valid object size")
            if not parts[3].strip():
                self.notes.append(f"reference {number} (FTX+BIN) has no object extension")
            return Attachment(
                mime_type=mime_type_for_extension(parts[3]),
                size=size,
                title=parts[1].strip() or parts[2].strip() or description or None,
                content=AttachmentContent.SEPARATE,
            )
        if qualifier == "URL":
            url = "".join(part.rstrip("\\") for part in components[1:]).strip()
            self.notes.append(f"reference {number} is a link ({url!r}), not a binary object")
            return Attachment(
                "", 0, title=description or url or None, content=AttachmentContent.LINK
            )
        self.notes.append(
            f"reference {number} ({description or 'no description'}) points at supplementary "
            "information sent otherwise: no attachment"
        )
        return None

    def _binary(self, binary: _Binary, number: int) -> Attachment:
        header = binary.header
        extension = _component(header, 2, 2)
        if not extension:
            self.notes.append(f"binary object {number} (UNO) names no file type")
        return Attachment(
            mime_type=mime_type_for_extension(extension),
            size=binary.size,
            title=_component(header, 1, 1) or None,
            content=AttachmentContent.DATA,
            sniffed_type=sniff_mime_type(binary.head),
        )


def _text_lines(components: list[str]) -> list[str]:
    lines: list[str] = []
    _add_text_lines(lines, components, False)
    return lines


def _add_text_lines(lines: list[str], components: list[str], continuing: bool) -> bool:
    """Add FTX text components to ``lines`` by MedCom's rules: each component is a line, one
    ending in a backslash runs on into the next (across segments too), a lone ``.`` is an empty
    line. Returns whether the last component runs on."""
    for component in components:
        runs_on = component.endswith("\\")
        text = component[:-1] if runs_on else component
        if continuing and lines:
            lines[-1] += text
        else:
            lines.append("" if text == "." else text)
        continuing = runs_on
    return continuing


def _join_lines(lines: list[str], separator: str) -> str:
    return separator.join(line.strip() for line in lines if line.strip())
