"""The stored audit summary on the fakes: what it holds, and the adoption series reading it."""

from __future__ import annotations

import pytest

from soredi_sync.domain.audit import AdoptionCounts, AuditContext
from soredi_sync.domain.model import Gln
from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.services.audit import (
    adoption_series,
    record_summary,
    stored_owner_adoption,
    stored_owner_severities,
)
from tests.support.factories import gln, registry, unit
from tests.support.fakes import store

MUNICIPALITY_TYPE = "550921000005109"


def _registry(types: list[str]):  # type: ignore[no-untyped-def]
    return registry(
        [unit("1", own_gln=gln(1), type_code=MUNICIPALITY_TYPE)],
        [Gln(gln(1), region_code="1081")],
        {gln(1): types},
    )


def test_a_summary_holds_the_counts_of_the_snapshot_and_is_committed(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    snapshot = store(uow, _registry(["FDIS91", "DIS91"]))
    with uow:
        outcome = record_summary(uow, context)
    assert outcome.snapshot_id == snapshot.id
    assert outcome.adoption == {"fhir_only": 0, "legacy_only": 0, "both": 1}
    stored = uow.audits.summaries[snapshot.id]
    assert stored["findings"]["by_code"] == outcome.findings
    assert stored["findings"]["total"] == sum(outcome.findings.values())
    assert outcome.findings["FDIS91_WITH_LEGACY"] == 1
    assert uow.commits == 2


def test_the_adoption_series_uses_stored_figures_and_counts_the_rest(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    first = store(uow, _registry(["DIS91"]))
    second = store(uow, _registry(["FDIS91"]), run_id=2)
    with uow:
        uow.audits.save_summary(
            first.id,
            computed_at=first.taken_at,
            findings={},
            adoption={"all": {"all": {"fhir_only": 7, "legacy_only": 8, "both": 9}}},
        )
        uow.commit()
    with uow:
        series = adoption_series(uow, context)
    assert [(s.id, counts["all"]) for s, counts in series] == [
        (first.id, AdoptionCounts(7, 8, 9)),  # read, not recounted
        (second.id, AdoptionCounts(fhir_only=1, legacy_only=0, both=0)),
    ]


def test_recording_twice_replaces_and_nothing_is_recorded_without_a_snapshot(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    with uow, pytest.raises(NoSnapshot):
        record_summary(uow, context)
    snapshot = store(uow, _registry(["DIS91"]))
    with uow:
        record_summary(uow, context)
        record_summary(uow, context, snapshot.id)
    assert list(uow.audits.summaries) == [snapshot.id]
    with uow, pytest.raises(NotFound):
        record_summary(uow, context, 99)


def test_a_summary_stores_each_owners_figures_and_a_set_of_owners_reads_their_sums(
    uow: FakeUnitOfWork, context: AuditContext
) -> None:
    snapshot = store(
        uow,
        registry(
            [
                unit("1", own_gln=gln(1), type_code=MUNICIPALITY_TYPE),
                unit("2", own_gln=gln(2), type_code=MUNICIPALITY_TYPE),
            ],
            [Gln(gln(1), region_code="1081"), Gln(gln(2), region_code="1081")],
            {gln(1): ["FDIS91", "DIS91"], gln(2): ["XDIS91"]},
        ),
    )
    with uow:
        outcome = record_summary(uow, context)
    assert outcome.owners == 2
    with uow:
        one = stored_owner_adoption(uow, [snapshot.id], {"1"})
        both = stored_owner_adoption(uow, [snapshot.id], {"1", "2"})
        severities = stored_owner_severities(uow, snapshot.id, {"1"})
        unknown = stored_owner_adoption(uow, [snapshot.id], {"9"})
    assert one == {snapshot.id: {"all": AdoptionCounts(0, 0, 1)}}
    assert both == {snapshot.id: {"all": AdoptionCounts(0, 1, 1)}}
    assert unknown == {}  # not a region, municipality or a token's owner: not stored
    assert severities is not None and sum(severities.values()) >= 1
