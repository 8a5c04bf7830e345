"""Before/after figures for the API's request limits (issue 11, items 6-8), on loopback.

    cd /tmp && /work/main/.venv/bin/python /work/main/benchmarks/harden_api.py
    cd /tmp && PYTHONPATH=/tmp/before-B \
        /work/main/.venv/bin/python /work/main/benchmarks/harden_api.py

(run from outside a checkout, so that PYTHONPATH decides whose ``soredi_sync`` is measured; the
first line prints which one it is)

Each experiment starts a fresh server exactly as an operator would (``python -m soredi_sync
serve``, configuration from that tree's ``config/``, access log off) over the tiny sandbox's
day 0 on SQLite, drives it over raw sockets, and reads the server's peak RSS (``VmHWM`` in
``/proc/<pid>/status``). Meanwhile a normal caller asks a routing decision every 0.1 s on a new
connection; its latencies show how other callers fared.

1. ``bodies``: N anonymous POST /v1/route with Content-Length of M MB, each body streamed
   until the server stops taking it.
2. ``entries``: one POST /v1/route/bundle (valid token) of a FHIR XML CareCommunication followed
   by E empty ``<entry/>`` elements (the issue's 18 M / 144 MB, scaled to 2 M / 16 MB).
3. ``idle``: the server's open-file limit set to F (the issue's ~20,000, scaled by 10), then I
   idle connections that never send a byte; when does a normal caller get an answer, and how
   many idle connections has the server closed after 30 s.
4. ``route``: decisions/s of POST /v1/route, 8 keep-alive connections, S seconds (the cost of
   the token check in front of the body).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

MB = 1024 * 1024


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def server(url: str, nofile: int | None = None) -> Iterator[tuple[int, int]]:
    """``soredi-sync serve`` as a process: (port, pid)."""
    port = _free_port()

    def limit_files() -> None:
        if nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    process = subprocess.Popen(
        [sys.executable, "-m", "soredi_sync", "--database-url", url, "serve"]
        + ["--port", str(port), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Not the caller's directory: `-m` would put a checkout there ahead of PYTHONPATH.
        cwd=tempfile.gettempdir(),
        preexec_fn=limit_files,  # noqa: PLW1509 (no threads in this process yet that matter)
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(OSError):
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if sock.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            assert time.monotonic() < deadline and process.poll() is None, "no server"
            time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- clients ---------------------------------------------------------------------------------


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _status(sock: socket.socket) -> tuple[int | None, bytes]:
    data = b""
    with suppress(OSError):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 "):
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    with suppress(OSError):
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(data.split()[1]), body


def route_request(token: str, gln: str) -> bytes:
    body = json.dumps(
        {"receiver": {"gln": gln}, "business_message": "correspondence", "sender_syntax": "fhir"}
    ).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    return _head("POST", "/v1/route", headers) + body


def decide(port: int, request: bytes, timeout: float = 30.0) -> tuple[int | None, float]:
    """One decision on a new connection: (status or None, seconds)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            status, _ = _status(sock)
    except OSError:
        status = None
    return status, time.monotonic() - started


