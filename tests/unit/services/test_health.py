"""Health of the data on the fakes: failure streaks per source, the data's age, stuck webhooks."""

from __future__ import annotations

from datetime import timedelta

from soredi_sync.config import WebhookSettings
from soredi_sync.ports.fakes import FakeUnitOfWork
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.health import data_age_seconds, data_health, source_health, webhook_health
from tests.support.factories import registry, unit
from tests.support.fakes import START, Clock, store


def _run(uow: FakeUnitOfWork, status: RunStatus, *, source: str = "sor-filer", **values: object):  # type: ignore[no-untyped-def]
    with uow:
        run_id = uow.runs.start(source, "sandbox", "test")
        uow.runs.finish(run_id, status, **values)
        uow.commit()
    return run_id


def test_failures_since_the_last_accepted_run_make_a_source_degraded(
    uow: FakeUnitOfWork,
) -> None:
    _run(uow, RunStatus.SUCCEEDED, snapshot_id=1)
    _run(uow, RunStatus.FAILED, error="download failed")
    _run(uow, RunStatus.REFUSED, error="mass removal")
    _run(uow, RunStatus.FAILED, source="skrs", error="elsewhere")
    with uow:
        uow.runs.start("sor-filer", "sandbox", "test")  # running: not counted
        health = source_health(uow, "sor-filer", degraded_after=2)
    assert (health.consecutive_failures, health.degraded) == (2, True)
    assert (health.last_status, health.last_error) == ("refused", "mass removal")
    assert health.last_success_at == START


def test_an_unchanged_source_ends_the_streak(uow: FakeUnitOfWork) -> None:
    _run(uow, RunStatus.FAILED, error="timeout")
    _run(uow, RunStatus.UNCHANGED, snapshot_id=1)
    with uow:
        health = source_health(uow, "sor-filer", degraded_after=1)
    assert (health.consecutive_failures, health.degraded, health.last_error) == (0, False, None)


def test_the_data_goes_stale_hours_after_the_last_confirmation(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    with uow:
        assert data_age_seconds(uow) is None  # nothing synced: no age at all
    store(uow, registry([unit("1")], []))
    _run(uow, RunStatus.SUCCEEDED, snapshot_id=1)
    _run(uow, RunStatus.FAILED, error="later runs fail")
    later = clock.advance(hours=30)
    with uow:
        fresh = data_health(uow, ("sor-filer",), degraded_after=3, max_age_hours=36, now=later)
        stale = data_health(uow, ("sor-filer",), degraded_after=3, max_age_hours=24, now=later)
    assert fresh.data_age_seconds == 30 * 3600 and fresh.fresh
    assert not stale.fresh and not any(s.degraded for s in stale.sources)


def test_before_any_accepted_run_the_age_is_the_snapshots(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    store(uow, registry([unit("1")], []))
    with uow:
        assert data_age_seconds(uow, clock.now + timedelta(hours=2)) == 7200


def test_a_delivery_due_for_too_long_is_stuck(uow: FakeUnitOfWork, clock: Clock) -> None:
    settings = WebhookSettings(stuck_after_seconds=900)
    with uow:
        sub = uow.webhooks.add(
            name="ehr",
            url="https://ehr.example/hook",
            filters={},
            origin="api",
            secret="s",
            created_at=clock.now,
            created_by="ops",
            cursor=0,
        )
        uow.webhooks.add_delivery(
            subscription_id=sub.id,
            created_at=clock.now,
            first_change_id=1,
            last_change_id=2,
            change_count=2,
            payload={"changes": []},
        )
        uow.commit()
    with uow:
        assert webhook_health(uow, settings, clock.now + timedelta(minutes=10)).stuck == 0
        late = webhook_health(uow, settings, clock.now + timedelta(minutes=20))
    assert (late.stuck, late.oldest_stuck_since) == (1, clock.now)
