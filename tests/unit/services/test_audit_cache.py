"""The per-snapshot findings cache (``App.audit_cache``) on the fakes: a snapshot is loaded and
audited once, however many readers ask at once, and only the last few snapshots are kept."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from soredi_sync.domain.audit import AuditContext
from soredi_sync.domain.model import Gln, Registry
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.services import queries
from soredi_sync.services.audit import AuditCache
from tests.support.factories import gln, registry, unit
from tests.support.fakes import store


def _registry(types: list[str]) -> Registry:
    return registry([unit("1", own_gln=gln(1))], [Gln(gln(1), region_code="1081")], {gln(1): types})


@pytest.fixture
def loads(uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """How often each snapshot is loaded from the (fake) store."""
    counted: Counter[int] = Counter()
    load = uow.registry.load_registry

    def counting(snapshot_id: int) -> Registry:
        counted[snapshot_id] += 1
        return load(snapshot_id)

    monkeypatch.setattr(uow.registry, "load_registry", counting)
    return counted


def test_a_snapshot_is_audited_once_and_read_from_the_cache_after(
    uow: FakeUnitOfWork, context: AuditContext, loads: Counter[int]
) -> None:
    store(uow, _registry(["FDIS91", "DIS91"]))
    loads.clear()
    cache = AuditCache()
    first = queries.scoped_audit(uow, context, owners=None, cache=cache)
    again = queries.scoped_audit(uow, context, owners=None, region="1081", cache=cache)
    assert first.findings == again.findings and first.findings
    assert loads[first.snapshot.id] == 1
    queries.scoped_audit(uow, context, owners=None)  # without the cache: audited anew
    assert loads[first.snapshot.id] == 2


def test_readers_at_once_share_one_audit(
    uow: FakeUnitOfWork, context: AuditContext, loads: Counter[int]
) -> None:
    snapshot = store(uow, _registry(["FDIS91"]))
    loads.clear()
    cache = AuditCache()
    start = threading.Barrier(8)
    results: list[int] = []

    def read() -> None:
        start.wait()
        results.append(id(cache.findings(uow, context, snapshot)))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads[snapshot.id] == 1 and len(set(results)) == 1


def test_only_the_latest_snapshots_asked_for_are_kept(
    uow: FakeUnitOfWork, context: AuditContext, loads: Counter[int]
) -> None:
    snapshots = [
        store(uow, _registry(types), run_id=n)
        for n, types in enumerate((["FDIS91"], ["FDIS91", "DIS91"], ["DIS91"]), start=1)
    ]
    loads.clear()  # storing loads the snapshot before
    cache = AuditCache(size=2)
    for snapshot in (*snapshots, snapshots[1], snapshots[2]):
        cache.findings(uow, context, snapshot)
    assert [loads[s.id] for s in snapshots] == [1, 1, 1]
    cache.findings(uow, context, snapshots[0])  # evicted: audited again
    assert loads[snapshots[0].id] == 2
