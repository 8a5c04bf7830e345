"""Decision-log entries made up for a test: a delivery to one sandbox GLN unless told otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from soredi_sync.ports.records import DecisionEntry

GLN = "5790000120314"


def logged(decided_at: datetime, **fields: object) -> DecisionEntry:
    """An entry decided at ``decided_at``; ``fields`` replace the defaults (an XDIS91
    delivery to :data:`GLN` for caller ``test`` on snapshot 1)."""
    entry = DecisionEntry(
        decided_at=decided_at,
        caller="test",
        token_id=None,
        message_id="m",
        receiver_gln=GLN,
        receiver_sor_id=None,
        business_message="correspondence",
        sender_syntax="fhir",
        outcome="deliver",
        reason=None,
        message_type="XDIS91",
        address_sor_id=None,
        address_gln=GLN,
        snapshot_id=1,
    )
    return replace(entry, **fields)  # type: ignore[arg-type]
