"""The one module that maps zeep objects of the (modelled) contracts to domain records.

When the real NSP WSDLs replace ``contracts/``, the element names change here and nowhere else.
Every function takes the zeep answer object and returns records from
:mod:`soredi_sync.domain.model` or :mod:`soredi_sync.soap.records`; nothing zeep leaves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from soredi_sync.domain.model import Capability, Gln, GlnMode, Unit, UnitKind
from soredi_sync.soap.records import (
    CapabilityVersion,
    ChangeResult,
    EdiTypeChange,
    LookedUpUnit,
    SubmissionReceipt,
)

# -- SORLS ----------------------------------------------------------------------------------


def sorls_request(sor_id: str, day: date) -> dict[str, Any]:
    """Keyword arguments for ``GetSorEntity``."""
    return {"SorIdentifier": sor_id, "Date": day}


def looked_up_unit(response: Any) -> LookedUpUnit | None:
    """``GetSorEntityResponse`` -> the unit (and its own GLN), or None when it has none."""
    entity = _unwrap(response, "SorEntity")
    if entity is None:
        return None
    ean = _get(entity, "EanLocationCodeEntity")
    gln = _gln(ean, _text(entity, "SorIdentifier")) if ean is not None else None
    inherited = _get(entity, "EntityInheritedIndicator")
    if gln is not None:
        mode = GlnMode.OWN
    elif inherited:
        mode = GlnMode.INHERITED
    else:
        mode = GlnMode.NONE
    unit = Unit(
        sor_id=_text(entity, "SorIdentifier"),
        name=_text(entity, "EntityName"),
        kind=UnitKind(_text(entity, "EntityKind")),
        parent_sor_id=_opt_text(entity, "ParentSorIdentifier"),
        owner_sor_id=_text(entity, "InstitutionOwnerSorIdentifier"),
        type_code=_opt_text(entity, "EntityTypeIdentifier"),
        gln_mode=mode,
        gln=gln.gln if gln is not None else None,
        from_date=_get(entity, "FromDate"),
        to_date=_get(entity, "ToDate"),
        shak=_opt_text(entity, "ShakIdentifier"),
        provider_number=_opt_text(entity, "ProviderIdentifier"),
        pharmacy_number=_opt_text(entity, "PharmacyIdentifier"),
        postal_code=_opt_text(entity, "PostalCodeIdentifier"),
    )
    return LookedUpUnit(unit=unit, gln=gln)


def _gln(ean: Any, owner_sor_id: str) -> Gln:
    return Gln(
        gln=_text(ean, "EanLocationCode"),
        active=not bool(_get(ean, "NonActiveIndicator")),
        only_internal=bool(_get(ean, "OnlyInternalIndicator")),
        system_supplier=_opt_text(ean, "SystemSupplierIdentifier"),
        system_type=_opt_text(ean, "SystemTypeIdentifier"),
        vans=_opt_text(ean, "CommunicationSupplierIdentifier"),
        region_code=_opt_text(ean, "RegionCode"),
        edi_administrator=_opt_text(ean, "EdiAdministrator"),
        owner_sor_id=owner_sor_id,
        from_date=_get(ean, "FromDate"),
        to_date=_get(ean, "ToDate"),
    )


# -- SKRS replication -----------------------------------------------------------------------


def replication_request(
    register: str, datatype: str, version: int, offset: str | None, max_records: int
) -> dict[str, Any]:
    """Keyword arguments for the replication operation."""
    return {
        "register": register,
        "datatype": datatype,
        "version": version,
        "offset": offset,
        "maxRecords": max_records,
    }


def capability_versions(response: Any) -> tuple[CapabilityVersion, ...]:
    """``ReplicationResponse`` -> its entries as capability row versions, in feed order."""
    feed = _unwrap(response, "feed")
    if feed is None:
        raise ValueError("the replication answer has no feed")
    result = []
    for entry in _get(feed, "entry") or ():
        record = _get(_get(entry, "content"), "EanLocationCodeEdiType")
        version = _opt_text(record, "VersionCode")
        result.append(
            CapabilityVersion(
                capability=Capability(
                    gln=_text(record, "EanLocationCode"),
                    message_type=_text(record, "StandardIdentifier"),
                    version_code=version,
                ),
                edi_type_id=_opt_text(record, "EdiTypeIdentifier"),
                valid_from=_get(record, "ValidFrom"),
                valid_to=_get(record, "ValidTo"),
                offset=_text(entry, "offset"),
                updated=_utc(_get(entry, "updated")),
            )
        )
    return tuple(result)


# -- SORUS ----------------------------------------------------------------------------------


def sorus_request(reference: str, changes: Sequence[EdiTypeChange]) -> dict[str, Any]:
    """Keyword arguments for ``SubmitEdiTypeChanges``."""
    return {
        "Reference": reference,
        "Change": [
            {
                "ChangeIdentifier": change.change_id,
                "EanLocationCode": change.gln,
                "Action": change.action.value,
                "StandardIdentifier": change.message_type,
                "VersionCode": change.version_code,
            }
            for change in changes
        ],
    }


def submission_receipt(response: Any) -> SubmissionReceipt:
    """``SubmitEdiTypeChangesResponse`` -> the receipt with one result per change."""
    results = []
    for result in _get(response, "ChangeResult") or ():
        status = _text(result, "Status")
        if status not in ("accepted", "rejected"):
            raise ValueError(f"unknown change status {status!r}")
        effective = _get(result, "EffectiveDate")
        if effective is not None and not isinstance(effective, date):
            raise ValueError(f"expected a date, got {effective!r}")
        results.append(
            ChangeResult(
                change_id=_text(result, "ChangeIdentifier"),
                accepted=status == "accepted",
                effective_date=effective,
                reason=_opt_text(result, "Reason"),
            )
        )
    return SubmissionReceipt(
        submission_id=_text(response, "SubmissionIdentifier"),
        received_at=_utc(_get(response, "ReceivedAt")),
        results=tuple(results),
    )


# -- helpers --------------------------------------------------------------------------------


def _unwrap(response: Any, name: str) -> Any:
    """zeep returns a response element's only child unwrapped; accept both shapes."""
    if response is None:
        return None
    try:
        keys = list(response)
    except TypeError:
        return response
    if name in keys:
        return _get(response, name)
    return response


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _opt_text(obj: Any, name: str) -> str | None:
    value = _get(obj, name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _text(obj: Any, name: str) -> str:
    value = _opt_text(obj, name)
    if value is None:
        raise ValueError(f"the answer lacks {name}")
    return value


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a dateTime, got {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
