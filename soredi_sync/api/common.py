"""What more than one router shares: identifier patterns, the id path parameter, the base of
the response models (read from records by attribute) and the snapshot a read was made on.

The models of one resource live beside its endpoints in ``api/routers/``; those that mirror a
record are declared field by field all the same, so a change inside the domain does not
silently change what a client receives.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from soredi_sync.ports.records import SnapshotInfo

GLN_PATTERN = r"^\d{13}$"
SOR_ID_PATTERN = r"^\d{1,20}$"
# Ids and cursors are 64-bit in the database: larger numbers are a 422, never a 500.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="an id")]


# A response model read from a record: ``Model.model_validate(record)``. (No docstring: a
# model's docstring is its description in the published document.)
class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def attributes(record: object, model: type[BaseModel], **computed: Any) -> dict[str, Any]:
    """``record``'s attributes named like ``model``'s fields, with ``computed`` for the fields
    it does not hold; for a ``mode="before"`` model validator."""
    values = {
        name: getattr(record, name)
        for name in model.model_fields
        if name not in computed and hasattr(record, name)
    }
    return {**values, **computed}


def from_context(info: ValidationInfo, key: str) -> Any:
    """What ``model_validate(record, context={key: ...})`` passed along with the record."""
    if not isinstance(info.context, dict) or key not in info.context:
        raise TypeError(f"validate with context={{{key!r}: ...}}")
    return info.context[key]


def now_of(info: ValidationInfo) -> datetime:
    """The request's "now" (``context={"now": now}``), which an age is measured to."""
    now = from_context(info, "now")
    assert isinstance(now, datetime)
    return now


class SnapshotOut(OutModel):
    id: int
    source: str
    taken_at: datetime
    source_date: date | None
    effective_date: date
    unit_count: int
    gln_count: int
    capability_count: int
    change_count: int
    baseline: bool
    age_seconds: float

    @model_validator(mode="before")
    @classmethod
    def _aged(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, SnapshotInfo):
            age = round(data.age_seconds(now_of(info)), 3)
            return attributes(data, cls, age_seconds=age)
        return data
