"""The cut-over cache (``App.cutover_cache``) on hand-built registries: a (snapshot, date,
policy) is decided once for the whole registry, and the report for a set of owners is the one
``cutover`` gives for those owners."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.model import Gln, Registry
from soredi_sync.domain.routing import Resolver, RoutingIndex, SnapshotRef
from soredi_sync.errors import NoSnapshot
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.reference_data import ReferenceData
from soredi_sync.services import cutover as cutover_service
from soredi_sync.services.cutover import CutoverCache, CutoverReport, cutover
from tests.support.factories import gln, registry, unit
from tests.support.fakes import store

KMD = "41000035001"
TAKEN = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
TODAY = date(2026, 11, 26)
CUTOVER = date(2027, 1, 4)
# Owners: 100 (a FHIR GLN and a ward's legacy GLN), 200 (legacy), 300 (FHIR), 400 (both, so
# never lost); gln(6) takes XDIS91 and belongs to no unit, so to no known owner.
OWNER_SETS = [{"100"}, {"100", "200"}, {"300"}, {"400"}, {"100", "999"}, set()]


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData.load(config_dir())


def _registry() -> Registry:
    units = [
        unit("100", own_gln=gln(1), name="Region A"),
        unit("101", "100", own_gln=gln(2), name="Ward"),
        unit("200", own_gln=gln(3)),
        unit("300", own_gln=gln(4)),
        unit("400", own_gln=gln(5)),
    ]
    caps = {
        gln(1): ["FDIS91", "FCTL"],
        gln(2): ["XDIS91", "XBIN01"],
        gln(3): ["XDIS91", "XBIN01"],
        gln(4): ["FDIS91"],
        gln(5): ["FDIS91", "XDIS91"],
        gln(6): ["XDIS91"],
    }
    return registry(units, [Gln(gln(n), vans=KMD) for n in range(1, 7)], caps)


def _resolver(reference: ReferenceData, snapshot: SnapshotRef | None = None) -> Resolver:
    index = RoutingIndex.build(snapshot or SnapshotRef(7, TAKEN), _registry())
    return Resolver(index, reference.routing_policy, reference.message_types)


@pytest.fixture
def resolver(reference: ReferenceData) -> Resolver:
    return _resolver(reference)


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """The dates decided by the cut-over service (each a full pass over the receivers)."""
    decided: list[date] = []
    decide = cutover_service._decide

    def counting(resolver: Resolver, on: date, *args: object) -> object:
        decided.append(on)
        return decide(resolver, on, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(cutover_service, "_decide", counting)
    return decided


def _cached(
    cache: CutoverCache,
    resolver: Resolver,
    reference: ReferenceData,
    owners: set[str] | None = None,
    on: date = CUTOVER,
) -> CutoverReport:
    context = reference.audit_context
    return cache.report(resolver, on, audit_context=context, owners=owners, today=TODAY)


class TestRestrictedReports:
    def test_the_report_for_owners_is_the_one_cutover_gives_for_them(
        self, resolver: Resolver, reference: ReferenceData
    ) -> None:
        cache = CutoverCache()
        context = reference.audit_context
        everyone = cutover(resolver, CUTOVER, audit_context=context, today=TODAY)
        assert everyone.counts == {"fhir": 3, "oioxml": 2, "edifact": 0}
        assert _cached(cache, resolver, reference) == everyone
        for owners in OWNER_SETS:
            expected = cutover(resolver, CUTOVER, audit_context=context, owners=owners, today=TODAY)
            assert _cached(cache, resolver, reference, owners) == expected, owners

    def test_a_receiver_of_no_known_owner_is_only_in_the_whole_registrys_report(
        self, resolver: Resolver, reference: ReferenceData
    ) -> None:
        cache = CutoverCache()
        everyone = _cached(cache, resolver, reference)
        assert gln(6) in {r.gln for r in everyone.lost_for("fhir")}
        mine = _cached(cache, resolver, reference, {"100", "200", "300", "400"})
        assert gln(6) not in {r.gln for r in mine.lost_for("fhir")}
        assert mine.receivers == everyone.receivers - 1

    def test_the_restricted_report_counts_only_its_owners_receivers(
        self, resolver: Resolver, reference: ReferenceData
    ) -> None:
        cache = CutoverCache()
        assert _cached(cache, resolver, reference, {"100"}).receivers == 2
        assert _cached(cache, resolver, reference, {"400"}).receivers == 1
        assert _cached(cache, resolver, reference, set()).receivers == 0


class TestCaching:
    def test_a_date_is_decided_once_for_every_owner_set(
        self, resolver: Resolver, reference: ReferenceData, decisions: list[date]
    ) -> None:
        cache = CutoverCache()
        for owners in (None, *OWNER_SETS):
            _cached(cache, resolver, reference, owners)
        assert decisions == [CUTOVER]
        _cached(cache, resolver, reference, on=TODAY)
        assert decisions == [CUTOVER, TODAY]

    def test_readers_at_once_share_one_decision(
        self, resolver: Resolver, reference: ReferenceData, decisions: list[date]
    ) -> None:
        cache = CutoverCache()
        start = threading.Barrier(6)
        reports: list[CutoverReport] = []

        def read() -> None:
            start.wait()
            reports.append(_cached(cache, resolver, reference))

        threads = [threading.Thread(target=read) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert decisions == [CUTOVER]
        assert len({id(r) for r in reports}) == 1

    def test_only_the_dates_asked_for_last_are_kept(
        self, resolver: Resolver, reference: ReferenceData, decisions: list[date]
    ) -> None:
        cache = CutoverCache(size=2)
        first, second, third = date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)
        for on in (first, second, first, third):  # the second is the least recently used
            _cached(cache, resolver, reference, on=on)
        _cached(cache, resolver, reference, on=first)
        assert decisions == [first, second, third]
        _cached(cache, resolver, reference, on=second)
        assert decisions == [first, second, third, second]

    def test_another_policy_or_snapshot_is_decided_anew(
        self, resolver: Resolver, reference: ReferenceData, decisions: list[date]
    ) -> None:
        cache = CutoverCache()
        assert _cached(cache, resolver, reference).counts["fhir"] == 3
        steps = tuple(
            replace(step, valid_to=date(2027, 6, 30)) if step.valid_to else step
            for step in resolver.policy.conversions
        )
        later = Resolver(
            resolver.index, replace(resolver.policy, conversions=steps), resolver.message_types
        )
        assert sum(_cached(cache, later, reference).counts.values()) == 0
        retaken = _resolver(reference, SnapshotRef(7, TAKEN.replace(hour=5)))
        assert _cached(cache, retaken, reference).counts["fhir"] == 3
        assert decisions == [CUTOVER] * 3


class TestCutoverOn:
    def test_it_is_decided_on_the_resolvers_snapshot_compared_with_its_day(
        self, uow: FakeUnitOfWork, reference: ReferenceData
    ) -> None:
        info = store(uow, _registry())
        resolver = _resolver(reference, SnapshotRef(info.id, info.taken_at))
        cache = CutoverCache()
        with uow:
            found, report = cache.cutover_on(
                uow, resolver, CUTOVER, owners={"200"}, context=reference.audit_context
            )
        assert found == info
        assert report == cutover(
            resolver,
            CUTOVER,
            audit_context=reference.audit_context,
            owners={"200"},
            today=info.effective_date,
        )
        assert [r.gln for r in report.lost_for("fhir")] == [gln(3)]

    def test_a_snapshot_that_is_gone_is_no_snapshot(
        self, uow: FakeUnitOfWork, reference: ReferenceData, resolver: Resolver
    ) -> None:
        with uow, pytest.raises(NoSnapshot):
            CutoverCache().cutover_on(
                uow, resolver, CUTOVER, owners=None, context=reference.audit_context
            )
