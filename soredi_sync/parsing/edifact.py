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
elements counted against the :class:`~soredi_sync.parsing.bundle.BundleBudget` element budget,
and a binary object is skipped by its declared length, never copied. A malformed interchange
(no UNB or UNH, an unterminated segment, no UNT or UNZ - a truncated file) is refused with
``MALFORMED`` and a message saying where.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from soredi_sync.domain.identifiers import IdentifierKind, IdentifierSource, ReceiverIdentifier
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, AttachmentContent
from soredi_sync.parsing.bundle import (
    DEFAULT_BUDGET,
    SNIFF_BYTES,
    BundleBudget,
    BundleProblem,
    InvalidMessage,
    sniff_mime_type,
)
from soredi_sync.parsing.facts import (
    LegacyFacts,
    TypeClue,
    first_usable_gln,
    has_windows_1252_characters,
    message_type_of,
    mime_type_for_extension,
)

# UNB syntax identifier -> the character set its text is in (ISO 9735).
CHARACTER_SETS = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "iso-8859-1",
    "UNOD": "iso-8859-2",
    "UNOE": "iso-8859-5",
    "UNOF": "iso-8859-7",
    "UNOG": "iso-8859-3",
    "UNOH": "iso-8859-4",
    "UNOI": "iso-8859-6",
    "UNOJ": "iso-8859-8",
    "UNOK": "iso-8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
}
GLN_QUALIFIER = "14"  # UNB partner identification code qualifier: EAN (GLN)
SUBJECT_QUALIFIER = "OE"  # FTX+OE: the letter's subject
# FTX qualifiers of references (MedCom): a binary object sent apart, a link, other material.
REFERENCE_QUALIFIERS = frozenset({"BIN", "URL", "SUP"})

_TAG = re.compile(rb"[A-Z][A-Z0-9]{2}")
_BLANKS = re.compile(rb"[ \t\r\n]*+")
_LINE_BREAKS = b"\r\n"


@dataclass(frozen=True, slots=True)
class _Separators:
    component: int
    element: int
    release: int | None
    terminator: int

    def patterns(self) -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes] | None]:
        """A segment up to its terminator, one data value up to its separator, and a released
        character. Possessive quantifiers: linear whatever the input (a hostile run of release
        characters included)."""
        term, element, component = (
            re.escape(bytes([c])) for c in (self.terminator, self.element, self.component)
        )
        if self.release is None:
            return (
                re.compile(rb"[^%s]*+%s" % (term, term)),
                re.compile(rb"[^%s%s]*+" % (element, component)),
                None,
            )
        rel = re.escape(bytes([self.release]))
        return (
            re.compile(rb"[^%s%s]*+(?:%s.[^%s%s]*+)*+%s" % (term, rel, rel, term, rel, term), re.S),
            re.compile(
                rb"[^%s%s%s]*+(?:%s.[^%s%s%s]*+)*+"
                % (element, component, rel, rel, element, component, rel),
                re.S,
            ),
            re.compile(rb"%s(.)" % rel, re.S),
        )

    @classmethod
    def level_a(cls) -> _Separators:
        return cls(ord(":"), ord("+"), ord("?"), ord("'"))

    @classmethod
    def level_b(cls) -> _Separators:
        return cls(0x1F, 0x1D, None, 0x1C)


@dataclass(slots=True)
class _Segment:
    tag: str
    elements: list[list[bytes]]
    at: int  # byte offset, for messages


@dataclass(slots=True)
class _Binary:
    at: int
    size: int
    head: bytes
    header: _Segment


@dataclass(slots=True)
class _Message:
    header: _Segment
    segments: list[_Segment] = field(default_factory=list)
    binaries: list[_Binary] = field(default_factory=list)
    closed: bool = False


def parse_edifact(
    data: bytes, *, message_types: MessageTypeRegistry, budget: BundleBudget | None = None
) -> LegacyFacts:
    """Read the routing facts of an EDIFACT interchange.

    :param data: the interchange exactly as received
    :param message_types: the registry that names the message type (``config/message-types.tsv``)
    :param budget: the element budget (segments and data elements together); default
        :data:`~soredi_sync.parsing.bundle.DEFAULT_BUDGET`
    :raises InvalidMessage: ``MALFORMED`` for an interchange that cannot be read (the message
        says where), ``TOO_MANY_ELEMENTS`` over the budget, ``UNKNOWN_MESSAGE_TYPE`` for a type
        the registry does not know, ``NO_RECEIVER`` for a UNB without recipient
    """
    notes: list[str] = []
    interchange = _Tokenizer(data, budget or DEFAULT_BUDGET, notes).interchange()
    return _Facts(interchange, message_types, notes).facts(len(data))


# -- segments ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Interchange:
    header: _Segment
    messages: list[_Message]
    trailer: _Segment
    codec: str
    syntax_identifier: str


