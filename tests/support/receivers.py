"""Webhook receivers on 127.0.0.1.

:class:`Receiver` records every POST and answers as scripted (the fixture ``receiver`` of
``tests/integration/webhooks`` starts one).

The misbehaving receivers (:func:`misbehaving`) are written on raw sockets so that every byte
they send is under the test's control: a receiver that trickles its answer, one that answers a
body of any size (generated, never stored), one that trickles its status line.

Each records what it managed to send and whether the client closed the connection before the
answer was complete, so a test can tell "cut off" from "read to the end" without timing it.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # an answer script entry: do not answer until the test ends


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def cursors(self) -> list[int]:
        return [c["cursor"] for c in self.payload["changes"]]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as scripted.

    ``answers`` is consumed one entry per request (a status code, or ``HANG``); when it is
    empty the answer is ``default``.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: deque[int] = deque()
        self.default = 204
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(dict(self.headers.items()), body))
                answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer == HANG:
                    receiver._release.wait(10)
                    answer = 200
                try:
                    self.send_response(answer)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


TRICKLE = "trickle"  # headers at once, then the body one byte every `interval` seconds
TRICKLE_HEADERS = "trickle-headers"  # the status line and headers one byte at a time
HUGE = "huge"  # a body of `size` bytes, as fast as the client reads it
OK = "ok"  # 204, after `delay` seconds


@dataclass
class Answered:
    """One request and how its answer went."""

    headers: dict[str, str]
    body: bytes
    planned: int = 0  # bytes the answer would have had in all
    sent: int = 0  # bytes of it the receiver managed to send
    cut_off: bool = False  # the client closed the connection before the answer was complete
    done: threading.Event = field(default_factory=threading.Event)  # the handler has ended


class MisbehavingReceiver:
    """An HTTP/1.1 receiver that answers every POST in ``mode`` (changeable between requests).

    :param interval: seconds between trickled bytes
    :param limit: bytes trickled at most (the answer then ends normally)
    :param size: the body size in ``HUGE`` mode
    :param delay: seconds before an ``OK`` answer
    """

    def __init__(
        self,
        mode: str = OK,
        *,
        interval: float = 0.1,
        limit: int = 200,
        size: int = 1024**3,
        delay: float = 0.0,
    ) -> None:
        self.mode = mode
        self.interval = interval
        self.limit = limit
        self.size = size
        self.delay = delay
        self.answered: list[Answered] = []
        self._stop = threading.Event()
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> MisbehavingReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_answered(self, count: int = 1, timeout: float = 30) -> list[Answered]:
        """The first ``count`` requests, once their handlers have ended."""
        ends = time.monotonic() + timeout
        while len(self.answered) < count and time.monotonic() < ends:
            time.sleep(0.02)
        assert len(self.answered) >= count, f"{len(self.answered)} requests, not {count}"
        for answered in self.answered[:count]:
            assert answered.done.wait(max(ends - time.monotonic(), 0.1)), "still answering"
        return self.answered[:count]

    # -- one connection ---------------------------------------------------------------------

    def _handle(self, sock: socket.socket) -> None:
        request = _read_request(sock)
        if request is None:
            return
        answered = Answered(*request)
        self.answered.append(answered)
        try:
            self._answer(sock, answered)
        except OSError:  # the client closed the connection: it stopped reading
            answered.cut_off = True
        finally:
            answered.done.set()

    def _answer(self, sock: socket.socket, answered: Answered) -> None:
        mode = self.mode
        if mode == OK:
            self._stop.wait(self.delay)
            self._send(sock, answered, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            return
        if mode == TRICKLE_HEADERS:
            head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * self.limit + b"\r\n\r\n"
            answered.planned = len(head)
            for i in range(len(head)):
                self._send(sock, answered, head[i : i + 1])
                if self._stop.wait(self.interval):
                    return
            return
        if mode == TRICKLE:
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.limit
            answered.planned = len(head) + self.limit
            self._send(sock, answered, head)
            for _ in range(self.limit):
                if self._stop.wait(self.interval):
                    return
                self._send(sock, answered, b".")
            return
        if mode == HUGE:
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.size
            answered.planned = len(head) + self.size
            self._send(sock, answered, head)
            chunk = bytes(64 * 1024)
            left = self.size
            while left > 0 and not self._stop.is_set():
                piece = chunk[: min(left, len(chunk))]
                self._send(sock, answered, piece)
                left -= len(piece)
            return
        raise AssertionError(f"unknown mode {mode!r}")

    @staticmethod
    def _send(sock: socket.socket, answered: Answered, data: bytes) -> None:
        sock.sendall(data)
        answered.sent += len(data)


def _read_request(sock: socket.socket) -> tuple[dict[str, str], bytes] | None:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return headers, body


@contextmanager
def misbehaving(mode: str = OK, **options: float) -> Iterator[MisbehavingReceiver]:
    receiver = MisbehavingReceiver(mode, **options).start()  # type: ignore[arg-type]
    try:
        yield receiver
    finally:
        receiver.stop()
