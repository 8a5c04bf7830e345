"""What the SOAP sandbox answers per service: SORLS ``GetSorEntity``, SKRS ``Replication`` and
SORUS ``SubmitEdiTypeChanges`` (all MODELLED contracts), each taking the parsed operation element
and returning the response element as XML text. Errors in a request raise ``ValueError`` (a
``soap:Client`` fault); :class:`NoNextDay` is a ``soap:Server`` fault.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from soredi_sync.sandbox.journal import ACTIONS, ChangeRequest

if TYPE_CHECKING:
    from soredi_sync.sandbox.soap import SoapSandboxServer

SORLS_NS = "urn:soredi:modelled:sorls:1"
SKRS_NS = "urn:soredi:modelled:skrs:1"
SORUS_NS = "urn:soredi:modelled:sorus:1"


class NoNextDay(Exception):
    """The linked sandbox directory ends at the served day: a SORUS change has nowhere to go."""

    def __init__(self, day: int, directory: Path) -> None:
        super().__init__(
            f"the sandbox directory {directory} has no day {day + 1} to publish SORUS changes "
            f"into (it ends at day {day}); generate more days"
        )
        self.day = day


def _el(name: str, value: object | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def get_sor_entity(soap: SoapSandboxServer, request: Any) -> str:
    """SORLS: one unit (and its own GLN) on a day, or an empty answer."""
    sor_id = (request.findtext(f"{{{SORLS_NS}}}SorIdentifier") or "").strip()
    day_text = (request.findtext(f"{{{SORLS_NS}}}Date") or "").strip()
    data = soap.data
    day = date.fromisoformat(day_text) if day_text else data.snapshot_date
    unit = data.units.get(sor_id)
    if unit is None or not unit.is_open_on(day):
        return f'<GetSorEntityResponse xmlns="{SORLS_NS}"/>'
    parts = [
        _el("SorIdentifier", unit.sor_id),
        _el("EntityName", unit.name),
        _el("EntityKind", unit.kind.value),
        _el("ParentSorIdentifier", unit.parent_sor_id),
        _el("InstitutionOwnerSorIdentifier", unit.owner_sor_id),
        _el("EntityTypeIdentifier", unit.type_code),
        _el(
            "EntityInheritedIndicator",
            None if unit.gln_mode.value == "own" else unit.gln_mode.value == "inherited",
        ),
        _el("FromDate", unit.from_date),
        _el("ToDate", unit.to_date),
        _el("ShakIdentifier", unit.shak),
        _el("ProviderIdentifier", unit.provider_number),
        _el("PharmacyIdentifier", unit.pharmacy_number),
        _el("PostalCodeIdentifier", unit.postal_code),
    ]
    gln = data.glns.get(unit.gln) if unit.gln else None
    if gln is not None:
        parts.append(
            "<EanLocationCodeEntity>"
            + _el("EanLocationCode", gln.gln)
            + _el("NonActiveIndicator", not gln.active)
            + _el("OnlyInternalIndicator", gln.only_internal)
            + _el("SystemSupplierIdentifier", gln.system_supplier)
            + _el("SystemTypeIdentifier", gln.system_type)
            + _el("CommunicationSupplierIdentifier", gln.vans)
            + _el("RegionCode", gln.region_code)
            + _el("EdiAdministrator", gln.edi_administrator)
            + _el("FromDate", gln.from_date)
            + _el("ToDate", gln.to_date)
            + "</EanLocationCodeEntity>"
        )
    entity = "".join(parts)
    return (
        f'<GetSorEntityResponse xmlns="{SORLS_NS}"><SorEntity>{entity}</SorEntity>'
        "</GetSorEntityResponse>"
    )


def replicate(soap: SoapSandboxServer, request: Any) -> str:
    """SKRS: the page of the day's ``eanlocationcodeeditype`` feed after ``offset``."""
    register = (request.findtext(f"{{{SKRS_NS}}}register") or "").strip()
    datatype = (request.findtext(f"{{{SKRS_NS}}}datatype") or "").strip()
    offset = (request.findtext(f"{{{SKRS_NS}}}offset") or "").strip() or None
    try:
        limit = int(request.findtext(f"{{{SKRS_NS}}}maxRecords") or "0")
    except ValueError as exc:
        raise ValueError("maxRecords must be an integer") from exc
    if limit < 1:
        raise ValueError("maxRecords must be >= 1")
    if offset is not None and not offset.isdigit():
        raise ValueError(f"unknown offset {offset!r}")
    if not datatype.endswith("eanlocationcodeeditype/v1"):
        raise ValueError(f"the sandbox replicates eanlocationcodeeditype only, not {datatype!r}")
    data = soap.data
    updated = datetime.combine(data.snapshot_date, time(4, 30), tzinfo=UTC).isoformat()
    entries = "".join(
        "<entry>"
        + _el("id", f"tag:sandbox,2026:{register}/{datatype}/{row.offset}")
        + _el("offset", row.offset)
        + _el("updated", updated)
        + "<content><EanLocationCodeEdiType>"
        + _el("EanLocationCode", row.gln)
        + _el("EdiTypeIdentifier", row.edi_type_id)
        + _el("StandardIdentifier", row.message_type)
        + _el("VersionCode", row.version_code)
        + _el("ValidFrom", row.valid_from)
        + _el("ValidTo", row.valid_to)
        + "</EanLocationCodeEdiType></content></entry>"
        for row in data.rows_after(offset, limit)
    )
    return (
        f'<ReplicationResponse xmlns="{SKRS_NS}"><feed>'
        f"{_el('id', f'{register}/{datatype}')}{_el('updated', updated)}{entries}"
        f"</feed></ReplicationResponse>"
    )