class _Tokenizer:
    """Segments of one interchange, read lazily; binary objects skipped by their length."""

    def __init__(self, data: bytes, budget: BundleBudget, notes: list[str]) -> None:
        self.data = data
        self.budget = budget
        self.notes = notes
        self.counted = 0
        self.wrapped = False
        self.non_ascii: list[tuple[int, int]] = []  # text spans with bytes over 127
        self.pos, self.separators = self._start()
        self.segment_end, self.value, self.released = self.separators.patterns()
        self.release = bytes([self.separators.release or 0])
        self.last_binary: _Binary | None = None

    def _start(self) -> tuple[int, _Separators]:
        """Where the segments start, and their separators (UNA's, or the syntax level's)."""
        data = self.data
        pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        pos = _skip_blanks(data, pos)
        if pos >= len(data):
            raise InvalidMessage(BundleProblem.EMPTY, "the body is empty: expected EDIFACT")
        if data.startswith(b"UNA", pos):
            separators = self._una(pos)
            pos += 9
        elif data.startswith(b"UNB", pos):
            level_b = data[pos + 3 : pos + 4] == bytes([0x1D])
            separators = _Separators.level_b() if level_b else _Separators.level_a()
        else:
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"not an EDIFACT interchange: it starts with {data[pos : pos + 12]!r}, "
                "not UNA or UNB",
            )
        return pos, separators

    def interchange(self) -> _Interchange:
        data = self.data
        segments = self._segments(self.pos)

        header = next(segments, None)
        if header is None or header.tag != "UNB":
            found = f"with {header.tag}" if header else "after UNA"
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"the interchange has no UNB header: it starts {found}",
            )
        messages: list[_Message] = []
        current: _Message | None = None
        trailer: _Segment | None = None
        for segment in segments:
            tag = segment.tag
            if tag == "UNH":
                if current is not None and not current.closed:
                    raise InvalidMessage(
                        BundleProblem.MALFORMED,
                        f"message {_ref(current.header)} has no UNT before the next UNH "
                        f"(at byte {segment.at})",
                    )
                current = _Message(segment)
                messages.append(current)
                current.segments.append(segment)
            elif tag == "UNZ":
                trailer = segment
                break
            elif tag in ("UNG", "UNE"):
                continue
            elif current is None or current.closed:
                self.notes.append(f"segment {tag} at byte {segment.at} is outside a message")
            else:
                current.segments.append(segment)
                if tag == "UNT":
                    current.closed = True
                elif tag == "UNO" and self.last_binary is not None:
                    current.binaries.append(self.last_binary)
                elif tag == "UNP" and self.last_binary is not None:
                    length = _component(segment, 0, 0)
                    if length != str(self.last_binary.size):
                        self.notes.append(
                            f"UNP at byte {segment.at} gives the object length {length or 'no'}, "
                            f"UNO {self.last_binary.size}"
                        )
        if not messages:
            raise InvalidMessage(
                BundleProblem.MALFORMED, "the interchange holds no message (no UNH segment)"
            )
        if not messages[-1].closed:
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"message {_ref(messages[-1].header)} has no UNT: the interchange is cut short",
            )
        if trailer is None:
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                "the interchange ends without UNZ: it is cut short",
            )
        rest = _skip_blanks(data, self.pos)
        if rest < len(data):
            self.notes.append(f"{len(data) - rest} bytes after UNZ were not read")
        if self.wrapped:
            self.notes.append("line breaks inside segments (a wrapped file) were dropped")
        syntax_identifier = _component(header, 0, 0)
        codec = self._codec(syntax_identifier)
        return _Interchange(header, messages, trailer, codec, syntax_identifier)

    def _una(self, pos: int) -> _Separators:
        advice = self.data[pos + 3 : pos + 9]
        if len(advice) < 6:
            raise InvalidMessage(
                BundleProblem.MALFORMED, "the UNA service string advice is cut short"
            )
        component, element, _decimal, release, _reserved, terminator = advice
        used = [component, element, terminator] + ([] if release == 0x20 else [release])
        if len(set(used)) < len(used) or any(chr(c).isalnum() or c in _LINE_BREAKS for c in used):
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"the UNA service string advice {advice!r} does not give distinct separators",
            )
        return _Separators(component, element, None if release == 0x20 else release, terminator)

    def _segments(self, pos: int) -> Iterator[_Segment]:
        data = self.data
        separators = self.separators
        self.pos = pos
        while True:
            pos = _skip_blanks(data, pos)
            self.pos = pos
            if pos >= len(data):
                return
            found = self.segment_end.match(data, pos)
            if found is None:
                raise InvalidMessage(
                    BundleProblem.MALFORMED,
                    f"the segment at byte {pos} ({data[pos : pos + 12]!r}...) has no segment "
                    "terminator: the interchange is cut short",
                )
            end = found.end()
            raw = data[pos : end - 1]
            if b"\r" in raw or b"\n" in raw:
                raw = raw.translate(None, _LINE_BREAKS)
                self.wrapped = True
            tag = raw[:3]
            if not _TAG.fullmatch(tag) or (len(raw) > 3 and raw[3] != separators.element):
                raise InvalidMessage(
                    BundleProblem.MALFORMED,
                    f"bad segment at byte {pos}: {raw[:12]!r} does not start with a segment tag",
                )
            self._count(1 + raw.count(separators.element) + raw.count(separators.component))
            if not raw.isascii():
                self.non_ascii.append((pos, end - 1))
            segment = _Segment(tag.decode("ascii"), self._elements(raw, pos), pos)
            pos = end
            if segment.tag == "UNO":
                pos = self._binary(segment, pos)
            self.pos = pos
            yield segment
            if segment.tag == "UNZ":
                return

    def _elements(self, raw: bytes, at: int) -> list[list[bytes]]:
        separators = self.separators
        elements: list[list[bytes]] = []
        current: list[bytes] = []
        pos = 4
        if len(raw) <= 3:
            return elements
        while True:
            found = self.value.match(raw, pos)
            assert found is not None  # the pattern matches the empty string
            value = found.group()
            if self.released is not None and self.release in value:
                value = self.released.sub(rb"\1", value)
            current.append(value)
            pos = found.end()
            if pos >= len(raw):
                elements.append(current)
                return elements
            separator = raw[pos]
            pos += 1
            if separator == separators.element:
                elements.append(current)
                current = []
            elif separator != separators.component:  # a release character at the very end
                raise InvalidMessage(
                    BundleProblem.MALFORMED,
                    f"bad segment at byte {at}: a release character ends it",
                )

    def _binary(self, segment: _Segment, pos: int) -> int:
        """Skip the raw bytes of a binary object (UNO: its length is the fourth element)."""
        size_text = _component(segment, 3, 0)
        if not (size_text.isascii() and size_text.isdigit()):
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"the binary object (UNO) at byte {segment.at} gives no length "
                f"({size_text!r}): its bytes cannot be skipped",
            )
        size = int(size_text)
        remaining = len(self.data) - pos
        if size > remaining:
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"the binary object (UNO) at byte {segment.at} declares {size} bytes but only "
                f"{remaining} follow: the interchange is cut short",
            )
        self.last_binary = _Binary(pos, size, self.data[pos : pos + SNIFF_BYTES], segment)
        after = pos + size
        next_at = _skip_blanks(self.data, after)
        if not self.data.startswith(b"UNP", next_at):
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"the binary object (UNO) at byte {segment.at} is not followed by its UNP "
                f"trailer after its {size} bytes: its declared length is wrong",
            )
        return after

    def _count(self, elements: int) -> None:
        self.counted += elements
        if self.counted > self.budget.max_elements:
            raise InvalidMessage(
                BundleProblem.TOO_MANY_ELEMENTS,
                f"the interchange has more than {self.budget.max_elements:,} segments and data "
                "elements, its element budget (max_bundle_elements): refused before reading "
                "the rest",
            )

    def _codec(self, syntax_identifier: str) -> str:
        declared = CHARACTER_SETS.get(syntax_identifier)
        if declared is None:
            self.notes.append(
                f"unknown syntax identifier {syntax_identifier!r} in UNB: text read as ISO-8859-1"
            )
            declared = "iso-8859-1"
        if not self.non_ascii or declared == "utf-8":
            return declared
        if all(_is_utf8(self.data[start:end]) for start, end in self.non_ascii):
            self.notes.append(
                f"UNB says {syntax_identifier} ({declared}) but the text is UTF-8: read as UTF-8"
            )
            return "utf-8"
        text_bytes = b"".join(self.data[start:end] for start, end in self.non_ascii)
        if declared in ("ascii", "iso-8859-1") and has_windows_1252_characters(text_bytes):
            self.notes.append(
                f"UNB says {syntax_identifier} ({declared}) but the text has windows-1252 "
                "characters (such as curly quotes): read as windows-1252"
            )
            return "windows-1252"
        if declared == "ascii":
            self.notes.append(
                f"UNB says {syntax_identifier} (ASCII) but the text has other characters: "
                "read as ISO-8859-1"
            )
            return "iso-8859-1"
        return declared


def _skip_blanks(data: bytes, pos: int) -> int:
    """Past the CR/LF (and blanks) that may follow a segment."""
    found = _BLANKS.match(data, pos)
    return found.end() if found else pos


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _component(segment: _Segment, element: int, component: int) -> str:
    """A component as ASCII text (service data: tags, codes, numbers); "" when absent."""
    try:
        value = segment.elements[element][component]
    except IndexError:
        return ""
    return value.decode("ascii", errors="replace").strip()


def _ref(header: _Segment) -> str:
    return repr(_component(header, 0, 0) or f"at byte {header.at}")


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
