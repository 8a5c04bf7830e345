"""Reading an EDIFACT interchange into its segments: the separators (UNA's or the syntax
level's), segments and data elements counted against the budget, binary objects (UNO) skipped by
their declared length, and the character set its text is in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from soredi_sync.parsing.attachment_bytes import SNIFF_BYTES
from soredi_sync.parsing.facts import has_windows_1252_characters
from soredi_sync.parsing.refusals import BundleBudget, BundleProblem, InvalidMessage

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
