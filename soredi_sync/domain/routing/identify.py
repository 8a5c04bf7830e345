"""Receiver identification: read every receiver identifier, resolve each on its own, choose the
one that addresses the message and compare the others with it (docs/routing.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from soredi_sync.domain.gln import has_valid_check_digit
from soredi_sync.domain.identifiers import (
    GLN_SYSTEMS,
    SOR_ID_SYSTEM,
    IdentifierKind,
    IdentifierSource,
    ReadIdentifier,
    ReceiverIdentifier,
    SystemSpelling,
    read_identifier,
)
from soredi_sync.domain.model import Unit, effective_gln
from soredi_sync.domain.routing.index import RoutingIndex
from soredi_sync.domain.routing.model import (
    Address,
    Reason,
    RouteRequest,
    WarningCode,
    _Trace,
)
from soredi_sync.domain.routing.policy import RoutingPolicy

# Which usable identifier addresses the message, best first: a VANS delivers by GLN, so the
# first GLN; failing that, the receiver's own SOR-ID (Organization, request); the SOR reference
# of MessageHeader.destination.endpoint last. See docs/routing.md.
_GLN_RANK = 0
_SOR_ID_RANK = 1
_ENDPOINT_RANK = 2

_NO_ADDRESS = Address(None, None, None)


@dataclass(slots=True)
class _Named:
    """What one usable receiver identifier names in the snapshot, resolved on its own."""

    read: ReadIdentifier
    rank: int
    known: bool  # the GLN or SOR-ID is in the snapshot
    unit: Unit | None  # the unit named (SOR-ID), or the first unit carrying the GLN
    # Where the identifier leads: a GLN and the unit to address. None: a SOR-ID with no GLN up
    # its tree (or not in the snapshot).
    address: Address | None
    through: str | None = None  # a SOR-ID addressed through this ancestor (no GLN of its own)

    @property
    def gln(self) -> str | None:
        return self.address.gln if self.address is not None else None

    def label(self) -> str:
        kind = "GLN" if self.read.kind is IdentifierKind.GLN else "SOR-ID"
        return f"{self.read.identifier.source.value} {kind} {self.read.value}"

    def describe(self) -> str:
        """The identifier and the unit it names: source, SOR-ID, name and GLN."""
        if not self.known:
            return f"{self.label()} (not in the snapshot)"
        unit = self.unit
        if self.read.kind is IdentifierKind.GLN:
            if unit is None:
                return f"{self.label()} (no unit in the snapshot carries it)"
            return f"{self.label()} (SOR-ID {unit.sor_id} {unit.name!r})"
        assert unit is not None
        return f"{self.label()} ({unit.name!r}, GLN {self.gln or 'none up its tree'})"


class _Identification:
    """The receiver identification steps of :class:`~soredi_sync.domain.routing.Resolver`."""

    index: RoutingIndex
    policy: RoutingPolicy

    def _address(
        self, request: RouteRequest, day: date, trace: _Trace
    ) -> tuple[Address, Reason | None]:
        """Read every receiver identifier, resolve each on its own, choose the one that
        addresses the message and compare the others with it (docs/routing.md)."""
        reads = (
            [read_identifier(i) for i in request.receiver_identifiers]
            if request.receiver_identifiers
            else _request_reads(request)
        )
        named: list[_Named] = []
        unknown: list[ReadIdentifier] = []
        for read in reads:
            if self._read(read, trace):
                named.append(self._name(read))
            elif read.kind is IdentifierKind.UNKNOWN:
                unknown.append(read)
        if not named:
            for read in unknown:
                ident = read.identifier
                if ident.source is IdentifierSource.ENDPOINT:
                    text = f"endpoint {ident.value!r} holds no SOR-ID"
                else:
                    system = repr(ident.system) if ident.system is not None else "no system"
                    text = (
                        f"{ident.source.value} identifier {ident.value!r} under {system} is not "
                        "a GLN or SOR-ID"
                    )
                trace.warn(WarningCode.IDENTIFIER_SYSTEM_UNKNOWN, text)
            trace.add("receiver", "unknown", "no usable GLN or SOR-ID for the receiver")
            return _NO_ADDRESS, Reason.UNKNOWN_RECEIVER

        # The unit to address: the chosen identifier's, or, when a GLN is chosen, the first
        # SOR-ID that agrees with it (the unit the sender meant, on that GLN).
        chosen = receiver = named[0]
        mismatch = False
        if len(named) > 1:
            ranked = sorted(named, key=lambda n: n.rank)
            chosen = receiver = ranked[0]
            trace.add(
                "addressed-by",
                chosen.read.kind.value,
                f"{chosen.label()}: the first GLN, else the receiver's SOR-ID, else the "
                "endpoint's (the VANS delivers by GLN)",
            )
            for other in ranked[1:]:
                if self._agree(chosen, other, receiver, trace):
                    if (
                        receiver is chosen
                        and chosen.read.kind is IdentifierKind.GLN
                        and other.read.kind is IdentifierKind.SOR_ID
                    ):
                        receiver = other
                    continue
                mismatch = True
                trace.warn(
                    WarningCode.ADDRESS_MISMATCH,
                    f"{other.describe()} names another receiver than {chosen.describe()}, which "
                    "addresses the message (the first GLN, else the receiver's SOR-ID, else the "
                    "endpoint's: the VANS delivers by GLN)",
                )

        if not chosen.known:
            what = "GLN" if chosen.read.kind is IdentifierKind.GLN else "SOR-ID"
            detail = f"{what} {chosen.read.value} is not in the snapshot"
            if what == "GLN" and not has_valid_check_digit(chosen.read.value or ""):
                detail += " (and its GS1 check digit is wrong)"
            trace.add("receiver", "unknown", detail)
            if chosen.read.kind is IdentifierKind.GLN:
                return Address(None, chosen.read.value, None), Reason.UNKNOWN_RECEIVER
            return Address(chosen.read.value, None, None), Reason.UNKNOWN_RECEIVER
        if mismatch and self.policy.reject_address_mismatch:
            trace.add(
                "identification", "rejected", "on_address_mismatch = reject: identifiers disagree"
            )
            return chosen.address or _NO_ADDRESS, Reason.ADDRESS_MISMATCH

        if receiver.read.kind is IdentifierKind.SOR_ID:
            unit = receiver.unit
            assert unit is not None
            if not unit.is_open_on(day):
                trace.add("receiver", "closed", f"unit {unit.sor_id} is closed on {day}")
                return Address(unit.sor_id, receiver.gln, None), Reason.RECEIVER_CLOSED
            address = receiver.address
            if address is None:
                trace.add("address", "none", f"no GLN on the path from {unit.sor_id} to its root")
                return Address(unit.sor_id, None, None), Reason.NO_GLN_ON_PATH
            if receiver.through is not None:
                trace.warn(
                    WarningCode.ADDRESSED_THROUGH_ANCESTOR,
                    f"unit {unit.sor_id} has no GLN of its own or by inheritance: "
                    f"addressed through {receiver.through}",
                )
            trace.add(
                "address",
                "found",
                f"SOR-ID {address.sor_id} GLN {address.gln}"
                + (f" inherited from {address.inherited_from}" if address.inherited_from else ""),
            )
        else:
            address = receiver.address or _NO_ADDRESS
        return self._check_gln(address, day, trace)

    def _read(self, read: ReadIdentifier, trace: _Trace) -> bool:
        """Trace one identifier as read, warn about its spelling or value; True when usable."""
        ident = read.identifier
        source = ident.source.value
        if ident.source is IdentifierSource.ENDPOINT:
            written = ident.value
        elif ident.system is None:
            written = f"(no system) {ident.value!r}"
        else:
            written = f"{ident.system} {ident.value!r}"
        if read.kind is IdentifierKind.UNKNOWN:
            endpoint = ident.source is IdentifierSource.ENDPOINT
            why = "no SOR-ID in the reference" if endpoint else "not a GLN or SOR-ID system"
            trace.add("identifier", "unknown", f"{source}: {written}: {why}")
            return False
        kind = "GLN" if read.kind is IdentifierKind.GLN else "SOR-ID"
        if read.value is None:
            trace.add("identifier", "invalid", f"{source}: {written}: not a valid {kind}")
            trace.warn(
                WarningCode.IDENTIFIER_VALUE_INVALID,
                f"{source} {kind} {ident.value!r} is not a valid {kind}"
                + (" (13 digits)" if read.kind is IdentifierKind.GLN else " (1 to 20 digits)")
                + ": not used",
            )
            return False
        if read.spelling is SystemSpelling.LEGACY:
            trace.warn(
                WarningCode.LEGACY_GLN_SYSTEM,
                f"{source} GLN {read.value} is under {ident.system} (GS1's OID, older MedCom "
                f"profiles): read as a GLN; current profiles use {GLN_SYSTEMS[0]}",
            )
        elif read.spelling is SystemSpelling.MISSPELT:
            official = GLN_SYSTEMS[0] if read.kind is IdentifierKind.GLN else SOR_ID_SYSTEM
            trace.warn(
                WarningCode.IDENTIFIER_SYSTEM_MISSPELT,
                f"{source} {kind} {read.value} is under the misspelt system {ident.system!r}: "
                f"read as {official}",
            )
        spelling = "" if read.spelling is SystemSpelling.OFFICIAL else f" ({read.spelling.value})"
        trace.add(
            "identifier", read.kind.value, f"{source}: {written}{spelling} = {kind} {read.value}"
        )
        return True

    def _name(self, read: ReadIdentifier) -> _Named:
        """What one usable identifier names, on its own."""
        value = read.value
        assert value is not None
        units = self.index.registry.units
        if read.kind is IdentifierKind.GLN:
            record = self.index.registry.glns.get(value)
            owners = self.index.owners_by_gln.get(value, ())
            owner = owners[0] if owners else (record.owner_sor_id if record else None)
            return _Named(
                read,
                _GLN_RANK,
                record is not None,
                units.get(owner) if owner else None,
                Address(owner, value, None),
            )
        rank = (
            _ENDPOINT_RANK if read.identifier.source is IdentifierSource.ENDPOINT else _SOR_ID_RANK
        )
        unit = units.get(value)
        if unit is None:
            return _Named(read, rank, False, None, None)
        found = self._nearest_gln(unit)
        if found is None:
            return _Named(read, rank, True, unit, None)
        address, through = found
        return _Named(read, rank, True, unit, address, through)

    def _agree(self, chosen: _Named, other: _Named, receiver: _Named, trace: _Trace) -> bool:
        """Whether ``other`` names the receiver ``chosen`` names: the same GLN. ``receiver``
        is the identifier whose unit is addressed so far (for the trace)."""
        if other.read.kind is chosen.read.kind and other.read.value == chosen.read.value:
            trace.add("identification", "consistent", f"{other.label()} repeats it")
            return True
        if not other.known and not chosen.known:
            # Nothing to compare: the receiver is unknown whichever names it.
            trace.add(
                "identification",
                "unverifiable",
                f"neither {other.label()} nor {chosen.label()} is in the snapshot",
            )
            return True
        if not other.known or other.gln is None or other.gln != chosen.gln:
            trace.add("identification", "mismatch", f"{other.describe()} vs {chosen.describe()}")
            return False
        unit, addressed = other.unit, receiver.unit
        if (
            receiver.read.kind is IdentifierKind.SOR_ID
            and unit is not None
            and addressed is not None
            and unit.sor_id != addressed.sor_id
        ):
            detail = (
                f"{other.label()} is unit {unit.sor_id} {unit.name!r}, another unit than the "
                f"addressed {addressed.sor_id} {addressed.name!r}, with the same GLN {other.gln}"
            )
        else:
            detail = f"{other.describe()} has the GLN of {chosen.label()}"
        trace.add("identification", "consistent", detail)
        return True

    def _nearest_gln(self, unit: Unit) -> tuple[Address, str | None] | None:
        """The unit's GLN by inheritance; failing that, the nearest ancestor that has one
        (with that ancestor's SOR-ID as the second value)."""
        units = self.index.registry.units
        current: Unit | None = unit
        seen: set[str] = set()
        while current is not None and current.sor_id not in seen:
            seen.add(current.sor_id)
            effective = effective_gln(units, current.sor_id)
            if effective.gln is not None:
                address = Address(current.sor_id, effective.gln, effective.inherited_from)
                return address, (current.sor_id if current is not unit else None)
            current = units.get(current.parent_sor_id) if current.parent_sor_id else None
        return None

    def _check_gln(
        self, address: Address, day: date, trace: _Trace
    ) -> tuple[Address, Reason | None]:
        registry = self.index.registry
        gln = address.gln
        record = registry.glns.get(gln) if gln else None
        if record is None:
            trace.add("receiver", "unknown", f"GLN {gln} is not in the snapshot")
            return address, Reason.UNKNOWN_RECEIVER
        if record.gln in self.index.bad_check_digits:
            trace.warn(WarningCode.GLN_CHECK_DIGIT, f"GLN {record.gln} has a wrong GS1 check digit")
        if not record.active:
            trace.add("receiver", "inactive", f"GLN {gln} is marked NonActive")
            return address, Reason.RECEIVER_INACTIVE
        if record.to_date is not None and record.to_date < day:
            trace.add("receiver", "closed", f"GLN {gln} ended {record.to_date}")
            return address, Reason.RECEIVER_CLOSED
        owners = self.index.owners_by_gln.get(record.gln, ())
        if owners and not _any_open(registry.units, owners, day):
            trace.add("receiver", "closed", f"every unit carrying GLN {gln} is closed on {day}")
            return address, Reason.RECEIVER_CLOSED
        trace.add("receiver", "active", f"GLN {gln}, VANS {record.vans or 'none'}")
        return address, None


def _any_open(units: Mapping[str, Unit], sor_ids: Iterable[str], day: date) -> bool:
    # A loop, not any() over a generator: on every decision's path, with one owner mostly.
    for sor_id in sor_ids:
        if units[sor_id].is_open_on(day):
            return True
    return False


def _request_reads(request: RouteRequest) -> list[ReadIdentifier]:
    """The receiver as the caller gave it (receiver_gln, receiver_sor_id), read as identifiers
    under the official systems (what :func:`read_identifier` makes of them, without parsing
    the system: this is every decision's path)."""
    reads = []
    if request.receiver_gln:
        gln = request.receiver_gln
        value = gln.strip()
        reads.append(
            ReadIdentifier(
                ReceiverIdentifier(IdentifierSource.REQUEST, GLN_SYSTEMS[0], gln),
                IdentifierKind.GLN,
                SystemSpelling.OFFICIAL,
                value if len(value) == 13 and value.isascii() and value.isdigit() else None,
            )
        )
    if request.receiver_sor_id:
        reads.append(
            read_identifier(
                ReceiverIdentifier(IdentifierSource.REQUEST, SOR_ID_SYSTEM, request.receiver_sor_id)
            )
        )
    return reads
