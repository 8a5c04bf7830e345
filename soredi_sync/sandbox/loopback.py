"""What the sandbox's HTTP, SOAP and STS servers share: a quiet threaded server on loopback,
run in a background thread, with start/stop and a context manager; and a queue of injected
faults."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

logger = logging.getLogger(__name__)


class QuietHttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the process (or a test run) alive
    owner: Any  # the sandbox object the handlers answer for

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, a DNS round trip we neither need
        # nor want in tests.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or go away mid-answer are expected (that is what the faults
        # are for): log, do not print tracebacks to stderr.
        logger.debug("Sandbox request from %s failed", client_address, exc_info=True)


class QuietHttpServer6(QuietHttpServer):
    address_family = socket.AF_INET6


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler whose access lines go to the debug log, not stderr."""

    protocol_version = "HTTP/1.1"
    server: QuietHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s %s", self.server_version, self.address_string(), format % args)


class BackgroundServer:
    """Serves ``handler_class`` on ``host:port`` from a daemon thread.

    Subclasses set ``handler_class`` and ``name``; handlers reach the subclass instance as
    ``self.server.owner``.
    """

    handler_class: type[BaseHTTPRequestHandler]
    name = "sandbox"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self._httpd: QuietHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve from a background thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError(f"the {self.name} is already running")
        server_class = QuietHttpServer6 if ":" in self.host else QuietHttpServer
        httpd = server_class((self.host.strip("[]"), self.port), self.handler_class)
        httpd.owner = self
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("%s listening on %s:%d", self.name, self.host, httpd.server_port)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (wakes requests sleeping in a delay fault)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running_port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"the {self.name} is not running; call start() first")
        return self._httpd.server_port

    @property
    def url_host(self) -> str:
        host = self.host.strip("[]")
        return f"[{host}]" if ":" in host else host


class _Counted(Protocol):
    @property
    def times(self) -> int: ...


F = TypeVar("F", bound=_Counted)


class FaultQueue(Generic[F]):
    """Injected faults, each used for its next ``times`` matching requests, in the order added.

    Thread-safe: the servers' handler threads take faults while tests add and clear them.
    Faults are frozen dataclasses with a ``times`` field.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def add(self, fault: F) -> F:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[F]:
        with self._lock:
            return list(self._faults)

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first fault that ``matches``, counted down by one use (gone after its last)."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if matches(fault):
                    if fault.times <= 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, times=fault.times - 1)  # type: ignore[type-var]
                    return fault
        return None
