"""Abusive clients against the real server: a real uvicorn on 127.0.0.1, configured as
``soredi-sync serve`` configures it (``api/connections.uvicorn_limits``), driven over raw
sockets, over the last good snapshot.

Each case records what the server answered (status, reason as answered) and what else it did
(what it read, when it closed the connection, how a normal caller fared meanwhile); after each,
the snapshot is intact, the in-process API still serves it, and a normal caller of the real
server gets its routing decision.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from soredi_sync.api import create_app
from soredi_sync.api.connections import uvicorn_limits
from soredi_sync.api.settings import ApiSettings
from soredi_sync.bootstrap import App
from tests.support.api import QUIET_LOG
from tests.support.faults.invariants import LastGood
from tests.support.faults.report import Case
from tests.support.fhir import care_communication, organization
from tests.support.live_server import uvicorn_in_thread

MB = 1024 * 1024
PROTOCOLS = ["h11", "httptools"]


# -- a real server and raw clients --------------------------------------------------------


@dataclass
class LiveApi:
    host: str
    port: int
    settings: ApiSettings

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextmanager
def live_api(app: App, **limits: Any) -> Iterator[LiveApi]:
    """The API over ``app`` served by uvicorn in a thread, with ``[api]`` limits overridden."""
    settings = ApiSettings(**limits)
    asgi = create_app(app, settings, QUIET_LOG)
    with uvicorn_in_thread(asgi, **uvicorn_limits(settings)) as (host, port):
        yield LiveApi(host, port, settings)


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed: bool = False  # the server closed the connection after (or instead of) answering

    def json(self) -> Any:
        return json.loads(self.body)


def read_answer(sock: socket.socket, timeout: float) -> Answer:
    """One HTTP/1.1 response from ``sock`` (status None if the server closed without one),
    and whether the server then closed the connection (within ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    with suppress(ConnectionResetError, TimeoutError):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return Answer(None, closed=True) if not data else _parse(data, closed=True)
            data += chunk
        answer = _parse(data, closed=False)
        length = int(answer.headers.get("content-length", "0"))
        while len(answer.body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer.body += chunk
        try:
            answer.closed = sock.recv(1) == b""
        except ConnectionResetError:  # closed with the client's bytes unread: a reset
            answer.closed = True
        return answer
    return _parse(data, closed=False) if data else Answer(None)


def _parse(data: bytes, closed: bool) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, closed)


def request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def normal_decision(api: LiveApi, last_good: LastGood, timeout: float = 10.0) -> Answer:
    """A gateway's routing question over a fresh connection."""
    body = json.dumps(
        {
            "receiver": {"gln": last_good.probe_gln},
            "business_message": "correspondence",
            "sender_syntax": "fhir",
        }
    ).encode()
    head = request_head(
        "POST",
        "/v1/route",
        Authorization=f"Bearer {last_good.token}",
        Content_Type="application/json",
        Content_Length=str(len(body)),
    )
    with api.connect(timeout) as sock:
        sock.sendall(head + body)
        return read_answer(sock, timeout)


def assert_still_served(api: LiveApi, last_good: LastGood) -> float:
    """The snapshot is intact and served in process and by the real server; the seconds the
    real server took to answer a normal caller."""
    last_good.assert_snapshot_intact()
    last_good.assert_served()
    started = time.monotonic()
    answer = normal_decision(api, last_good)
    assert answer.status == 200, answer
    assert answer.json()["snapshot"]["id"] == last_good.snapshot.id
    return time.monotonic() - started


def send_until_closed(sock: socket.socket, total: int, chunk: int = 64 * 1024) -> int:
    """Send up to ``total`` bytes of body; the bytes the server let through before it closed."""
    sent = 0
    piece = b"x" * chunk
    sock.settimeout(10)
    with suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
        while sent < total:
            sent += sock.send(piece[: min(chunk, total - sent)])
    return sent


def count_closed(socks: list[socket.socket], timeout: float) -> int:
    """How many of ``socks`` the server closes (EOF without a byte) within ``timeout``."""
    pending = {sock.fileno(): sock for sock in socks}
    closed = 0
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(max(deadline - time.monotonic(), 0)):
                sock = pending.pop(key.fd)
                selector.unregister(sock)
                sock.setblocking(False)
                with suppress(BlockingIOError, ConnectionResetError):
                    closed += sock.recv(1) == b""
    return closed


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "raise ulimit -n"


# -- the cases -----------------------------------------------------------------------------


class TestAbusiveBodies:
    def test_four_anonymous_81_mb_bodies_are_refused_unread_while_a_caller_is_answered(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "anonymous huge bodies",
            "4 connections at once: POST /v1/route without a token, Content-Length 81 MB, "
            "the body streamed until the server stops taking it",
        )
        record = last_good.begin(case)
        size = 81 * MB
        head = request_head(
            "POST", "/v1/route", Content_Type="application/json", Content_Length=str(size)
        )
        with live_api(last_good.app) as api:
            clients = [api.connect() for _ in range(4)]
            answers: list[Answer] = []
            for sock in clients:
                sock.sendall(head + b"x" * 65536)
            answers = [read_answer(sock, 5) for sock in clients]
            sent = [65536 + send_until_closed(sock, size - 65536) for sock in clients]
            during = normal_decision(api, last_good)
            for sock in clients:
                sock.close()
            for answer in answers:
                assert answer.status == 401, answer
                assert answer.headers["connection"] == "close"
                assert answer.closed
                assert answer.json()["detail"] == "a bearer token is required"
            assert max(sent) < size / 4, sent
            assert during.status == 200, during
            assert_still_served(api, last_good)
        record.status = "HTTP 401"
        record.reason = answers[0].json()["detail"]
        record.did = (
            "answered on the request head, before the body; `Connection: close` and the "
            f"connection closed: at most {max(sent) / MB:.1f} MB of each 81 MB got into the "
            "socket buffers; a normal caller's routing decision answered meanwhile"
        )
        record.data_lost = "none"

    def test_a_bundle_of_two_million_empty_entries_is_refused_by_its_element_budget(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "bundle of empty entries",
            "POST /v1/route/bundle with a valid token: a CareCommunication (FHIR JSON) followed "
            "by 2,000,000 empty entries (scaled down from 18 M)",
        )
        record = last_good.begin(case)
        bundle = care_communication(receiver=organization("rcv", last_good.probe_gln, None))
        text = json.dumps(bundle)
        assert text.endswith("]}")
        body = (text[:-2] + ", {}" * 2_000_000 + "]}").encode()
        head = request_head(
            "POST",
            "/v1/route/bundle",
            Authorization=f"Bearer {last_good.token}",
            Content_Type="application/fhir+json",
            Content_Length=str(len(body)),
        )
        with live_api(last_good.app) as api:
            with api.connect(30) as sock:
                sock.sendall(head + body)
                answer = read_answer(sock, 30)
            assert answer.status == 422, answer
            problem = answer.json()
            assert problem["bundle_problem"] == "too-many-elements"
            assert "max_bundle_elements" in problem["detail"]
            assert_still_served(api, last_good)
        record.status = "HTTP 422"
        record.reason = problem["detail"]
        record.did = (
            f"a {len(body) / MB:.0f} MB body read, its structure scanned up to the "
            "100,000-element budget and nothing built; snapshot kept and served"
        )
        record.data_lost = "none"

    def test_a_body_sent_a_little_at_a_time_is_cut_off_at_the_body_deadline(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "slow body",
            "POST /v1/route/bundle with a valid token, Content-Length 100 KB, 1 KB every "
            "0.2 s (body_timeout_seconds 1)",
        )
        record = last_good.begin(case)
        head = request_head(
            "POST",
            "/v1/route/bundle",
            Authorization=f"Bearer {last_good.token}",
            Content_Type="application/fhir+json",
            Content_Length=str(100 * 1024),
        )
        with live_api(last_good.app, body_timeout_seconds=1) as api:
            with api.connect() as sock:
                sock.sendall(head)
                started = time.monotonic()
                sock.settimeout(0.2)
                answer: Answer | None = None
                sent = 0
                while answer is None and time.monotonic() - started < 10:
                    with suppress(BrokenPipeError, ConnectionResetError):
                        sent += sock.send(b"x" * 1024)
                    with suppress(TimeoutError):
                        if sock.recv(1, socket.MSG_PEEK):
                            answer = read_answer(sock, 5)
                elapsed = time.monotonic() - started
            assert answer is not None and answer.status == 408, answer
            assert answer.json()["type"] == "urn:soredi-sync:problem:body-timeout"
            assert answer.closed
            assert elapsed < 1 + 3, elapsed  # cut off at the deadline, not when it ended
            assert sent < 100 * 1024
            assert_still_served(api, last_good)
        record.status = "HTTP 408"
        record.reason = answer.json()["detail"]
        record.did = (
            f"cut off {elapsed:.1f} s after the head, {sent // 1024} KB of 100 KB received; "
            "connection closed"
        )
        record.data_lost = "none"


class TestAbusiveConnections:
    @pytest.mark.parametrize("protocol", PROTOCOLS)
    def test_a_client_sending_its_headers_a_byte_at_a_time_is_cut_off_at_the_deadline(
        self, last_good: LastGood, protocol: str
    ) -> None:
        case = Case(
            f"slow headers ({protocol})",
            "GET /readyz whose headers come 1 byte every 0.1 s, 10 s worth "
            "(header_timeout_seconds 1)",
        )
        record = last_good.begin(case)
        head = request_head("GET", "/readyz", X_Padding="p" * 100)
        with live_api(last_good.app, http_protocol=protocol, header_timeout_seconds=1) as api:
            with api.connect() as sock:
                started = time.monotonic()
                sent = 0
                closed_at: float | None = None
                with suppress(BrokenPipeError, ConnectionResetError):
                    while sent < len(head) - 1 and time.monotonic() - started < 10:
                        sock.sendall(head[sent : sent + 1])
                        sent += 1
                        sock.settimeout(0.1)
                        with suppress(TimeoutError):
                            if sock.recv(1, socket.MSG_PEEK) is not None:
                                closed_at = time.monotonic() - started
                                break
                answer = read_answer(sock, 5)
            assert closed_at is not None, "the server never cut the slow client off"
            assert closed_at < 1 + 3, closed_at
            assert answer.status == 408, answer
            assert answer.closed
            assert_still_served(api, last_good)
        record.status = "HTTP 408"
        record.reason = answer.body.decode().strip()
        record.did = (
            f"connection closed {closed_at:.1f} s after it opened, {sent} of {len(head)} "
            "header bytes received"
        )
        record.data_lost = "none"

    @pytest.mark.parametrize("protocol", PROTOCOLS)
    def test_a_request_head_over_the_cap_is_refused(
        self, last_good: LastGood, protocol: str
    ) -> None:
        case = Case(
            f"huge headers ({protocol})",
            "GET /readyz with 64 KB of headers (max_header_bytes 16 KB)",
        )
        record = last_good.begin(case)
        head = request_head("GET", "/readyz", **{f"X-Pad-{i}": "p" * 1000 for i in range(64)})
        with live_api(last_good.app, http_protocol=protocol, max_header_bytes=16_384) as api:
            with api.connect() as sock:
                with suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(head)
                answer = read_answer(sock, 5)
            # Arrived in one read, the head is complete and the middleware refuses it (431
            # problem); in pieces, h11's own cap (400) or the guarded protocol's (431) does.
            assert answer.status in ((400, 431) if protocol == "h11" else (431,)), answer
            assert answer.closed
            assert_still_served(api, last_good)
        record.status = f"HTTP {answer.status}"
        problem = answer.headers.get("content-type") == "application/problem+json"
        record.reason = answer.json()["detail"] if problem else answer.body.decode().strip()
        record.did = "connection closed; no route ran"
        record.data_lost = "none"

    def test_two_thousand_idle_connections_are_closed_and_do_not_keep_a_caller_out(
        self, last_good: LastGood
    ) -> None:
        idle_count = 2_000
        case = Case(
            "idle connections",
            f"{idle_count:,} connections opened from one client that never send a byte "
            "(scaled down from 20,000; limit_concurrency 500, header_timeout_seconds 2)",
        )
        record = last_good.begin(case)
        raise_fd_limit(2 * idle_count + 500)
        with live_api(last_good.app, limit_concurrency=500, header_timeout_seconds=2) as api:
            idle = [api.connect() for _ in range(idle_count)]
            opened = time.monotonic()
            try:
                first = normal_decision(api, last_good)
                answers = [first]
                while answers[-1].status != 200 and time.monotonic() - opened < 15:
                    time.sleep(0.2)
                    answers.append(normal_decision(api, last_good))
                served_after = time.monotonic() - opened
                closed = count_closed(idle, timeout=10)
            finally:
                for sock in idle:
                    sock.close()
            # While the idle connections fill the limit, a caller is told so at once (503),
            # not left waiting; once they are cut off at the header deadline, it is served.
            assert first.status in (200, 503), first
            assert answers[-1].status == 200, answers[-1]
            assert closed == idle_count
            assert_still_served(api, last_good)
        refused = sum(a.status == 503 for a in answers)
        record.status = "HTTP 503, then 200"
        record.reason = "(no problem document: uvicorn's own 503 beyond limit_concurrency)"
        record.did = (
            f"a normal caller got {refused} prompt 503 answer(s) while the idle connections "
            f"filled the limit, then its decision {served_after:.1f} s after they were "
            f"opened; all {idle_count:,} idle connections closed by the server at the "
            "header deadline"
        )
        record.data_lost = "none"
