"""The daemon's jobs: use cases run on schedule, only on the leader, stoppable on shutdown.

Each job is a method of :class:`Jobs` that the scheduler calls without arguments. Sync jobs run
only while this replica holds the lease; the use cases themselves (``services.*``) know nothing
of schedules or leadership.

After every sync that stored a snapshot: what ``soredi-sync sync`` does after one too
(:func:`~soredi_sync.services.after_sync.after_sync`: verify the open change plans on it, store
its audit and adoption summary), then queue its changes for the change subscriptions (database
work only). Each of these follow-ups is independent: one failing is logged and does not undo
the sync or skip the others. The webhook POSTs themselves run in their own job
(:meth:`Jobs.deliver_webhooks`, on its own executor), woken after the sync: a slow or hanging
receiver never holds up a sync, the lease or the schedule.

Shutdown: :meth:`Jobs.request_stop` makes a running sync stop at its next stage or download
chunk; it then fails with "interrupted by shutdown" and stores nothing (the snapshot is written
in one transaction, after the last check, so a sync is never left half-stored).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from soredi_sync.bootstrap import App
from soredi_sync.daemon.leader import Lease
from soredi_sync.errors import SorediError
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.health import SourceHealth, source_health

if TYPE_CHECKING:
    from soredi_sync.services.after_sync import FinishedRun

logger = logging.getLogger(__name__)

FILES = "sor-filer"
INCREMENTAL = "skrs"


class ShutdownRequested(SorediError):
    def __init__(self) -> None:
        super().__init__("interrupted by shutdown; nothing stored, the next run starts over")


@dataclass
class JobLog:
    """What the jobs did, for tests and the status page (bounded)."""

    events: list[tuple[str, str]] = field(default_factory=list)
    limit: int = 200

    def add(self, job: str, result: str) -> None:
        self.events.append((job, result))
        del self.events[: -self.limit]


class Jobs:
    """The use cases the scheduler runs, bound to one app, one lease and one stop flag.

    :param observe: called with ``(source, outcome, health)`` after each sync run (metrics)
    :param after_sync: extra follow-ups after a stored snapshot, each ``(app) -> Any``
    :param webhooks: sends the due webhook deliveries, ``(app) -> Any`` (the webhook job)
    :param webhook_enqueue: queues a stored snapshot's changes for the subscriptions,
        ``(app) -> Any`` (a follow-up; no HTTP)
    """

    def __init__(
        self,
        app: App,
        lease: Lease,
        *,
        observe: Callable[[str, Any, SourceHealth], None] | None = None,
        after_sync: tuple[Callable[[App], Any], ...] = (),
        webhooks: Callable[[App], Any] | None = None,
        webhook_enqueue: Callable[[App], Any] | None = None,
    ) -> None:
        self.app = app
        self.lease = lease
        self.stopping = threading.Event()
        self.log = JobLog()
        self._observe = observe
        self._after_sync = after_sync
        self._webhooks = webhooks
        self._webhook_enqueue = webhook_enqueue
        # Set by the scheduler: run the webhook job now (after a sync queued deliveries).
        self.on_webhooks_wanted: Callable[[], Any] | None = None
        self._webhook_lock = threading.Lock()  # one webhook pass at a time in this process
        self._webhooks_again = threading.Event()  # wanted while a pass was running
        self._sync_lock = threading.Lock()  # one sync at a time in this process, files or feed

    def request_stop(self) -> None:
        self.stopping.set()

    def _check_stop(self, *_args: object) -> None:
        if self.stopping.is_set():
            raise ShutdownRequested()

    # -- leadership ------------------------------------------------------------------------

    def refresh_lease(self) -> None:
        if self.stopping.is_set():
            return
        if self.lease.refresh():
            self._close_abandoned_runs()

    def _close_abandoned_runs(self) -> None:
        """Runs still 'running' whose process stopped renewing their liveness lease belong to
        a process that died; record them as failed so history and health are right. A sync
        alive in another process or on another host (a CLI sync) renews its lease and is left
        alone (:mod:`soredi_sync.services.liveness`). Done on every refresh while leading, so a
        run is closed soon after its lease runs out, not only when leadership changes hands."""
        with self.app.uow() as uow:
            closed = uow.runs.close_abandoned(
                "abandoned: the process running it ended before it finished"
            )
            uow.commit()
        if closed:
            logger.warning(
                "Recorded %d sync run(s) left running by a dead process as failed: %s",
                len(closed),
                ", ".join(map(str, closed)),
            )

    # -- syncs -----------------------------------------------------------------------------

    def full_sync(self) -> None:
        """Pull the nightly files (leader only)."""
        if not self._may_sync("full sync"):
            return
        from soredi_sync.services.sync import sync_source

        with self._sync_lock:
            outcome = sync_source(
                self.app.uow_factory,
                self.app.files_client(),
                self.app.sync_config(),
                trigger="schedule",
                on_stage=self._check_stop,
                on_download=self._check_stop,
            )
        self._after_run(FILES, outcome)

    def incremental_sync(self) -> None:
        """Pull the SKRS feed after the stored cursor (leader only)."""
        if not self._may_sync("incremental sync"):
            return
        from soredi_sync.services.incremental import sync_incremental
        from soredi_sync.soap.skrs import make_skrs_client

        soap = self.app.settings.soap
        with self._sync_lock:
            try:
                client = make_skrs_client(soap)
            except SorediError as exc:
                logger.error("Incremental sync cannot start: %s", exc)
                self.log.add("incremental sync", f"failed: {exc}")
                return
            outcome = sync_incremental(
                self.app.uow_factory,
                _StoppablePages(client, self._check_stop),
                location=soap.skrs.address or soap.skrs.wsdl,
                trigger="schedule",
                max_removal_ratio=self.app.settings.guards.max_capability_removal_ratio,
            )
        self._after_run(INCREMENTAL, outcome)

    def _may_sync(self, job: str) -> bool:
        if self.stopping.is_set():
            self.log.add(job, "skipped: stopping")
            return False
        if not self.lease.is_leader:
            logger.debug("Not the leader; %s skipped", job)
            self.log.add(job, "skipped: not the leader")
            return False
        return True

    def _after_run(self, source: str, outcome: Any) -> None:
        status = outcome.status
        self.log.add(f"{source} sync", status.value)
        settings = self.app.settings.daemon
        with self.app.uow() as uow:
            health = source_health(uow, source, settings.degraded_after_failures)
        observe = self._observe
        if observe is not None:
            _quietly("metrics", lambda: observe(source, outcome, health))
        if health.degraded:
            logger.error(
                "Source %s is degraded: %d failed runs in a row (last: %s)",
                source,
                health.consecutive_failures,
                health.last_error,
            )
        if status is RunStatus.SUCCEEDED:
            self._follow_up(outcome)

    def _follow_up(self, outcome: FinishedRun) -> None:
        """What follows a stored snapshot (:mod:`soredi_sync.services.after_sync`), then the
        daemon's own: the extra follow-ups and queueing the changes for the webhooks."""
        from soredi_sync.services.after_sync import Step, after_sync

        app = self.app
        steps = [Step("follow-up", partial(extra, app)) for extra in self._after_sync]
        if self._webhook_enqueue is not None:
            steps.append(Step("webhook enqueue", partial(self._webhook_enqueue, app)))
        follow_up = after_sync(
            app.uow_factory,
            app.reference.audit_context,
            outcome,
            directory_context=app.reference.directory_context,
            then=steps,
        )
        for name in follow_up.done:
            self.log.add(name, "done")
        self.want_webhooks()

    # -- housekeeping ----------------------------------------------------------------------

    def want_webhooks(self) -> None:
        """Have the webhook job run now, in its own thread (never this one): at once if it is
        idle, else once more when its current pass ends. Not once stopping: the scheduler's
        shutdown holds its job-store lock while it waits for the running jobs, so a job adding
        one then would wait for the shutdown, and the shutdown for it, until the grace time
        ran out (the deliveries stay queued for the next leader)."""
        if self._webhooks is None or self.stopping.is_set():
            return
        self._webhooks_again.set()
        wake = self.on_webhooks_wanted
        if wake is not None and not self._webhook_lock.locked():
            _quietly("webhook wake-up", wake)

    def deliver_webhooks(self) -> None:
        """Serve the change subscriptions (leader only). Deliveries are claimed before they
        are sent, so another dispatcher (a replica that just took over, an operator's
        ``webhook dispatch``) never sends the same one at the same time."""
        webhooks = self._webhooks
        while webhooks is not None and not self.stopping.is_set() and self.lease.is_leader:
            if not self._webhook_lock.acquire(blocking=False):
                self._webhooks_again.set()  # the pass running now goes round once more
                return
            try:
                self._webhooks_again.clear()
                if _quietly("webhook delivery", lambda: webhooks(self.app)):
                    self.log.add("webhooks", "done")
            finally:
                self._webhook_lock.release()
            if not self._webhooks_again.is_set():
                return

    def count_traffic(self) -> None:
        """Count the decision log into the daily traffic counts (leader only)."""
        if self.stopping.is_set() or not self.lease.is_leader:
            return
        from soredi_sync.services.traffic import update_traffic

        done = update_traffic(self.app.uow, self.app.traffic_owners(), datetime.now(UTC))
        self.log.add("traffic", f"counted {done.decisions} decisions of {len(done.days)} day(s)")

    def purge_decisions(self) -> None:
        """Delete decisions older than the retention, once they are counted (leader only)."""
        if self.stopping.is_set() or not self.lease.is_leader:
            return
        from soredi_sync.services.decision_log import purge_decisions, retention_cutoff

        self.count_traffic()
        days = self.app.settings.decision_log.retention_days
        cutoff = retention_cutoff(datetime.now(UTC), days)
        count = purge_decisions(self.app.uow, cutoff)
        self.log.add("decision retention", f"purged {count}")


class _StoppablePages:
    """The SKRS client, checking for shutdown before every page."""

    def __init__(self, client: Any, check: Callable[[], None]) -> None:
        self._client = client
        self._check = check

    def pages(self, offset: str | None = None, *, max_records: int | None = None) -> Any:
        for page in self._client.pages(offset, max_records=max_records):
            yield page
            self._check()


def _quietly(name: str, step: Callable[[], Any]) -> bool:
    try:
        step()
    except Exception:
        logger.exception("The %s after the sync failed; the sync itself stands", name)
        return False
    return True
