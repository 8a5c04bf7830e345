"""What an attachment's bytes show without decoding them whole: the type its magic number says
(:func:`sniff_mime_type`), and its size and first bytes read from its base64 text."""

from __future__ import annotations

import base64
import binascii
import re

# The magic numbers of the attachment types conversion allows (config/routing.toml
# [limits] allowed_mime_types): what an attachment's first bytes show it to be.
MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)
SNIFF_BYTES = max(len(magic) for magic, _ in MAGIC_NUMBERS)

_NO_WHITESPACE = str.maketrans("", "", " \t\r\n")
_NOT_BLANK = re.compile(r"[^ \t\r\n]")


def base64_decoded_size(text: str) -> int:
    """The number of bytes ``text`` (base64, whitespace allowed) decodes to, without decoding."""
    return _Base64Data.of(text).size


def sniff_mime_type(head: bytes) -> str | None:
    """The allowed attachment type whose magic number ``head`` (the first bytes) starts with:
    ``application/pdf``, ``image/png``, ``image/jpeg``, ``image/gif``, ``image/tiff`` or
    ``image/bmp``; None for anything else."""
    for magic, mime_type in MAGIC_NUMBERS:
        if head.startswith(magic):
            return mime_type
    return None


def base64_head(text: str, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes (or fewer) ``text`` (base64, whitespace allowed) decodes to,
    decoding only its first few characters; b"" when they are not base64."""
    wanted = -(-size // 3) * 4  # whole groups of 4 characters
    first = _NOT_BLANK.search(text)  # in C, without copying leading blanks
    if first is None:
        return b""
    start, taken = first.start(), max(wanted * 2, 64)
    while True:
        compact = text[start : start + taken].translate(_NO_WHITESPACE)
        if len(compact) >= wanted or start + taken >= len(text):
            break
        taken *= 4  # blanks between the first characters: read further
    compact = compact[:wanted]
    compact = compact[: len(compact) - len(compact) % 4]
    try:
        return base64.b64decode(compact, validate=True)[:size]
    except (binascii.Error, ValueError):
        return b""


class _Base64Data:
    """What is kept of an attachment's base64 ``data``: its decoded size and its first few
    bytes (enough for :func:`sniff_mime_type`), never the data."""

    __slots__ = ("size", "malformed", "head")

    def __init__(self, size: int, malformed: bool, head: bytes = b"") -> None:
        self.size = size
        self.malformed = malformed
        self.head = head

    @classmethod
    def of(cls, text: str) -> _Base64Data:
        # Whitespace is allowed inside base64 (and XML attribute normalisation turns line
        # breaks into spaces); str.count runs in C, so 100 MB costs milliseconds.
        chars = len(text) - sum(text.count(ws) for ws in " \t\r\n")
        end = len(text)
        while end and text[end - 1] in " \t\r\n":  # not rstrip(): that copies 100 MB
            end -= 1
        tail = text[max(end - 2, 0) : end]
        padding = 2 if tail == "==" else 1 if tail.endswith("=") else 0
        # Unpadded base64 (2 or 3 chars in the last group) decodes to 1 or 2 bytes; floor
        # handles it. A last group of 1 char cannot be base64.
        size = max(chars * 3 // 4 - padding, 0)
        return cls(size, chars % 4 == 1, base64_head(text))

    @property
    def sniffed_type(self) -> str | None:
        return sniff_mime_type(self.head)
