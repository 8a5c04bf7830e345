"""``soredi-sync run`` with ``[api] workers`` > 1: the scheduler here, the API in N forked workers.

The processes::

    soredi-sync run             the daemon: scheduler and lease (threads), signals
    └── API supervisor          one thread: forks the workers, starts a dead one again
        ├── worker 0            its own App, routing index, warm-up; uvicorn on the socket
        └── worker 1 ...

**Fork before threads.** The socket is bound and the API supervisor is forked while the daemon
still has its one thread: before the scheduler is built or started and before any
:class:`~soredi_sync.observability.metrics.Metrics` exists. The supervisor never starts a
thread, so it forks the workers (and any worker started again later, long after the
scheduler's threads run in the daemon) from a process in which no other thread can hold a
lock. Each worker bootstraps its own App, as under ``serve --workers``, and checks the
current snapshot before each decision: every answer is on the snapshot the leader stored last.

**Readiness in a worker.** ``/readyz`` judges what it judges in every API process, from the
database (it answers, a snapshot exists, the data is fresh: the leader's syncs show there,
whichever replica leads), and in a worker also the state of its daemon: a byte of memory the
daemon shares with all its descendants (:class:`DaemonState`, an anonymous shared mapping made
before the fork, so workers started again later see it too). It reads ``starting`` until the
scheduler runs and ``stopping`` from SIGTERM on; the worker answers 503 ``daemon-not-running``
then. No call into the daemon's objects, no file, no extra connection.

**Stopping.** SIGTERM or SIGINT to the daemon: the jobs are told to stop, the state turns
``stopping``, the supervisor gets SIGTERM and stops its workers (each finishes the requests it
has), then the scheduler is shut down as without workers (grace time, lease released). No
process is left: the daemon waits for the supervisor, the supervisor for its workers, and on
Linux each gets SIGTERM when its parent ends, even by SIGKILL. A supervisor that ends by
itself (workers dying more than :data:`~soredi_sync.api.workers.RESTARTS` times a minute, or
killed) stops the daemon too, exit 1: a service manager starts it again whole.

**Metrics.** The daemon and the workers write their values to files of a per-run directory
(prometheus_client's multiprocess mode); a scrape of any worker sums them, including the syncs
counted in the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from soredi_sync.api.settings import ApiSettings, DecisionLogSettings
from soredi_sync.bootstrap import App
from soredi_sync.daemon.runner import EXIT_ABANDONED, Daemon, build_daemon, shutdown, start
from soredi_sync.observability.metrics import Metrics

logger = logging.getLogger(__name__)

STARTING, RUNNING, STOPPING = b"s", b"r", b"x"
_REASONS = {
    STARTING: "the daemon is starting (its scheduler does not run yet)",
    STOPPING: "the daemon is stopping",
}


class DaemonState:
    """The daemon's state in one byte of memory shared with every process forked after it is
    made (:data:`STARTING`, :data:`RUNNING`, :data:`STOPPING`); written by the daemon, read by
    the API workers. A single byte: no lock needed to read or write it whole."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 1)  # anonymous and shared: forked children see writes
        self.set(STARTING)

    def set(self, state: bytes) -> None:
        self._memory[0:1] = state

    def not_ready(self) -> str | None:
        """Why the daemon is not ready, or None while it runs (a worker's ``/readyz``)."""
        return _REASONS.get(self._memory[0:1])


def run_with_workers(
    app: App,
    api: ApiSettings,
    log_settings: DecisionLogSettings,
    *,
    on_ready: Callable[[Daemon], None] | None = None,
    metrics: Metrics | None = None,
    json_logs: bool = False,
) -> int:
    """The daemon with its API in ``api.workers`` processes, until SIGTERM or SIGINT.

    :param metrics: where the daemon's jobs record (default: the shared instance, built here
        in multiprocess mode so that the workers' scrapes show it)
    :returns: 0 after a clean stop; 1 when the API's supervisor ended by itself;
        :data:`~soredi_sync.daemon.runner.EXIT_ABANDONED` as :func:`.runner.run`
    """
    from soredi_sync.api.server import redact_root_handlers
    from soredi_sync.api.workers import bound, fork, supervise
    from soredi_sync.observability.metrics import metrics_across_processes, process_ended

    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:  # pragma: no cover - nothing the daemon starts runs before this point
        logger.warning("Forking the API workers while other threads run: %s", ", ".join(others))
    redact_root_handlers()  # here as without workers; the workers inherit the handlers
    with metrics_across_processes():
        listener = bound(api.host, api.port, api.backlog)
        if listener is None:  # nothing started yet
            return 1
        state = DaemonState()
        app.engine.dispose()  # no connection of this process is inherited by a worker
        serve_workers = _worker_runner(app, api, log_settings, listener, state, json_logs)
        supervisor = fork(
            lambda: supervise(api.workers, serve_workers, on_exit=process_ended),
            "The API supervisor",
        )
        port = listener.getsockname()[1]
        listener.close()  # the workers accept; this process only supervises
        logger.info("API on http://%s:%d/ in %d workers", api.host, port, api.workers)

        # From here on threads may start: everything that forks has been forked.
        try:
            daemon = build_daemon(app, metrics=metrics)
        except BaseException:
            _end(supervisor)
            raise
        stopping = threading.Event()

        def handle(signum: int, _frame: FrameType | None) -> None:
            logger.info("Received %s; shutting down", signal.Signals(signum).name)
            stopping.set()
            state.set(STOPPING)
            daemon.stop()
            with contextlib.suppress(ProcessLookupError):
                os.kill(supervisor, signal.SIGTERM)

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        code, ended = 0, False
        try:
            start(daemon)
            state.set(RUNNING)
            if on_ready is not None:
                on_ready(daemon)
            _pid, status = os.waitpid(supervisor, 0)  # until the API ends
            ended = True
            if not stopping.is_set():
                logger.error(
                    "The API workers' supervisor ended (%d): stopping the daemon",
                    os.waitstatus_to_exitcode(status),
                )
                code = 1
        finally:
            state.set(STOPPING)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if not ended:  # an exception above: the API goes too
                _end(supervisor)
            clean = shutdown(daemon)
        return code if clean else EXIT_ABANDONED


def _worker_runner(
    app: App,
    api: ApiSettings,
    log_settings: DecisionLogSettings,
    listener: Any,
    state: DaemonState,
    json_logs: bool,
) -> Callable[[int], None]:
    """What each worker runs: its own App and API on the inherited socket, ready while the
    daemon runs."""

    def serve(_number: int) -> None:
        import uvicorn

        from soredi_sync.api.app import create_app
        from soredi_sync.api.server import uvicorn_config
        from soredi_sync.bootstrap import bootstrap

        with bootstrap(app.settings, app.reference) as own:
            application = create_app(own, api, log_settings)
            application.state.daemon_readiness = state.not_ready
            config = uvicorn_config(application, api, json_logs=json_logs)
            uvicorn.Server(config).run(sockets=[listener])

    return serve


def _end(pid: int) -> None:
    """The supervisor stopped and reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
