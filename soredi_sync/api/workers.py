"""``soredi-sync serve --workers N``: N processes answering on one listening socket.

The socket is bound once, here, and each worker is forked from this process before it opens
anything of its own: it builds its own :class:`~soredi_sync.bootstrap.App` (engine, routing
index, caches, the background warm-up) and runs uvicorn on the inherited socket, where the
kernel hands each new connection to one of them. Every worker checks the current snapshot
before each decision, as a single process does, so no worker answers on an older snapshot
once a newer one is stored.

The supervisor (this process) forwards SIGTERM and SIGINT to the workers and waits for them;
a worker that ends on its own is started again, at most :data:`RESTARTS` times a minute
(then the supervisor stops them all and exits 1: something is wrong that a restart does not
cure). uvicorn's own ``workers`` cannot be used: it spawns fresh interpreters that must
unpickle the configuration, and the project's connection guards are classes made at run time.

The supervisor forks only while it has one thread (``serve``: it starts none; ``run``: the
daemon forks it before its scheduler starts, ``daemon/api_workers.py``), so no worker inherits
a lock another thread held. On Linux each forked process is sent SIGTERM when its parent ends,
however it ends (``PR_SET_PDEATHSIG``): a supervisor killed with SIGKILL leaves no worker
serving on the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)

RESTARTS = 5  # per minute, before the supervisor gives up


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket every worker accepts on (IPv4 or IPv6 by the host's form).

    :raises OSError: the address cannot be had (in use, not this host's)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def bound(host: str, port: int, backlog: int) -> socket.socket | None:
    """:func:`bind`, or None with the reason logged (as uvicorn does) when it fails."""
    try:
        return bind(host, port, backlog)
    except OSError as exc:
        logger.error("Cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return None


def _end_with_parent(parent: int) -> None:
    """Linux: SIGTERM to this process when its parent ends; ends now if it has already."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the request above took effect
        os._exit(1)


def fork(run: Callable[[], int | None], what: str) -> int:
    """A child process running ``run()`` and ending with its result (0 for ``None``, 1 when
    it raised); it gets SIGTERM when this process ends. The child's pid."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: it never returns into the caller's stack
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _end_with_parent(parent)
        code = run() or 0
    except BaseException:  # the child reports and ends; its parent decides
        logger.exception("%s failed", what)
        code = 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def supervise(
    workers: int,
    run_worker: Callable[[int], None],
    *,
    on_exit: Callable[[int], None] | None = None,
) -> int:
    """Fork ``workers`` processes running ``run_worker(number)`` and keep them running until
    SIGTERM or SIGINT; the exit status for this process.

    :param on_exit: called with the pid of each worker that ended (started again or not)
    """
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False
    restarts: list[float] = []

    def start(number: int) -> None:
        children[fork(lambda: run_worker(number), f"Worker {number}")] = number

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for number in range(workers):
            start(number)
        logger.info("Serving with %d workers (pids %s)", workers, sorted(children))
        status = 0
        while children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait itself
                continue
            if pid not in children:
                continue
            number = children.pop(pid)
            if on_exit is not None:
                on_exit(pid)
            if stopping:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            now = time.monotonic()
            restarts[:] = [t for t in restarts if now - t < 60] + [now]
            if len(restarts) > RESTARTS:
                logger.error(
                    "Worker %d ended (%d) and workers ended %d times within a minute: stopping",
                    number,
                    code,
                    len(restarts),
                )
                status = 1
                stop(signal.SIGTERM, None)
                continue
            logger.warning("Worker %d (pid %d) ended with %d: starting it again", number, pid, code)
            start(number)
        return status
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
