"""The routing facts of a MedCom OIOXML message (``Emessage``), as a gateway holds it.

An OIOXML message is an ``Emessage`` (in one of MedCom's namespace versions, e.g.
``http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/2006/07/01/``) holding an ``Envelope``
and, after it, the letter: ``ClinicalEmail`` (XDIS91), ``PositiveReceipt`` /
``NegativeReceipt`` (XCTL03), ``BinaryLetter`` (XBIN01), ``NotificationOfAdmission`` (XDIS20)
and so on. Everything routing needs is read from the letter, whatever its name:

- the message type from ``Letter/StatisticalCode``, else ``Letter/VersionCode`` (MedCom's
  version code, looked up in the registry), else ``Letter/TypeCode``;
- the receiver from the letter's own ``Receiver/EANIdentifier`` - never the
  ``OriginalReceiver`` of a receipt, which names the receiver of the message receipted;
- the subject from ``AdditionalInformation/Subject``, the text length from the
  ``ClinicalInformation`` text (``Text01``, ``Text02``, ... with ``<Break/>`` counted as one
  line break and ``<Space/>`` as one space);
- attachments: an XDIS91's ``Reference/BIN`` (a binary object sent in an XBIN01 of its own:
  declared type from ``ObjectExtensionCode``, size from ``OriginalObjectSize``), its
  ``Reference/URL`` (a link), and an XBIN01's ``BinaryObject`` (the base64 object itself: size,
  and the type its first bytes show).

Real files carry ISO-8859-1 or windows-1252 and say so in their XML declaration; libxml2 reads
the bytes in the declared character set. A file that declares a single-byte set but whose bytes
are UTF-8 (MedCom's own examples include one) is read as UTF-8, with a note.

Hardening as in :mod:`soredi_sync.parsing.xml_input`: no DTD is loaded, entities are never
resolved, nothing is fetched, and a DOCTYPE is refused by a scan of the prolog before libxml2
sees the document (``huge_tree`` is on, for XBIN01 objects over 10 MB). Elements and depth are
counted against the :class:`~soredi_sync.parsing.refusals.BundleBudget` while the file is read,
and what has been read is dropped from the tree as it goes.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from soredi_sync.domain.identifiers import IdentifierKind, IdentifierSource, ReceiverIdentifier
from soredi_sync.domain.message_types import MessageType, MessageTypeRegistry
from soredi_sync.domain.routing import Attachment, AttachmentContent
from soredi_sync.parsing.attachment_bytes import base64_decoded_size, base64_head, sniff_mime_type
from soredi_sync.parsing.facts import (
    LegacyFacts,
    TypeClue,
    first_usable_gln,
    message_type_of,
    mime_type_for_extension,
)
from soredi_sync.parsing.refusals import (
    DEFAULT_BUDGET,
    BundleBudget,
    BundleProblem,
    InvalidMessage,
)
from soredi_sync.parsing.xml_input import _character_set, hardened_iterparse, xml_root_at

OIOXML_ROOT = "Emessage"
# Every MedCom OIOXML namespace contains this (.../sundcom.dk/medcom.dk/xml/schemas/<date>/).
MEDCOM_NAMESPACE_MARK = "medcom.dk"
ENVELOPE = "Envelope"
_ROOT_NAME = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)", re.ASCII)
_TEXT_ELEMENT = re.compile(r"^Text\d*$")
_LINE_BREAKS = frozenset({"Break", "br"})
# Subtrees that are read whole at their end (their children are needed), so they are dropped
# from the tree only then.
_READ_WHOLE = frozenset({"ClinicalInformation", "Reference", "BinaryObject"})


def parse_oioxml(
    data: bytes, *, message_types: MessageTypeRegistry, budget: BundleBudget | None = None
) -> LegacyFacts:
    """Read the routing facts of an OIOXML ``Emessage``.

    :param data: the message exactly as received
    :param message_types: the registry that names the message type (``config/message-types.tsv``)
    :param budget: elements and depth allowed; default
        :data:`~soredi_sync.parsing.refusals.DEFAULT_BUDGET`
    :raises InvalidMessage: not an Emessage, unreadable (``MALFORMED``, ``ENCODING``,
        ``DOCTYPE``), over the budget, a message type the registry does not know
        (``UNKNOWN_MESSAGE_TYPE``) or a letter without a receiver (``NO_RECEIVER``)
    """
    root_at = xml_root_at(data, what="a MedCom message")
    if root_at >= len(data):
        raise InvalidMessage(BundleProblem.EMPTY, "the body is empty: expected an OIOXML Emessage")
    notes: list[str] = []
    encoding, override = _character_set(data, notes)
    reader = _Reader(message_types, budget or DEFAULT_BUDGET, notes)
    reader.read(data, override)
    return reader.facts(len(data), encoding)


def xml_root_name(data: bytes) -> str | None:
    """The local name of the root element (``Emessage``, ``Bundle``), read from the bytes
    without parsing; None when there is no element.

    :raises InvalidMessage: as :func:`xml_root_at`
    """
    found = _ROOT_NAME.match(data, xml_root_at(data, what="a MedCom message"))
    return found.group(1).decode("ascii") if found else None


# -- reading ----------------------------------------------------------------------------------


def _local(elem: Any) -> str:
    tag = elem.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: Any, name: str) -> str | None:
    for child in elem:
        if _local(child) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def formatted_text(elem: Any) -> str:
    """The text of a MedCom formatted-text element: ``<Break/>`` (and ``<br/>``, which real
    files use) is a line break, ``<Space/>`` a space, formatting elements (``Bold``, ...) their
    text."""
    parts = [elem.text or ""]
    for child in elem:
        name = _local(child)
        if name in _LINE_BREAKS:
            parts.append("\n")
        elif name == "Space":
            parts.append(" ")
        elif name:
            parts.append(formatted_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


class _Reader:
    """One pass of iterparse over an Emessage, keeping only what routing needs."""

    def __init__(
        self, message_types: MessageTypeRegistry, budget: BundleBudget, notes: list[str]
    ) -> None:
        self.message_types = message_types
        self.budget = budget
        self.notes = notes
        self.namespace = ""
        self.letter: str | None = None
        self.letters = 0
        self.envelope_id: str | None = None
        self.letter_fields: dict[str, str] = {}
        self.receivers: list[str] = []
        self.senders: list[str] = []
        self.subject: str | None = None
        self.texts: list[str] = []
        self.attachments: list[Attachment] = []
        self.references = 0
        self.binary_objects = 0
        self.message_type: MessageType | None = None

    def read(self, data: bytes, encoding: str | None) -> None:
        context = hardened_iterparse(data, encoding)  # a DOCTYPE was refused above
        path: list[str] = []
        kept = 0  # open _READ_WHOLE elements: their subtree is dropped when they end
        elements = 0
        max_elements, max_depth = self.budget.max_elements, self.budget.max_depth
        try:
            for event, elem in context:
                if event == "start":
                    elements += 1
                    if elements > max_elements:
                        raise InvalidMessage(
                            BundleProblem.TOO_MANY_ELEMENTS,
                            f"the message has more than {max_elements:,} elements, its element "
                            "budget (max_bundle_elements): refused before reading the rest",
                        )
                    if len(path) >= max_depth:
                        raise InvalidMessage(
                            BundleProblem.TOO_DEEP,
                            f"the message nests deeper than {max_depth} levels, its depth "
                            "budget (max_bundle_depth): refused before reading the rest",
                        )
                    name = _local(elem)
                    if not path:
                        self._root(elem)
                    elif len(path) == 1 and name != ENVELOPE:
                        self.letters += 1
                        if self.letter is None:
                            self.letter = name
                    path.append(name)
                    if name in _READ_WHOLE:
                        kept += 1
                    continue
                name = path[-1]
                if len(path) >= 2 and path[1] == self.letter and self.letters == 1:
                    self._letter_element(path[2:], elem)
                elif path[1:] == [ENVELOPE, "Identifier"]:
                    self.envelope_id = (elem.text or "").strip() or None
                path.pop()
                if name in _READ_WHOLE:
                    kept -= 1
                if kept == 0:  # drop what has been read, so a 100 MB XBIN01 is not kept twice
                    elem.clear(keep_tail=True)
                    parent = elem.getparent()
                    if parent is not None:
                        while elem.getprevious() is not None:
                            del parent[0]
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc) from exc

    def _root(self, elem: Any) -> None:
        tag: str = elem.tag
        namespace, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
        if ":" in local:  # libxml2 reports an undeclared prefix but goes on: lxml's QName would not
            raise InvalidMessage(
                BundleProblem.MALFORMED,
                f"malformed XML: the root {local} has a namespace prefix that is not declared",
            )
        if local != OIOXML_ROOT:
            where = f" in namespace {namespace}" if namespace else ""
            raise InvalidMessage(
                BundleProblem.NOT_A_MESSAGE_FILE,
                f"the XML root is {local}{where}, not an OIOXML {OIOXML_ROOT}",
            )
        self.namespace = namespace
        if MEDCOM_NAMESPACE_MARK not in self.namespace:
            shown = self.namespace or "no namespace"
            self.notes.append(f"the {OIOXML_ROOT} is in {shown}, not a MedCom namespace")

    def _letter_element(self, rel: list[str], elem: Any) -> None:
        """An element of the (first) letter has ended; ``rel`` is its path below the letter."""
        if not rel:
            return
        name = rel[-1]
        parent = rel[-2] if len(rel) >= 2 else None
        if len(rel) == 2:
            text = (elem.text or "").strip()
            if parent == "Letter":
                if text and name not in self.letter_fields:
                    self.letter_fields[name] = text
            elif rel == ["Receiver", "EANIdentifier"]:
                self.receivers.append(text)
            elif rel == ["Sender", "EANIdentifier"]:
                self.senders.append(text)
            elif rel == ["AdditionalInformation", "Subject"] and self.subject is None:
                self.subject = (elem.text or "").strip() or None
        if rel == ["Letter"]:
            self._judge_type()  # early: an unknown type is refused before the rest is read
        if parent == "ClinicalInformation" and _TEXT_ELEMENT.match(name):
            self.texts.append(formatted_text(elem).strip())
        elif name == "Reference" and len(rel) == 1:
            self._reference(elem)
        elif name == "BinaryObject":
            self._binary_object(elem)

    def _judge_type(self) -> None:
        fields = self.letter_fields
        self.message_type = message_type_of(
            self.message_types,
            "oioxml",
            (
                TypeClue("Letter/StatisticalCode", fields.get("StatisticalCode")),
                TypeClue("Letter/VersionCode", fields.get("VersionCode"), is_version_code=True),
                TypeClue("Letter/TypeCode", fields.get("TypeCode")),
            ),
            self.notes,
            context=f"{OIOXML_ROOT}/{self.letter}",
        )

    # -- attachments ---------------------------------------------------------------------------

    def _reference(self, elem: Any) -> None:
        self.references += 1
        number = self.references
        description = _child_text(elem, "RefDescription")
        for child in elem:
            kind = _local(child)
            if kind == "BIN":
                self.attachments.append(self._referenced_object(child, description, number))
            elif kind == "URL":
                url = formatted_text(child).strip()
                self.attachments.append(
                    Attachment(
                        mime_type="",
                        size=0,
                        title=description or url or None,
                        content=AttachmentContent.LINK,
                    )
                )
                self.notes.append(f"reference {number} is a link ({url!r}), not a binary object")
            elif kind == "SUP":
                self.notes.append(
                    f"reference {number} ({description or 'no description'}) points at "
                    "supplementary information sent otherwise: no attachment"
                )

    def _referenced_object(self, elem: Any, description: str | None, number: int) -> Attachment:
        label = f"referenced object {number}"
        extension = _child_text(elem, "ObjectExtensionCode") or ""
        mime_type = mime_type_for_extension(extension)
        if not extension:
            self.notes.append(f"the {label} has no ObjectExtensionCode")
        size = self._declared_size(elem, label)
        if size is None:
            self.notes.append(f"the {label} has no OriginalObjectSize: size taken as 0")
        return Attachment(
            mime_type=mime_type,
            size=size or 0,
            title=_child_text(elem, "ObjectIdentifier")
            or _child_text(elem, "ObjectCode")
            or description,
            content=AttachmentContent.SEPARATE,
        )

    def _binary_object(self, elem: Any) -> None:
        self.binary_objects += 1
        label = f"binary object {self.binary_objects}"
        extension = _child_text(elem, "ObjectExtensionCode") or ""
        mime_type = mime_type_for_extension(extension)
        if not extension:
            self.notes.append(f"the {label} has no ObjectExtensionCode")
        declared = self._declared_size(elem, label)
        encoded = None
        for child in elem:
            if _local(child) == "Object_Base64Encoded":
                encoded = child.text or ""
                break
        if encoded is None or not encoded.strip():
            self.notes.append(f"the {label} has no Object_Base64Encoded data")
            self.attachments.append(
                Attachment(
                    mime_type,
                    declared or 0,
                    title=self._object_title(elem),
                    content=AttachmentContent.NONE,
                )
            )
            return
        decoded = base64_decoded_size(encoded)
        if declared is not None and declared != decoded:
            self.notes.append(
                f"the {label} declares OriginalObjectSize {declared} but its data decodes to "
                f"{decoded} bytes: used the declared size"
            )
        self.attachments.append(
            Attachment(
                mime_type,
                declared if declared is not None else decoded,
                title=self._object_title(elem),
                content=AttachmentContent.DATA,
                sniffed_type=sniff_mime_type(base64_head(encoded)),
            )
        )

    @staticmethod
    def _object_title(elem: Any) -> str | None:
        return _child_text(elem, "ObjectIdentifier") or _child_text(elem, "ObjectCode")

    def _declared_size(self, elem: Any, label: str) -> int | None:
        value = _child_text(elem, "OriginalObjectSize")
        if value is None:
            return None
        if value.isascii() and value.isdigit():
            return int(value)
        self.notes.append(f"the {label} has an invalid OriginalObjectSize {value!r}: not used")
        return None

    # -- the facts -----------------------------------------------------------------------------

    def facts(self, total_size: int, encoding: str) -> LegacyFacts:
        if self.letter is None:
            raise InvalidMessage(
                BundleProblem.NOT_A_MESSAGE_FILE,
                f"the {OIOXML_ROOT} has no letter after its {ENVELOPE}: nothing to route",
            )
        if self.message_type is None:  # no Letter element: judged on what there is
            self._judge_type()
        assert self.message_type is not None
        where = f"{OIOXML_ROOT}/{self.letter}"
        if self.letters > 1:
            self.notes.append(f"the {OIOXML_ROOT} holds {self.letters} letters: routed the first")
        receivers = [value for value in self.receivers if value]
        if not receivers:
            raise InvalidMessage(
                BundleProblem.NO_RECEIVER,
                f"{where} has no Receiver/EANIdentifier: no receiver to route to",
            )
        if len(set(receivers)) > 1:
            self.notes.append(
                f"{where} names {len(set(receivers))} receivers: {', '.join(receivers)}"
            )
        identifiers = tuple(
            ReceiverIdentifier(IdentifierSource.OIOXML, None, value, IdentifierKind.GLN)
            for value in receivers
        )
        senders = tuple(
            ReceiverIdentifier(IdentifierSource.OIOXML, None, value, IdentifierKind.GLN)
            for value in self.senders
            if value
        )
        if not senders:
            self.notes.append(f"{where} has no Sender/EANIdentifier")
        texts = [text for text in self.texts if text]
        return LegacyFacts(
            syntax="oioxml",
            message_type=self.message_type.code,
            business_message=self.message_type.business_message,
            message_id=self.letter_fields.get("Identifier") or self.envelope_id,
            receiver_identifiers=identifiers,
            receiver_gln=first_usable_gln(identifiers),
            sender_gln=first_usable_gln(senders),
            subject=self.subject,
            text_length=len("\n".join(texts)) if self.texts else None,
            attachments=tuple(self.attachments),
            total_size=total_size,
            wire_format="xml",
            encoding=encoding,
            notes=tuple(self.notes),
            version_code=self.letter_fields.get("VersionCode"),
            envelope_id=self.envelope_id,
            message_count=max(self.letters, 1),
        )


def _syntax_error(exc: etree.XMLSyntaxError) -> InvalidMessage:
    """libxml2's message as a refusal: an encoding fault as ``ENCODING``, the rest as
    ``MALFORMED``. iterparse can report a bare "no element found" where the parser's last
    error says more."""
    line: Any = exc.lineno or "?"
    message = exc.msg
    last = getattr(exc.error_log, "last_error", None)
    if message.startswith("no element found") and last is not None:
        line, message = last.line, last.message
    lowered = message.lower()
    if "encoding" in lowered or "not proper utf-8" in lowered:
        return InvalidMessage(BundleProblem.ENCODING, f"the XML (line {line}): {message}")
    return InvalidMessage(BundleProblem.MALFORMED, f"malformed XML (line {line}): {message}")
