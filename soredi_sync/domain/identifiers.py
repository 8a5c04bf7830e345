"""How a message names its receiver: identifier systems, read as rules (DOMAIN.md §3.1).

A receiver Organization carries identifiers as (system, value) pairs, and the MessageHeader's
``destination.endpoint`` carries the SOR reference ``https://sor2.sum.dsdn.dk/#id=<SOR-ID>``.
Real messages spell systems in more ways than the profiles allow: older MedCom profiles put the
GLN under GS1's OID ``urn:oid:1.3.88``, and certified vendor systems have sent the SOR OID
without its colon. :func:`classify_system` says what each system is and how it was spelt, so
the resolver can use it *and* say so; nothing is dropped silently.

Pure: no I/O, no registry look-ups (the resolver does those).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

GLN_SYSTEMS = ("https://www.gs1.org/gln", "http://www.gs1.org/gln")
LEGACY_GLN_SYSTEM = "urn:oid:1.3.88"  # GS1's OID, used by older MedCom profiles
SOR_ID_SYSTEM = "urn:oid:1.2.208.176.1.1"

_GLN_OID = "1.3.88"
_SOR_OID = "1.2.208.176.1.1"
# "urn:oid:1.2.3", "urn:oid1.2.3", "oid:1.2.3", "urn:oid.1.2.3", "1.2.3", "urn:oid: 1.2.3",
# "urn:oid::1.2.3" ... Digits are ASCII only: "\d" would also take other scripts' digits.
_OID = re.compile(r"^(?:urn[\s:.]*)?(?:oid[\s:.]*)?\.?((?:[0-9]+\.)+[0-9]+)\.?$")
_GS1_URL = re.compile(r"^(?:https?://)?(?:www\.)?gs1\.org/gln/?$")
_ENDPOINT_SOR_ID = re.compile(r"[#?&;/]id=([0-9]{1,20})(?:$|[&;#/])")
GLN_VALUE = re.compile(r"^[0-9]{13}\Z")
SOR_ID_VALUE = re.compile(r"^[0-9]{1,20}\Z")


class IdentifierKind(enum.StrEnum):
    GLN = "gln"
    SOR_ID = "sor-id"
    UNKNOWN = "unknown"


class SystemSpelling(enum.StrEnum):
    """How the system was written: as the current profiles say, an older official form, a
    recognisable misspelling, or something else altogether."""

    OFFICIAL = "official"
    LEGACY = "legacy"
    MISSPELT = "misspelt"
    UNKNOWN = "unknown"


class IdentifierSource(enum.StrEnum):
    """Where an identifier was read."""

    REQUEST = "request"  # given by the caller of the API or CLI
    ORGANIZATION = "organization"  # the receiver Organization of a FHIR message
    ENDPOINT = "endpoint"  # MessageHeader.destination.endpoint (the SOR reference)
    OIOXML = "oioxml"  # Receiver/EANIdentifier of an OIOXML Emessage
    EDIFACT = "edifact"  # the UNB recipient of an EDIFACT interchange


@dataclass(frozen=True, slots=True)
class ReceiverIdentifier:
    """One identifier of the receiver exactly as the message wrote it.

    ``system`` is None for an endpoint URL (``value`` is then the URL) and for identifiers that
    carry no system (OIOXML ``EANIdentifier``, the EDIFACT UNB recipient with qualifier 14),
    where ``kind_hint`` says what the position means.
    """

    source: IdentifierSource
    system: str | None
    value: str
    kind_hint: IdentifierKind | None = None


@dataclass(frozen=True, slots=True)
class ReadIdentifier:
    """What an identifier turned out to be: kind, spelling and the value to look up."""

    identifier: ReceiverIdentifier
    kind: IdentifierKind
    spelling: SystemSpelling
    value: str | None  # None when the value is not valid for its kind (or the kind is unknown)

    @property
    def usable(self) -> bool:
        return self.kind is not IdentifierKind.UNKNOWN and self.value is not None


def classify_system(system: str | None) -> tuple[IdentifierKind, SystemSpelling]:
    """What an identifier ``system`` names and how it was spelt.

    >>> classify_system("urn:oid1.2.208.176.1.1")
    (<IdentifierKind.SOR_ID: 'sor-id'>, <SystemSpelling.MISSPELT: 'misspelt'>)
    """
    if system is None:
        return IdentifierKind.UNKNOWN, SystemSpelling.UNKNOWN
    if system in GLN_SYSTEMS:
        return IdentifierKind.GLN, SystemSpelling.OFFICIAL
    if system == SOR_ID_SYSTEM:
        return IdentifierKind.SOR_ID, SystemSpelling.OFFICIAL
    if system == LEGACY_GLN_SYSTEM:
        return IdentifierKind.GLN, SystemSpelling.LEGACY
    folded = system.strip().lower()
    oid = _OID.match(folded)
    if oid is not None:
        digits = oid.group(1)
        if digits == _SOR_OID:
            return IdentifierKind.SOR_ID, SystemSpelling.MISSPELT
        if digits == _GLN_OID:
            return IdentifierKind.GLN, SystemSpelling.MISSPELT
    if _GS1_URL.match(folded):
        return IdentifierKind.GLN, SystemSpelling.MISSPELT
    return IdentifierKind.UNKNOWN, SystemSpelling.UNKNOWN


def sor_id_from_endpoint(url: str) -> str | None:
    """The SOR-ID of a SOR reference such as ``https://sor2.sum.dsdn.dk/#id=265161000016000``."""
    found = _ENDPOINT_SOR_ID.search(url.strip())
    return found.group(1) if found else None


def read_identifier(identifier: ReceiverIdentifier) -> ReadIdentifier:
    """Classify one identifier and check its value for its kind."""
    if identifier.source is IdentifierSource.ENDPOINT:
        sor_id = sor_id_from_endpoint(identifier.value)
        if sor_id is None:
            return ReadIdentifier(identifier, IdentifierKind.UNKNOWN, SystemSpelling.UNKNOWN, None)
        return ReadIdentifier(identifier, IdentifierKind.SOR_ID, SystemSpelling.OFFICIAL, sor_id)
    if identifier.system is None and identifier.kind_hint is not None:
        kind, spelling = identifier.kind_hint, SystemSpelling.OFFICIAL
    else:
        kind, spelling = classify_system(identifier.system)
    pattern = _VALUE.get(kind)
    if pattern is None:
        return ReadIdentifier(identifier, kind, spelling, None)
    value = identifier.value.strip()
    return ReadIdentifier(identifier, kind, spelling, value if pattern.match(value) else None)


_VALUE = {IdentifierKind.GLN: GLN_VALUE, IdentifierKind.SOR_ID: SOR_ID_VALUE}
