"""What the SOAP clients take and return besides plain domain records.

A replication feed carries *versions* of capability rows (GLN x EDI type with a validity and
the feed offset); the domain has no such record yet, so it lives here, wrapping the domain
:class:`~soredi_sync.domain.model.Capability`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from soredi_sync.domain.model import Capability, Gln, Unit


@dataclass(frozen=True, slots=True)
class LookedUpUnit:
    """A SORLS answer: the unit and, when it carries one, its own GLN record."""

    unit: Unit
    gln: Gln | None


@dataclass(frozen=True, slots=True)
class CapabilityVersion:
    """One version of one LocationsCodeEDITypeMap row, as the replication feed gives it.

    ``offset`` is the feed's cursor for this entry: store the last one you have applied (in
    the same transaction as the data) and ask for entries after it next time.
    """

    capability: Capability
    edi_type_id: str | None
    valid_from: date
    valid_to: date | None
    offset: str
    updated: datetime

    def is_current_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True, slots=True)
class ReplicationPage:
    """One answer of the replication service.

    ``next_offset`` is the offset to ask from next (the last entry's, or the one asked with on
    an empty page); ``caught_up`` is true when the page was not full.
    """

    entries: tuple[CapabilityVersion, ...]
    requested_offset: str | None
    next_offset: str | None
    max_records: int

    @property
    def caught_up(self) -> bool:
        return len(self.entries) < self.max_records


class ChangeAction(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class EdiTypeChange:
    """One change sent to SORUS: add or remove one message type on one GLN.

    ``change_id`` is the caller's own id (a plan item id), echoed in the answer.
    """

    change_id: str
    gln: str
    action: ChangeAction
    message_type: str
    version_code: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """SORUS's verdict on one change: accepted (published from ``effective_date``) or
    rejected with ``reason``."""

    change_id: str
    accepted: bool
    effective_date: date | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class SubmissionReceipt:
    """SORUS's answer to one batch: its receipt id and one result per change sent."""

    submission_id: str
    received_at: datetime
    results: tuple[ChangeResult, ...]
