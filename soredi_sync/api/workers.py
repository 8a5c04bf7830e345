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
"""

from __future__ import annotations

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
    """The listening socket every worker accepts on (IPv4 or IPv6 by the host's form)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(backlog)
    listener.set_inheritable(True)
    return listener


def supervise(workers: int, run_worker: Callable[[int], None]) -> int:
    """Fork ``workers`` processes running ``run_worker(number)`` and keep them running until
    SIGTERM or SIGINT; the exit status for this process."""
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False
    restarts: list[float] = []

    def start(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                run_worker(number)
            except BaseException:  # a worker reports and ends; the supervisor decides
                logger.exception("Worker %d failed", number)
                code = 1
            finally:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        children[pid] = number

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
