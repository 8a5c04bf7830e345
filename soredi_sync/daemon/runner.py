"""``soredi-sync run``: the scheduler and (unless ``--no-api``) the HTTP API in one process.

Start: the schema must be current (an empty database is migrated), the lease is tried at once,
then the jobs run on their schedule. Stop (SIGTERM or SIGINT): no job starts any more, a running
sync stops at its next stage or download chunk and stores nothing, the scheduler waits for
running jobs (at most ``daemon.shutdown_grace_seconds``; a sync past that keeps its transaction
uncommitted and the process exits, so the database rolls it back), the lease is released so
another replica can lead at once, and the API finishes the requests it has.

``[api] workers`` > 1: the API is served by that many forked worker processes, forked before
the scheduler starts any thread (:mod:`.api_workers`); one worker: in this process, as always.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from soredi_sync.api.settings import ApiSettings, api_settings
from soredi_sync.bootstrap import App
from soredi_sync.daemon.jobs import Jobs
from soredi_sync.daemon.leader import Lease
from soredi_sync.daemon.scheduler import build_scheduler, describe
from soredi_sync.observability.metrics import Metrics, shared_metrics, start_metrics_server
from soredi_sync.services.health import SourceHealth, source_gauges_reader, webhook_health

logger = logging.getLogger(__name__)

# The process must end now, without waiting for a job thread that did not stop in time.
EXIT_ABANDONED = 75


@dataclass
class Daemon:
    """The parts of a running daemon, for the CLI and for tests."""

    app: App
    jobs: Jobs
    lease: Lease
    scheduler: Any
    stop_event: threading.Event

    def stop(self) -> None:
        """Ask everything to stop (safe from a signal handler; returns at once)."""
        self.jobs.request_stop()
        self.stop_event.set()


def engine_note(app: App) -> str:
    if app.engine.dialect.name == "sqlite":
        return (
            "SQLite: runs as a single instance (the lease still keeps a second process on the "
            "same file from syncing); use PostgreSQL for several replicas"
        )
    return "PostgreSQL: replicas elect one leader through the lease row; the others serve the API"


def build_daemon(app: App, *, metrics: Metrics | None = None) -> Daemon:
    """The scheduler, lease and jobs of one replica, reporting to ``metrics`` (default: the
    process-wide instance that the API's /metrics serves)."""
    settings = app.settings.daemon
    metrics = metrics or shared_metrics()
    lease = Lease(app.session_factory, ttl=settings.lease_seconds)
    lease.on_change = metrics.set_leader
    metrics.set_leader(False)
    # Every replica, leader or follower, shows the sources' health as the database has it.
    metrics.set_source_health_reader(source_gauges_reader(app.uow, settings))

    def observe(source: str, outcome: Any, health: SourceHealth) -> None:
        metrics.record_sync_outcome(source, outcome)
        metrics.record_failure_streak(source, health.consecutive_failures, health.degraded)

    def webhooks(app: App) -> Any:
        from soredi_sync.services.webhooks import dispatch

        report = dispatch(
            app.uow_factory,
            app.settings.webhooks,
            app.webhook_sender(),
            should_stop=jobs.stopping.is_set,
        )
        for status, count in (
            ("delivered", report.delivered.delivered),
            ("retrying", report.delivered.retrying),
            ("failed", report.delivered.failed),
        ):
            for _ in range(count):
                metrics.record_webhook(status)
        if report.delivered.delivered or report.delivered.retrying or report.delivered.failed:
            logger.info("Webhooks: %s", report.delivered)
        return report

    def webhook_enqueue(app: App) -> Any:
        from soredi_sync.services.webhooks import prepare

        return prepare(app.uow_factory, app.settings.webhooks)

    def stuck_webhooks() -> float:
        with app.uow() as uow:
            return float(webhook_health(uow, app.settings.webhooks).stuck)

    metrics.set_webhooks_stuck_source(stuck_webhooks)
    jobs = Jobs(app, lease, observe=observe, webhooks=webhooks, webhook_enqueue=webhook_enqueue)
    scheduler = build_scheduler(jobs, settings)
    return Daemon(app, jobs, lease, scheduler, threading.Event())


def run(
    app: App,
    *,
    with_api: bool = True,
    api: ApiSettings | None = None,
    on_ready: Callable[[Daemon], None] | None = None,
    metrics: Metrics | None = None,
    log_format: str | None = None,
) -> int:
    """Run until SIGTERM/SIGINT.

    :returns: 0 after a clean stop; :data:`EXIT_ABANDONED` when a job was still running after
        the grace time (the caller should end the process at once: the job's thread would
        otherwise keep it alive)
    """
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    json_logs = (log_format or app.settings.logging.format) == "json"
    configured, log_settings = api_settings(app.settings)
    api = api or configured
    if with_api and api.workers > 1:
        from soredi_sync.daemon.api_workers import run_with_workers

        # It forks the workers before the scheduler's threads start.
        return run_with_workers(
            app, api, log_settings, on_ready=on_ready, metrics=metrics, json_logs=json_logs
        )
    daemon = build_daemon(app, metrics=metrics)
    start(daemon)
    metrics_server = None
    try:
        if with_api:
            _serve_api(daemon, api, on_ready, metrics, json_logs)
        else:
            port = app.settings.daemon.metrics_port
            if port is not None:
                metrics_server = start_metrics_server(port, instance=metrics or shared_metrics())
                logger.info("Metrics on %s", metrics_server.url)
            previous = _install_signal_handlers(daemon)
            try:
                if on_ready is not None:
                    on_ready(daemon)
                while not daemon.stop_event.wait(3600):
                    pass
            finally:
                _restore_signal_handlers(previous)
    finally:
        clean = shutdown(daemon)
        if metrics_server is not None:
            metrics_server.stop()
    return 0 if clean else EXIT_ABANDONED


def start(daemon: Daemon) -> None:
    """Start the scheduler (its threads) and log what it will run."""
    logger.info(engine_note(daemon.app))
    daemon.scheduler.start()
    for line in describe(daemon.scheduler):
        logger.info("Scheduled: %s", line)


def shutdown(daemon: Daemon) -> bool:
    """Stop the jobs, wait for the running ones within the grace time, release the lease.

    :returns: False when a job was still running after the grace time
    """
    daemon.stop()
    grace = daemon.app.settings.daemon.shutdown_grace_seconds
    logger.info("Stopping: waiting up to %.0f s for running jobs", grace)
    finished = threading.Event()

    def wait_for_jobs() -> None:
        try:
            daemon.scheduler.shutdown(wait=True)
        finally:
            finished.set()

    threading.Thread(target=wait_for_jobs, name="soredi-shutdown", daemon=True).start()
    clean = finished.wait(grace)
    if not clean:
        from soredi_sync.services.liveness import give_up_run_leases

        logger.error(
            "A job is still running after %.0f s; exiting without it (its transaction is "
            "rolled back by the database, the next leader records the run as abandoned)",
            grace,
        )
        give_up_run_leases()  # the process ends now: the next leader may close the run at once
    daemon.lease.release()
    logger.info("Stopped")
    return clean


def _install_signal_handlers(daemon: Daemon) -> dict[int, Any]:
    def handle(signum: int, _frame: FrameType | None) -> None:
        logger.info("Received %s; shutting down", signal.Signals(signum).name)
        daemon.stop()

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handle)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _serve_api(
    daemon: Daemon,
    api: ApiSettings,
    on_ready: Callable[[Daemon], None] | None,
    metrics: Metrics | None,
    json_logs: bool,
) -> None:
    import uvicorn

    from soredi_sync.api.app import create_app
    from soredi_sync.api.server import redact_root_handlers, uvicorn_config

    _settings, log_settings = api_settings(daemon.app.settings)
    redact_root_handlers()
    application = create_app(daemon.app, api, log_settings, metrics=metrics)
    application.state.daemon = daemon
    application.state.daemon_readiness = lambda: (
        "the daemon is stopping" if daemon.stop_event.is_set() else None
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            daemon.stop()  # jobs stop at once; uvicorn finishes its requests
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the captured SIGTERM after its shutdown, which would kill the
            # process before the scheduler stops; the daemon ends the process itself.
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if on_ready is not None and self.started:
                on_ready(daemon)

    # The access log as `serve` has it by default.
    Server(uvicorn_config(application, api, json_logs=json_logs)).run()
