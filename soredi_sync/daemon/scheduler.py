"""Wiring only: which job runs when (APScheduler 3.x). The jobs live in :mod:`.jobs`.

Every job runs with ``max_instances=1`` (a slow run is never overlapped by the next),
``coalesce=True`` (runs missed while the process was down or busy collapse into one) and a
misfire grace time (a run later than that is skipped, not run late). The webhook job has an
executor of its own, so deliveries never take a thread the syncs or the lease need.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from soredi_sync.config import DaemonSettings
from soredi_sync.daemon.jobs import Jobs

logger = logging.getLogger(__name__)


def build_scheduler(jobs: Jobs, settings: DaemonSettings) -> BackgroundScheduler:
    """A scheduler (not started) with the lease refresh and the configured jobs.

    :raises ValueError: a malformed cron line or time zone
    """
    zone = ZoneInfo(settings.timezone)
    scheduler = BackgroundScheduler(
        # The lease refresh must run while a sync occupies another thread.
        executors={
            "default": ThreadPoolExecutor(max_workers=4),
            "webhooks": ThreadPoolExecutor(max_workers=2),
        },
        job_defaults={
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": settings.misfire_grace_seconds,
        },
        timezone=zone,
    )
    now = datetime.now(UTC)
    scheduler.add_job(
        jobs.refresh_lease,
        IntervalTrigger(seconds=max(settings.lease_seconds / 3, 0.2), timezone=zone),
        id="lease",
        name="leadership lease",
        next_run_time=now,
    )
    if settings.full_sync_interval_seconds is not None:
        full = IntervalTrigger(seconds=settings.full_sync_interval_seconds, timezone=zone)
        # First run shortly after start: the lease has been refreshed by then.
        first = now + timedelta(seconds=min(1.0, settings.full_sync_interval_seconds))
        scheduler.add_job(
            jobs.full_sync, full, id="full-sync", name="full sync", next_run_time=first
        )
    else:
        scheduler.add_job(
            jobs.full_sync,
            CronTrigger.from_crontab(settings.full_sync_cron, timezone=zone),
            id="full-sync",
            name="full sync",
        )
    if settings.incremental_interval_seconds is not None:
        scheduler.add_job(
            jobs.incremental_sync,
            IntervalTrigger(seconds=settings.incremental_interval_seconds, timezone=zone),
            id="incremental-sync",
            name="incremental sync",
        )
    scheduler.add_job(
        jobs.purge_decisions,
        CronTrigger.from_crontab(settings.retention_cron, timezone=zone),
        id="decision-retention",
        name="decision-log retention",
    )
    scheduler.add_job(
        jobs.count_traffic,
        CronTrigger.from_crontab(settings.traffic_cron, timezone=zone),
        id="traffic",
        name="traffic counts",
    )
    scheduler.add_job(
        jobs.deliver_webhooks,
        IntervalTrigger(seconds=settings.webhook_retry_seconds, timezone=zone),
        id="webhooks",
        name="webhook deliveries",
        executor="webhooks",
    )

    def webhooks_now() -> None:
        scheduler.add_job(
            jobs.deliver_webhooks,
            id="webhooks-now",
            name="webhook deliveries after a sync",
            executor="webhooks",
            replace_existing=True,
        )

    jobs.on_webhooks_wanted = webhooks_now
    return scheduler


def describe(scheduler: BackgroundScheduler) -> list[str]:
    """One line per job with its trigger (and next run once started), for the start banner."""
    lines = []
    for job in scheduler.get_jobs():
        next_run = getattr(job, "next_run_time", None)
        when = f", next {next_run:%Y-%m-%d %H:%M:%S %Z}" if next_run else ""
        lines.append(f"{job.name}: {job.trigger}{when}")
    return lines
