"""Streaming reader for the SOR XML extract (``Sor.xml``), schema v1.0.0 and v2.0.0.

The national file holds some 60,000 units, so it is read with ``lxml.etree.iterparse`` and
memory stays flat: each unit record is read when its element ends and then cleared, and each
``*Entity`` wrapper is cleared (with its already-read earlier siblings deleted) when it ends.
Nesting (which unit is whose parent) comes from a stack of the open ``*Entity`` elements, so
nothing needs to stay in the tree to answer it.

Hardened against hostile input: entities are never resolved, no DTD is loaded, nothing is
fetched from the network, ``huge_tree`` limits stay on, and any DOCTYPE at all is refused.
Elements are matched by local name and any ``urn:oio:sundhedsstyrelsen:organisation:*``
namespace is accepted (see ``docs/sources.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from lxml import etree

from soredi_sync.domain.model import Gln, GlnMode, Unit, UnitKind
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.problems import Problems
from soredi_sync.parsing.values import XML_BOOLEANS, parse_bool, parse_date, parse_datetime

logger = logging.getLogger(__name__)

NAMESPACE_PREFIX = "urn:oio:sundhedsstyrelsen:organisation:"
ROOT = "SorTree"

# Entity wrapper -> the unit record it must start with.
_ENTITY_RECORD = {
    "InstitutionOwnerEntity": "InstitutionOwner",
    "HealthInstitutionEntity": "HealthInstitution",
    "OrganizationalUnitEntity": "OrganizationalUnit",
}
# Entity wrapper -> the elements it may sit in.
_ENTITY_PARENTS = {
    "InstitutionOwnerEntity": frozenset({ROOT}),
    "HealthInstitutionEntity": frozenset({"InstitutionOwnerEntity"}),
    "OrganizationalUnitEntity": frozenset({"HealthInstitutionEntity", "OrganizationalUnitEntity"}),
}
_RECORD_KIND = {
    "InstitutionOwner": UnitKind.INSTITUTION_OWNER,
    "HealthInstitution": UnitKind.HEALTH_INSTITUTION,
    "OrganizationalUnit": UnitKind.ORGANISATIONAL_UNIT,
}
_TYPE_ELEMENT = {
    "InstitutionOwner": "OwnerType",
    "HealthInstitution": "InstitutionType",
    "OrganizationalUnit": "UnitType",
}
# Record child -> slot in the reader's text list (see _SorXmlReader._read_record).
_RECORD_TEXT_SLOTS = {
    record: {
        "SorIdentifier": 0,
        "EntityName": 1,
        type_element: 2,
        "ShakIdentifier": 3,
        "ProviderIdentifier": 4,
        "PharmacyIdentifier": 5,
    }
    for record, type_element in _TYPE_ELEMENT.items()
}
_NO_DATES: tuple[None, None] = (None, None)
# EanLocationCodeEntity children -> slot of the Gln text fields (system_supplier, system_type,
# vans, region_code, edi_administrator); v2 spellings [assumed] beside the v1 ones.
_GLN_TEXT_SLOTS = {
    "SystemSupplier": 0,
    "SystemSupplierIdentifier": 0,
    "SystemType": 1,
    "SystemTypeIdentifier": 1,
    "CommunicationSupplier": 2,
    "CommunicationSupplierIdentifier": 2,
    "RegionCode": 3,
    "EdiAdministrator": 4,
}
# Only these reach Python; lxml skips every other element in C.
_EVENT_TAGS = [
    "{*}" + name for name in (ROOT, "CreatedAtTime", "SnapshotDate", *_ENTITY_RECORD, *_RECORD_KIND)
]


@dataclass(frozen=True, slots=True)
class SorXml:
    """What one ``Sor.xml`` holds: units in document order and the GLNs they carry."""

    created_at: datetime | None
    snapshot_date: date | None
    units: list[Unit]
    glns: list[Gln]
    namespace: str = ""

    @property
    def schema_version(self) -> str:
        """The version part of the namespace (``1.0.0``, ``2.0.0``)."""
        return self.namespace.removeprefix(NAMESPACE_PREFIX)


class _Head:
    """The stream lxml reads, keeping its first bytes (to tell why a broken prolog failed)."""

    __slots__ = ("_source", "bytes")
    KEEP = 64 * 1024

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.bytes = b""

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if len(self.bytes) < self.KEEP:
            self.bytes += data[: self.KEEP - len(self.bytes)]
        return data


class _Frame:
    """One open ``*Entity`` element on the nesting stack."""

    __slots__ = ("entity", "line", "sor_id", "emit")

    def __init__(self, entity: str, line: int | None, emit: bool) -> None:
        self.entity = entity
        self.line = line
        self.sor_id: str | None = None  # set when the unit record has been read
        # False below a unit that could not be read: its descendants are still checked (so every
        # problem is reported) but not emitted, which would only add "unknown parent" noise.
        self.emit = emit


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def _text(elem: Any) -> str | None:
    text = elem.text
    if text is None:
        return None
    return text.strip() or None


def parse_sor_xml(
    source: IO[bytes], problems: Problems | None = None, *, label: str = "Sor.xml"
) -> SorXml:
    """Read a SOR XML extract from a binary stream.

    :param source: the XML bytes (a BOM and any declared encoding are handled by libxml2)
    :param problems: where to add record-level problems (missing SorIdentifier, a bad boolean or
        date, a misplaced element); when None, they are raised together at the end
    :param label: the file name used in messages
    :raises InvalidSourceData: the XML is not well-formed, has a DOCTYPE, has the wrong root or
        namespace, or (without ``problems``) has invalid records
    """
    collected = problems if problems is not None else Problems()
    result = _SorXmlReader(collected, label).read(source)
    if problems is None:
        collected.raise_if_any(f"{label} has invalid records")
    return result


class _SorXmlReader:
    def __init__(self, problems: Problems, label: str) -> None:
        self._problems = problems
        self._label = label
        self._units: list[Unit] = []
        self._glns: list[Gln] = []
        self._created_at: datetime | None = None
        self._snapshot_date: date | None = None
        self._namespace = ""
        self._names: dict[Any, str] = {}
        self._dates: dict[str, date] = {}
        # Repeated texts (unit types, postal codes, names; a GLN's supplier, system, VANS,
        # region and administrator codes: a few dozen distinct values each) as one string
        # object each: about 20 MB less for a national registry, held through the whole sync.
        self._shared: dict[Any, Any] = {None: None}  # str -> the same str, None -> None

    def read(self, source: IO[bytes]) -> SorXml:
        head = _Head(source)
        context = etree.iterparse(
            head,
            events=("start", "end"),
            tag=_EVENT_TAGS,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            # Indentation between elements is never read (every text read is stripped): libxml2
            # then skips it instead of building a text node for each (6% fewer instructions).
            remove_blank_text=True,
        )
        stack: list[_Frame] = []
        root_seen = False
        try:
            names = self._names
            for event, elem in context:
                local = names.get(elem.tag) or self._name(elem.tag)
                if not root_seen:
                    self._check_root(elem, local, event)
                    root_seen = True
                    continue
                if event == "start":
                    if local in _ENTITY_RECORD:
                        stack.append(self._open_entity(elem, local, stack))
                elif local in _RECORD_KIND:
                    self._read_record(elem, local, stack)
                    elem.clear()
                elif local in _ENTITY_RECORD:
                    self._close_entity(stack.pop())
                    elem.clear()
                    parent = elem.getparent()
                    while elem.getprevious() is not None:
                        del parent[0]
                elif not stack:
                    self._read_header(elem, local)
        except etree.XMLSyntaxError as exc:
            line = exc.lineno if exc.lineno else "?"
            if not root_seen and b"<!DOCTYPE" in head.bytes:
                # libxml2 (2.13 and later) may stop in the DTD itself, an entity bomb for one,
                # before the root element is seen and the DOCTYPE refused below.
                raise InvalidSourceData(
                    f"{self._label} has a DOCTYPE declaration, which is refused (entity "
                    f"expansion and external fetches are not allowed); the parser stopped at "
                    f"line {line}: {exc.msg}"
                ) from exc
            raise InvalidSourceData(
                f"{self._label} is not well-formed XML (line {line}): {exc.msg}"
            ) from exc
        if not root_seen:
            root = getattr(context, "root", None)
            if root is None:
                raise InvalidSourceData(f"{self._label} has no root element")
            self._check_root(root, _local(root.tag), "end")
        if self._snapshot_date is None:
            logger.warning(
                "%s has no SnapshotDate: closed SOR-EDI rows cannot be dropped", self._label
            )
        logger.info(
            "Read %s (namespace %s, snapshot %s): %d units, %d GLNs",
            self._label,
            self._namespace,
            self._snapshot_date,
            len(self._units),
            len(self._glns),
        )
        return SorXml(
            created_at=self._created_at,
            snapshot_date=self._snapshot_date,
            units=self._units,
            glns=self._glns,
            namespace=self._namespace,
        )

    # -- document level ------------------------------------------------------------------------

    def _check_root(self, elem: Any, local: str, event: str) -> None:
        docinfo = elem.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            # A SOR extract never has one; a DOCTYPE is how XXE and entity bombs get in.
            raise InvalidSourceData(
                f"{self._label} has a DOCTYPE declaration, which is refused "
                f"(entity expansion and external fetches are not allowed): {docinfo.doctype}"
            )
        root = elem.getroottree().getroot()
        if event != "start" or local != ROOT or elem is not root:
            raise InvalidSourceData(
                f"{self._label} has root element {root.tag!r}, expected {ROOT!r} "
                f"in namespace {NAMESPACE_PREFIX}*"
            )
        namespace = etree.QName(elem).namespace or ""
        if not namespace.startswith(NAMESPACE_PREFIX):
            raise InvalidSourceData(
                f"{self._label} root {ROOT!r} is in namespace {namespace or '(none)'!r}, "
                f"expected {NAMESPACE_PREFIX}*"
            )
        self._namespace = namespace

    def _read_header(self, elem: Any, local: str) -> None:
        if elem.getparent() is None or _local(elem.getparent().tag) != ROOT:
            return
        text = _text(elem)
        if text is None:
            self._problem(elem, f"{local} is empty")
            return
        try:
            if local == "SnapshotDate":
                self._snapshot_date = parse_date(text)
            elif local == "CreatedAtTime":
                self._created_at = parse_datetime(text)
        except ValueError as exc:
            self._problem(elem, f"{local}: {exc}")

    # -- nesting -------------------------------------------------------------------------------

    def _open_entity(self, elem: Any, local: str, stack: list[_Frame]) -> _Frame:
        parent = elem.getparent()
        parent_name = _local(parent.tag) if parent is not None else "(none)"
        allowed = _ENTITY_PARENTS[local]
        emit = not stack or (stack[-1].emit and stack[-1].sor_id is not None)
        if parent_name not in allowed:
            where = f" (in unit {stack[-1].sor_id})" if stack and stack[-1].sor_id else ""
            self._problem(
                elem,
                f"{local} inside {parent_name}{where}; expected it inside "
                f"{' or '.join(sorted(allowed))}",
            )
            emit = False
        return _Frame(local, elem.sourceline, emit)

    def _close_entity(self, frame: _Frame) -> None:
        if frame.sor_id is None and frame.emit:
            self._problems.add(
                f"{self._label} line {frame.line}: {frame.entity} has no "
                f"{_ENTITY_RECORD[frame.entity]} record"
            )

    # -- unit records --------------------------------------------------------------------------
    # The hot path: 60,000 records in a national file. Written flat, with local-name and date
    # caches, because per-child function calls here cost more than lxml's own parsing.

    def _name(self, tag: Any) -> str:
        """The local name of an element tag, cached per distinct ``{namespace}name``."""
        name = self._names.get(tag)
        if name is None:
            name = tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""
            self._names[tag] = name
        return name

    def _read_record(self, elem: Any, local: str, stack: list[_Frame]) -> None:
        frame = stack[-1] if stack else None
        if frame is None or _ENTITY_RECORD[frame.entity] != local:
            self._problem(elem, f"{local} outside a {local}Entity")
            return
        if frame.sor_id is not None:
            self._problem(elem, f"second {local} in the {frame.entity} of unit {frame.sor_id}")
            return

        names = self._names
        text_slots = _RECORD_TEXT_SLOTS[local]
        # sor_id, name, type_code, shak, provider_number, pharmacy_number
        texts: list[str | None] = [None, None, None, None, None, None]
        postal = status = own_gln = optional_gln = None
        for child in elem:
            tag = child.tag
            name = names.get(tag)
            if name is None:
                name = self._name(tag)
            slot = text_slots.get(name)
            if slot is not None:
                text = child.text
                texts[slot] = (text.strip() or None) if text else None
            elif name == "SorStatus":
                status = child
            elif name == "OptionalEanLocationCode":
                optional_gln = child
            elif name == "EanLocationCodeEntity":
                own_gln = child
            elif name == "PostalAddressInformation" and postal is None:
                for code in child.iter("{*}PostCodeIdentifier"):
                    text = code.text
                    postal = (text.strip() or None) if text else None
                    break

        sor_id = texts[0]
        if sor_id is None:
            self._problem(elem, f"{local} has no SorIdentifier")
            frame.emit = False
            return
        if not (sor_id.isascii() and sor_id.isdigit()):
            self._problem(elem, f"{local} has SorIdentifier {sor_id!r}, which is not a number")
            frame.emit = False
            return
        frame.sor_id = sor_id
        what = f"{local} {sor_id}"
        if texts[1] is None:
            self._problem(elem, f"{what} has no EntityName")

        gln_mode, gln_elem = self._gln_mode(what, own_gln, optional_gln)
        gln_record = self._read_gln(gln_elem, sor_id) if gln_elem is not None else None
        if gln_mode is GlnMode.OWN and gln_record is None:
            frame.emit = False
        from_date, to_date = self._status_dates(status, what) if status is not None else _NO_DATES
        if not frame.emit:
            return
        share = self._shared.setdefault
        name = texts[1] or ""
        self._units.append(
            Unit(
                sor_id,
                share(name, name),
                _RECORD_KIND[local],
                stack[-2].sor_id if len(stack) > 1 else None,
                stack[0].sor_id or sor_id,
                share(texts[2], texts[2]),
                gln_mode,
                gln_record.gln if gln_record is not None else None,
                from_date,
                to_date,
                texts[3],
                texts[4],
                texts[5],
                share(postal, postal),
            )
        )
        if gln_record is not None:
            self._glns.append(gln_record)

    def _gln_mode(self, what: str, own: Any, optional: Any) -> tuple[GlnMode, Any]:
        """OWN with the EanLocationCodeEntity, INHERITED, or NONE (also when nothing is said)."""
        inherited: bool | None = None
        gln_elem = own
        if optional is not None:
            for child in optional:
                tag = child.tag
                child_name = self._names.get(tag) or self._name(tag)
                if child_name == "EntityInheritedIndicator":
                    inherited = self._bool(child, what, child_name)
                elif child_name == "EanLocationCodeEntity":
                    if gln_elem is not None:
                        self._problem(child, f"{what} has more than one EanLocationCodeEntity")
                    gln_elem = child
        if gln_elem is not None:
            return GlnMode.OWN, gln_elem
        if inherited:
            return GlnMode.INHERITED, None
        return GlnMode.NONE, None

    def _read_gln(self, elem: Any, owner_sor_id: str) -> Gln | None:
        names = self._names
        # system_supplier, system_type, vans, region_code, edi_administrator
        texts: list[str | None] = [None, None, None, None, None]
        gln: str | None = None
        non_active = only_internal = False
        status = None
        for child in elem:
            tag = child.tag
            child_name = names.get(tag) or self._name(tag)
            slot = _GLN_TEXT_SLOTS.get(child_name)
            if slot is not None:
                text = child.text
                texts[slot] = (text.strip() or None) if text else None
            elif child_name == "EanLocationCode":
                text = child.text
                gln = (text.strip() or None) if text else None
            elif child_name == "NonActiveIndicator":
                non_active = self._flag(child, owner_sor_id, child_name)
            elif child_name == "OnlyInternalIndicator":
                only_internal = self._flag(child, owner_sor_id, child_name)
            elif child_name == "SorStatus":
                status = child
        if gln is None:
            self._problem(
                elem, f"EanLocationCodeEntity of unit {owner_sor_id} has no EanLocationCode"
            )
            return None
        if status is not None:
            from_date, to_date = self._status_dates(status, f"GLN {gln} of unit {owner_sor_id}")
        else:
            from_date = to_date = None
        share = self._shared.setdefault
        return Gln(
            gln,
            not non_active,
            only_internal,
            share(texts[0], texts[0]),
            share(texts[1], texts[1]),
            share(texts[2], texts[2]),
            share(texts[3], texts[3]),
            share(texts[4], texts[4]),
            owner_sor_id,
            from_date,
            to_date,
        )

    def _status_dates(self, status: Any, what: str) -> tuple[date | None, date | None]:
        from_date = to_date = None
        dates = self._dates
        names = self._names
        for child in status:
            tag = child.tag
            child_name = names.get(tag) or self._name(tag)
            if child_name != "FromDate" and child_name != "ToDate":
                continue
            text = child.text
            text = text.strip() if text else ""
            if not text:
                continue
            day = dates.get(text)
            if day is None:
                try:
                    day = dates[text] = parse_date(text)
                except ValueError as exc:
                    self._problem(child, f"{what}: {child_name} {exc}")
                    continue
            if child_name == "FromDate":
                from_date = day
            else:
                to_date = day
        return from_date, to_date

    # -- values --------------------------------------------------------------------------------

    def _bool(self, elem: Any, what: str, element: str) -> bool | None:
        text = _text(elem)
        if text is None:
            self._problem(elem, f"{what}: {element} is empty")
            return None
        try:
            return parse_bool(text, XML_BOOLEANS)
        except ValueError as exc:
            self._problem(elem, f"{what}: {element} {exc}")
            return None

    def _flag(self, elem: Any, owner_sor_id: str, element: str) -> bool:
        """A GLN indicator; false when empty or unreadable (which is reported)."""
        text = elem.text
        value = XML_BOOLEANS.get(text.strip().lower()) if text else None
        if value is None:
            self._bool(elem, f"EanLocationCodeEntity of unit {owner_sor_id}", element)
            return False
        return value

    def _problem(self, elem: Any, message: str) -> None:
        self._problems.add(f"{self._label} line {elem.sourceline}: {message}")
