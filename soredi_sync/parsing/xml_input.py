"""Reading untrusted XML bytes: the prolog scan that refuses a DOCTYPE before libxml2 sees the
document, an iterparse that never resolves entities or fetches anything, and the character set a
legacy file is really written in."""

from __future__ import annotations

import codecs
import io
import re
from typing import Any

from lxml import etree

from soredi_sync.parsing.facts import has_windows_1252_characters
from soredi_sync.parsing.refusals import BundleProblem, InvalidBundle, InvalidMessage

# The character sets a declaration may name that are one byte per character: bytes that are
# valid UTF-8 under such a declaration were written as UTF-8.
SINGLE_BYTE_CODECS = frozenset({"iso8859-1", "cp1252", "iso8859-15"})  # codecs.lookup names

_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_DECLARATION = re.compile(
    rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:\-]{1,40})["']""", re.ASCII
)
_CHECK_CHUNK = 1 << 20


def xml_root_at(data: bytes, *, what: str = "FHIR XML") -> int:
    """Where the root element starts, past the XML declaration, comments and processing
    instructions; ``len(data)`` when there is nothing but those. This is how a DOCTYPE is refused
    before libxml2 parses anything (with huge_tree, its limits are off).

    :param what: the kind of document, for the refusal ("FHIR XML", "an OIOXML message")
    :raises InvalidMessage: ``DOCTYPE`` for a document type declaration (entity expansion and
        external fetches are never allowed), ``MALFORMED`` for another ``<!`` declaration
        before the root
    """
    pos = 3 if data.startswith(_UTF8_BOM) else 0
    while True:
        found = _WHITESPACE.match(data, pos)
        pos = found.end() if found else pos
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos + 2)
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
        elif data.startswith(b"<!", pos):
            if data[pos + 2 : pos + 9].upper() == b"DOCTYPE":
                raise InvalidBundle(
                    BundleProblem.DOCTYPE,
                    "the XML has a DOCTYPE declaration, which is refused (entity expansion "
                    f"and external fetches are not allowed; {what} never has one)",
                )
            raise InvalidBundle(
                BundleProblem.MALFORMED,
                f"malformed XML: unexpected {data[pos : pos + 12]!r} before the root element",
            )
        else:
            return min(pos, len(data))  # the root element (or garbage, which libxml2 reports)
        if end < 0:
            return len(data)  # unterminated: libxml2 reports it
        pos = end + 2 if data[end] == ord("?") else end + 3


def hardened_iterparse(data: bytes, encoding: str | None = None) -> Any:
    """``iterparse`` start and end events over ``data`` that never resolve an entity, load a
    DTD or touch the network. ``huge_tree`` lets attachments over 10 MB through; that is safe
    only because the caller has refused a DOCTYPE with :func:`xml_root_at` first."""
    return etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
        encoding=encoding,
    )


# -- character set ----------------------------------------------------------------------------


def _character_set(data: bytes, notes: list[str]) -> tuple[str, str | None]:
    """The character set the text is read in, and the one to make libxml2 use instead of the
    declared one (None: the declaration holds).

    :raises InvalidMessage: ``ENCODING`` for an unknown character set, or bytes that are not
        valid in the declared UTF-8
    """
    start = xml_root_at(data, what="a MedCom message")
    declared_match = _DECLARATION.search(data, 0, start)
    declared = declared_match.group(1).decode("ascii") if declared_match else None
    if data.startswith(_UTF8_BOM):
        declared = declared or "UTF-8"
    name = declared or "UTF-8"  # XML's default
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise InvalidMessage(
            BundleProblem.ENCODING,
            f"the XML declares the character set {name!r}, which is not known",
        ) from None
    if codec == "utf-8":
        bad = None if data.isascii() else _utf8_error(data)
        if bad is not None:
            said = "declares UTF-8" if declared else "declares no character set (so UTF-8)"
            raise InvalidMessage(
                BundleProblem.ENCODING,
                f"the XML {said} but byte {bad} is not valid UTF-8 "
                "(OIOXML is usually ISO-8859-1: is its declaration missing?)",
            )
        return "utf-8", None
    if codec in SINGLE_BYTE_CODECS and not data.isascii():
        if _utf8_error(data) is None:
            notes.append(f"the XML declares {declared} but its bytes are UTF-8: read as UTF-8")
            return "utf-8", "utf-8"
        if codec == "iso8859-1" and has_windows_1252_characters(data):
            notes.append(
                f"the XML declares {declared} but has windows-1252 characters (such as curly "
                "quotes): read as windows-1252"
            )
            return "windows-1252", "windows-1252"
    return (declared or name).lower(), None


def _utf8_error(data: bytes) -> int | None:
    """Where ``data`` stops being UTF-8 (about: within a few bytes), None when it is valid.
    Decoded a chunk at a time, so a 100 MB file is never held twice."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(data), _CHECK_CHUNK):
        end = start + _CHECK_CHUNK
        try:
            decoder.decode(data[start:end], final=end >= len(data))
        except UnicodeDecodeError as exc:
            return start + max(exc.start, 0)
    return None
