"""The routing facts of a legacy MedCom message (OIOXML ``Emessage`` or EDIFACT interchange).

:class:`LegacyFacts` is what :mod:`soredi_sync.parsing.oioxml` and
:mod:`soredi_sync.parsing.edifact` read; it answers the same questions as
:class:`~soredi_sync.parsing.fhir.BundleFacts` (syntax, message type, business message, every
receiver identifier, size) so :func:`soredi_sync.parsing.message.parse_message` can hand either
to the resolver. Legacy messages carry a subject, not a category code, so ``category_coded`` is
never known for them.

The type of a legacy message is looked up in the message-type registry
(``config/message-types.tsv``), never hard-coded: :func:`message_type_of` takes what the message
says (a type code, a MedCom version code) and answers the registry's type of the right syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from soredi_sync.domain.identifiers import ReceiverIdentifier, read_identifier
from soredi_sync.domain.message_types import MessageType, MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, RouteRequest
from soredi_sync.parsing.refusals import BundleProblem, InvalidMessage

# MedCom's object extension codes (OIOXML ObjectExtensionCode, lower case; EDIFACT UNO and
# FTX+BIN, upper case) -> the MIME type they declare. The first eight are the types conversion
# allows; the rest are real codes of MedCom's list, named so a refusal can say what they are.
EXTENSION_TYPES: Mapping[str, str] = {
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "png": "image/png",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "pcx": "image/x-pcx",
    "mpg": "video/mpeg",
    "avi": "video/x-msvideo",
    "wav": "audio/wav",
    "mid": "audio/midi",
    "rmi": "audio/midi",
    "dcm": "application/dicom",
    "scp": "application/dicom",
    "txt": "text/plain",
    "rtf": "application/rtf",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "wpd": "application/vnd.wordperfect",
    "zip": "application/zip",
}
# A declared extension outside the list: a type no receiver is promised to take.
UNKNOWN_EXTENSION_TYPE = "application/octet-stream"

_C1_BYTES = tuple(bytes([code]) for code in range(0x80, 0xA0))
_UNDEFINED_IN_WINDOWS_1252 = frozenset(bytes([b]) for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D))


@dataclass(frozen=True, slots=True)
class LegacyFacts:
    """What routing needs to know of one OIOXML or EDIFACT message.

    ``message_type`` is the registry's code (``XDIS91``, ``CTL03``, ...) and
    ``business_message`` that type's; ``version_code`` is MedCom's version code as the message
    gave it. ``message_id`` is the letter's identifier (OIOXML ``Letter/Identifier``, EDIFACT
    UNH message reference), ``envelope_id`` the envelope's (OIOXML ``Envelope/Identifier``,
    EDIFACT UNB interchange reference). ``receiver_identifiers`` are the receiver's EAN/GLN
    as written (``Receiver/EANIdentifier`` of the letter, or the UNB recipient), and
    ``receiver_gln`` the first usable one. ``subject`` is the legacy subject as carried;
    ``text_length`` the characters of the letter text (line breaks count one), None for a
    message without one (a receipt, a binary letter). ``attachments`` are the binary objects
    the message carries (content ``data``) or references (content ``separate``: in an
    XBIN01/BIN01 of their own). ``total_size`` is the length in bytes as received;
    ``encoding`` the character set the text was read in; ``message_count`` how many messages
    the envelope holds (the first is routed). ``notes`` says what was odd but not fatal.
    """

    syntax: str  # "oioxml" | "edifact"
    message_type: str
    business_message: str
    message_id: str | None
    receiver_identifiers: tuple[ReceiverIdentifier, ...]
    receiver_gln: str | None
    sender_gln: str | None
    subject: str | None
    text_length: int | None
    attachments: tuple[Attachment, ...]
    total_size: int
    wire_format: str  # "xml" | "edifact"
    encoding: str
    notes: tuple[str, ...] = ()
    version_code: str | None = None
    envelope_id: str | None = None
    message_count: int = 1

    @property
    def receiver_sor_id(self) -> None:
        """Legacy messages address by EAN/GLN alone (as BundleFacts, for the same callers)."""
        return None

    def to_route_request(
        self,
        sender_syntax: str | None = None,
        at: date | None = None,
        *,
        category_names: Mapping[str, str] | None = None,
    ) -> RouteRequest:
        """The routing question for this message.

        :param sender_syntax: the syntax the sender is taken to use; None: the message's own
        :param category_names: accepted for the same call as a FHIR bundle's; unused, since a
            legacy message carries its subject as written
        """
        del category_names  # a legacy subject is carried as written, not built from a code
        return RouteRequest(
            business_message=self.business_message,
            sender_syntax=sender_syntax or self.syntax,
            receiver_gln=self.receiver_gln,
            receiver_sor_id=None,
            text_length=self.text_length,
            subject=self.subject,
            attachments=self.attachments,
            total_size=self.total_size,
            at=at,
            message_id=self.message_id,
            receiver_identifiers=self.receiver_identifiers,
            category_coded=None,
            sender_gln=self.sender_gln,
        )


def mime_type_for_extension(extension: str) -> str:
    """The MIME type a MedCom object extension code declares (``PDF``, ``tiff``, ...);
    ``application/octet-stream`` for a code outside the list, "" for none."""
    code = extension.strip().lower().lstrip(".")
    if not code:
        return ""
    return EXTENSION_TYPES.get(code, UNKNOWN_EXTENSION_TYPE)


def has_windows_1252_characters(data: bytes) -> bool:
    """Whether ``data`` has bytes that are characters in windows-1252 (curly quotes, dashes,
    the euro sign) but C1 control codes in ISO-8859-1, and no byte windows-1252 leaves
    undefined: text written in windows-1252 and declared ISO-8859-1, as real systems do."""
    found = {byte for byte in _C1_BYTES if byte in data}  # 32 scans in C, nothing collected
    return bool(found) and not found & _UNDEFINED_IN_WINDOWS_1252


def first_usable_gln(identifiers: Iterable[ReceiverIdentifier]) -> str | None:
    """The first identifier that reads as a valid GLN, for logs and compatibility."""
    for identifier in identifiers:
        read = read_identifier(identifier)
        if read.usable and read.value is not None:
            return read.value
    return None


@dataclass(frozen=True, slots=True)
class TypeClue:
    """One thing a message says about its type: where it says it, and what it says."""

    where: str  # e.g. "Letter/StatisticalCode", "UNH message identifier"
    value: str | None
    is_version_code: bool = False  # MedCom's version code (XD9134L), not a type code (XDIS91)


def message_type_of(
    registry: MessageTypeRegistry,
    syntax: str,
    clues: Iterable[TypeClue],
    notes: list[str],
    *,
    context: str = "",
) -> MessageType:
    """The registry's message type of a legacy message, from what the message says.

    :param syntax: ``oioxml`` or ``edifact``: only types of that syntax count
    :param clues: what the message says, most trusted first (OIOXML: ``StatisticalCode`` before
        ``VersionCode``; EDIFACT: the UNH version code before the common access reference)
    :param notes: where a disagreement between the clues is noted
    :param context: what the message is, to start the refusal with (``Emessage/ClinicalEmail``)
    :raises InvalidMessage: ``UNKNOWN_MESSAGE_TYPE``, naming everything that was found
    """
    found: list[str] = []
    candidates: list[tuple[TypeClue, MessageType]] = []
    versions: list[TypeClue] = []
    for clue in clues:
        if not clue.value:
            continue
        if clue.is_version_code:
            versions.append(clue)
            code = registry.code_for_version(clue.value)
        else:
            code = clue.value if clue.value in registry else None
        said = f"{clue.where} {clue.value!r}"
        if code is None:
            found.append(f"{said} (unknown)")
            continue
        message_type = registry.get(code)
        if message_type.syntax != syntax:
            found.append(f"{said} (the {_syntax_name(message_type.syntax)} type {code})")
            continue
        found.append(said if code == clue.value else f"{said} ({code})")
        candidates.append((clue, message_type))
    if not candidates:
        what = "; ".join(found) if found else "no type or version code"
        raise InvalidMessage(
            BundleProblem.UNKNOWN_MESSAGE_TYPE,
            f"{context + ': ' if context else ''}not a known {_syntax_name(syntax)} "
            f"message type: {what}",
        )
    clue, chosen = candidates[0]
    for other_clue, other in candidates[1:]:
        if other.code != chosen.code:
            notes.append(
                f"{clue.where} {clue.value} says {chosen.code} but {other_clue.where} "
                f"{other_clue.value} says {other.code}: routed as {chosen.code}"
            )
            break
    counted = {id(c) for c, _ in candidates}  # a version naming another type is noted above
    for version in versions:
        if id(version) not in counted and version.value not in chosen.version_codes:
            known = ", ".join(chosen.version_codes) or "none"
            notes.append(
                f"{version.where} {version.value} is not a version code of {chosen.code} "
                f"(known: {known})"
            )
    return chosen


def _syntax_name(syntax: str) -> str:
    return {"oioxml": "OIOXML", "edifact": "EDIFACT", "fhir": "FHIR"}.get(syntax, syntax)