class Caller(threading.Thread):
    """A normal caller: a decision every 0.1 s until stopped."""

    def __init__(self, port: int, request: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.request = port, request
        self.stop = threading.Event()
        self.results: list[tuple[int | None, float]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.results.append(decide(self.port, self.request, timeout=30))
            self.stop.wait(0.1)

    def summary(self) -> dict[str, Any]:
        self.stop.set()
        self.join(60)
        latencies = [seconds * 1000 for _, seconds in self.results]
        return {
            "caller_answers": len(self.results),
            "caller_ok": sum(status == 200 for status, _ in self.results),
            "caller_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "caller_max_ms": round(max(latencies), 1) if latencies else None,
        }


# -- experiments -----------------------------------------------------------------------------


def bodies(url: str, request: bytes, count: int, size_mb: int) -> dict[str, Any]:
    size = size_mb * MB
    head = _head(
        "POST", "/v1/route", {"Content-Type": "application/json", "Content-Length": str(size)}
    )
    with server(url) as (port, pid):
        caller = Caller(port, request)
        caller.start()
        results: list[tuple[int | None, int]] = [(None, 0)] * count
        chunk = b"x" * MB

        def attack(n: int) -> None:
            sent = 0
            with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
                with suppress(OSError):
                    sock.sendall(head)
                    while sent < size:
                        sent += sock.send(chunk[: min(MB, size - sent)])
                status, _ = _status(sock)
            results[n] = (status, sent)

        started = time.monotonic()
        threads = [threading.Thread(target=attack, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        elapsed = time.monotonic() - started
        peak = _peak_rss_mb(pid)
        return {
            "statuses": [status for status, _ in results],
            "mb_sent_each": [round(sent / MB, 1) for _, sent in results],
            "seconds": round(elapsed, 2),
            "server_peak_rss_mb": round(peak),
            **caller.summary(),
        }


def entries(url: str, request: bytes, token: str, gln: str, count: int) -> dict[str, Any]:
    header = (
        '<entry><fullUrl value="urn:uuid:h"/><resource><MessageHeader><id value="h"/>'
        '<eventCoding><code value="care-communication-message"/></eventCoding>'
        f'<destination><receiver><identifier><system value="https://www.gs1.org/gln"/>'
        f'<value value="{gln}"/></identifier></receiver></destination>'
        "</MessageHeader></resource></entry>"
    )
    body = (
        '<Bundle xmlns="http://hl7.org/fhir"><type value="message"/>'
        + header
        + "<entry/>" * count
        + "</Bundle>"
    ).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/fhir+xml",
        "Content-Length": str(len(body)),
    }
    with server(url) as (port, pid):
        caller = Caller(port, request)
        caller.start()
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
            sock.sendall(_head("POST", "/v1/route/bundle", headers) + body)
            status, answer = _status(sock)
        elapsed = time.monotonic() - started
        problem = json.loads(answer).get("bundle_problem") if answer.startswith(b"{") else None
        return {
            "body_mb": round(len(body) / MB, 1),
            "status": status,
            "bundle_problem": problem,
            "seconds": round(elapsed, 2),
            "server_peak_rss_mb": round(_peak_rss_mb(pid)),
            **caller.summary(),
        }


def idle(url: str, request: bytes, count: int, nofile: int) -> dict[str, Any]:
    with server(url, nofile=nofile) as (port, pid):
        before = decide(port, request)
        sockets: list[socket.socket] = []
        for _ in range(count):
            with suppress(OSError):
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        opened = time.monotonic()
        answers: list[tuple[int | None, float]] = []
        first_ok: float | None = None
        while time.monotonic() - opened < 30:
            status, seconds = decide(port, request, timeout=30 - (time.monotonic() - opened))
            answers.append((status, seconds))
            if status == 200:
                first_ok = time.monotonic() - opened
                break
            time.sleep(0.2)
        closed = _closed_within(sockets, 30 - (time.monotonic() - opened))
        for sock in sockets:
            sock.close()
        return {
            "idle_opened": len(sockets),
            "caller_before": before[0],
            "caller_statuses": sorted({str(status) for status, _ in answers}),
            "first_answer_s": round(answers[0][1], 2) if answers else None,
            "first_200_after_s": round(first_ok, 2) if first_ok is not None else None,
            "idle_closed_by_server_in_30s": closed,
            "server_peak_rss_mb": round(_peak_rss_mb(pid)),
        }


def _closed_within(sockets: list[socket.socket], timeout: float) -> int:
    import selectors

    closed = 0
    deadline = time.monotonic() + max(timeout, 0)
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        pending = len(sockets)
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(max(deadline - time.monotonic(), 0)):
                selector.unregister(key.fileobj)
                pending -= 1
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                sock.setblocking(False)
                with suppress(OSError):
                    closed += sock.recv(1) == b""
    return closed


def route_rate(url: str, request: bytes, seconds: float) -> dict[str, Any]:
    async def load(port: int) -> tuple[int, list[float]]:
        done = 0
        latencies: list[float] = []
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while time.monotonic() < end:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                done += 1
            writer.close()

        await asyncio.gather(*(worker() for _ in range(8)))
        return done, latencies

    with server(url) as (port, _pid):
        asyncio.run(load_warm(port, request))
        done, latencies = asyncio.run(load(port))
    return {
        "decisions_per_s": round(done / seconds),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
    }


async def load_warm(port: int, request: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(200):
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    writer.close()


# -- main ------------------------------------------------------------------------------------


def prepare(tmp: Path) -> tuple[str, str, str]:
    """A SQLite database with the tiny sandbox's day 0 and a route:read token: (url, token,
    a receiver GLN)."""
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.db.schema import upgrade
    from soredi_sync.sandbox.generate import generate
    from soredi_sync.services.sync import sync_source
    from soredi_sync.services.tokens import create_token

    generate(tmp / "sandbox", profile="tiny", seed=11, days=1)
    url = f"sqlite:///{tmp / 'api.db'}"
    upgrade(url)
    with bootstrap(Settings(database_url=url)) as app:
        outcome = sync_source(
            app.uow_factory,
            app.files_client(from_dir=tmp / "sandbox" / "day-000"),
            app.sync_config(),
        )
        assert outcome.ok, outcome.error
        token = create_token(lambda: app.uow(), ["route:read"]).token
        gln = sorted(app.routing().resolver().index.owners_by_gln)[0]
    return url, token, gln


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--body-mb", type=int, default=80)
    parser.add_argument("--entries", type=int, default=2_000_000)
    parser.add_argument("--idle", type=int, default=2_100)
    parser.add_argument("--server-nofile", type=int, default=2_048)
    parser.add_argument("--route-seconds", type=float, default=5.0)
    parser.add_argument(
        "--only", nargs="*", default=["route", "bodies", "entries", "idle"], help="experiments"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * args.idle + 100)), hard))

    import soredi_sync

    results: dict[str, Any] = {"code": str(Path(soredi_sync.__file__).resolve().parents[1])}
    print("code", results["code"], flush=True)  # noqa: T201
    with tempfile.TemporaryDirectory(prefix="soredi-harden-api-") as tmp:
        url, token, gln = prepare(Path(tmp))
        request = route_request(token, gln)
        experiments: dict[str, Callable[[], dict[str, Any]]] = {
            "route": lambda: route_rate(url, request, args.route_seconds),
            "bodies": lambda: bodies(url, request, args.bodies, args.body_mb),
            "entries": lambda: entries(url, request, token, gln, args.entries),
            "idle": lambda: idle(url, request, args.idle, args.server_nofile),
        }
        for name in args.only:
            results[name] = experiments[name]()
            print(name, json.dumps(results[name]), flush=True)  # noqa: T201
    print(json.dumps(results, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
