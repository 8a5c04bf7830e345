"""Ready before asked: when a new snapshot becomes current, a serving process prepares in the
background what the first request on it would otherwise wait seconds for on the national
profile — the routing index, the snapshot's audit findings (``App.audit_cache``) and whatever
else the console registers (the cut-over report of its default date). The FHIR directory's
index follows its stored versions rather than the snapshot (they are written just after the
snapshot, by the sync's follow-up step), so it is looked at on every round: a look that finds
nothing new is two indexed reads.

``[api] warm_seconds`` is how often the process looks for a new snapshot (one indexed read of
the current snapshot's id); 0 turns it off, and everything is then prepared on first use as
before. A job that fails is logged and tried again on the next new snapshot; requests never
wait for the warmer, they fill the same caches themselves if they come first (each cache lets
one caller compute and the others share its answer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from soredi_sync.bootstrap import App
from soredi_sync.ports.records import SnapshotInfo

logger = logging.getLogger(__name__)

WarmJob = Callable[[App, SnapshotInfo], object]


def warm_routing(app: App, _snapshot: SnapshotInfo) -> None:
    app.routing().resolver()


def warm_audit(app: App, snapshot: SnapshotInfo) -> None:
    with app.uow() as uow:
        app.audit_cache.findings(uow, app.reference.audit_context, snapshot)


def refresh_fhir_directory(app: App) -> None:
    app.fhir_directory().index()


DEFAULT_JOBS: tuple[WarmJob, ...] = (warm_routing, warm_audit)
RefreshJob = Callable[[App], object]
DEFAULT_REFRESHERS: tuple[RefreshJob, ...] = (refresh_fhir_directory,)


class CacheWarmer:
    """A daemon thread that runs ``jobs`` once for each new current snapshot, looking every
    ``interval`` seconds (and at once when started), and ``refreshers`` on every look (each
    brings its own cache up to date, cheaply when it is)."""

    def __init__(
        self,
        app: App,
        interval: float,
        jobs: Sequence[WarmJob] = DEFAULT_JOBS,
        name: str = "soredi-sync-warmer",
        refreshers: Sequence[RefreshJob] = DEFAULT_REFRESHERS,
    ) -> None:
        self._app = app
        self._interval = interval
        self._jobs = tuple(jobs)
        self._refreshers = tuple(refreshers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.warmed: tuple[int, object] | None = None  # (snapshot id, taken_at) last prepared

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop looking; a job under way finishes in the background (the thread is a daemon)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.warm_once()
            except Exception:
                logger.exception("Looking for a new snapshot to prepare failed")
            self.refresh()
            self._stop.wait(self._interval)

    def refresh(self) -> None:
        """Run every refresher (one that fails is logged; the next round tries again)."""
        for refresher in self._refreshers:
            if self._stop.is_set():
                return
            try:
                refresher(self._app)
            except Exception:
                logger.exception("Refreshing: %s failed", _name(refresher))

    def warm_once(self) -> bool:
        """Run the jobs if the current snapshot is not the one last prepared; whether it ran."""
        with self._app.uow() as uow:
            current = uow.registry.current_snapshot()
        if current is None or self.warmed == (current.id, current.taken_at):
            return False
        started = time.perf_counter()
        failed = 0
        for job in self._jobs:
            if self._stop.is_set():
                return False
            try:
                job(self._app, current)
            except Exception:
                failed += 1
                logger.exception("Preparing snapshot %d: %s failed", current.id, _name(job))
        self.warmed = (current.id, current.taken_at)
        logger.info(
            "Prepared snapshot %d for requests in %.1f s (%d of %d jobs failed)",
            current.id,
            time.perf_counter() - started,
            failed,
            len(self._jobs),
        )
        return True


def _name(job: WarmJob | RefreshJob) -> str:
    return getattr(job, "__qualname__", repr(job))