def submit(soap: SoapSandboxServer, request: Any) -> str:
    """SORUS: judge each change against the day served; record the accepted ones in the
    journal, effective the next day."""
    if request.find(f"{{{SORUS_NS}}}Reference") is None:
        raise ValueError("SubmitEdiTypeChangesRequest has no Reference")
    reference = (request.findtext(f"{{{SORUS_NS}}}Reference") or "").strip()
    changes = [
        _change(element, index)
        for index, element in enumerate(request.findall(f"{{{SORUS_NS}}}Change"), start=1)
    ]
    if not changes:
        raise ValueError("SubmitEdiTypeChangesRequest has no Change")
    received_at = datetime.now(UTC).replace(microsecond=0)
    with soap.holding_day() as day:
        if soap.files is not None and day >= soap.files.last_day:
            raise NoNextDay(day, soap.files.directory)
        data = soap.data_for(day)
        effective = data.snapshot_date + timedelta(days=1)
        results: list[str] = []
        accepted: list[ChangeRequest] = []
        for change in changes:
            reason = data.rejection(change)
            if reason is None:
                accepted.append(change)
            results.append(
                "<ChangeResult>"
                + _el("ChangeIdentifier", change.change_id)
                + _el("Status", "accepted" if reason is None else "rejected")
                + _el("EffectiveDate", effective if reason is None else None)
                + _el("Reason", reason)
                + "</ChangeResult>"
            )
        ticket, _ = soap.journal.record(
            accepted, received_day=day, received_at=received_at, reference=reference
        )
    return (
        f'<SubmitEdiTypeChangesResponse xmlns="{SORUS_NS}">'
        f"{_el('SubmissionIdentifier', ticket)}{_el('ReceivedAt', received_at.isoformat())}"
        f"{''.join(results)}</SubmitEdiTypeChangesResponse>"
    )


def _change(element: Any, index: int) -> ChangeRequest:
    """One ``Change`` of a SORUS request; ValueError (a client fault) when it breaks the schema."""

    def required(name: str) -> str:
        value = element.findtext(f"{{{SORUS_NS}}}{name}")
        if value is None or not value.strip():
            raise ValueError(f"Change {index} has no {name}")
        return str(value).strip()

    change_id = required("ChangeIdentifier")
    gln = required("EanLocationCode")
    action = required("Action")
    if action not in ACTIONS:
        raise ValueError(f"Change {index}: Action must be one of {ACTIONS}, got {action!r}")
    code = required("StandardIdentifier")
    version = (element.findtext(f"{{{SORUS_NS}}}VersionCode") or "").strip() or None
    return ChangeRequest(change_id, gln, action, code, version)


__all__ = [
    "SKRS_NS",
    "SORLS_NS",
    "SORUS_NS",
    "NoNextDay",
    "get_sor_entity",
    "replicate",
    "submit",
]
