"""An ASGI app served by uvicorn in a thread on a free loopback port, for tests that need a real
server (sockets, a generated client) rather than the in-process TestClient; ``soredi-sync
serve`` (or ``run``) itself in a process of its own; and, from ``/proc``, the processes it
forked and which of them answered a connection."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


@contextmanager
def uvicorn_in_thread(asgi_app: Any, **config: Any) -> Iterator[tuple[str, int]]:
    """Serve ``asgi_app`` until the block ends; yields (host, port). ``config`` goes to
    ``uvicorn.Config`` (log and access-log output are off)."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(config.get("backlog", 16))
    server = uvicorn.Server(uvicorn.Config(asgi_app, log_config=None, access_log=False, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    host, port = listener.getsockname()[:2]
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(20)
        listener.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(
    database_url: str,
    log: Path,
    *serve_args: str,
    env: dict[str, str] | None = None,
    command_name: str = "serve",
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``soredi-sync serve`` (or ``command_name``: ``run``) in a process of its own on a free
    loopback port, ready (answering ``/healthz``) when the block starts; its stdout and stderr
    go to ``log``. Yields the process and the base URL; the process is terminated (killed if it
    must be) at the end."""
    port = free_port()
    command = [sys.executable, "-m", "soredi_sync", "--database-url", database_url, command_name]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), *serve_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(20)


def children(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _server_socket_inode(client_port: int, server_port: int) -> str | None:
    """The inode of the server's end of the loopback TCP connection between the two ports."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
                and inode != "0"
            ):
                return inode
    return None


def serving_process(
    connection: http.client.HTTPConnection, server_port: int, candidates: Iterable[int]
) -> int | None:
    """Which of ``candidates`` holds the server's end of ``connection`` (still open), if any."""
    assert connection.sock is not None, "the connection is closed"
    inode = _server_socket_inode(connection.sock.getsockname()[1], server_port)
    if inode is None:
        return None
    link = f"socket:[{inode}]"
    for pid in candidates:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == link:
                    return pid
            except OSError:
                continue
    return None


def scraped(exposition: str, sample: str, **labels: str) -> float:
    """The sum of the ``sample`` values (e.g. ``soredi_route_decisions_total``) of a Prometheus
    text exposition whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


def answers_by_worker(
    port: int,
    workers: set[int],
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    each: int,
    limit: int = 400,
) -> dict[int, list[tuple[int, bytes]]]:
    """``method path``, each on a connection of its own, until every one of ``workers`` has
    answered ``each`` times (at most ``limit`` requests): the status and body of each worker's
    answers. Which worker answered is read from ``/proc`` while the connection is open."""
    answered: dict[int, list[tuple[int, bytes]]] = {}
    for _ in range(limit):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            content = answer.read()
            worker = serving_process(connection, port, workers)
        finally:
            connection.close()
        assert worker is not None, "no worker holds the connection"
        answered.setdefault(worker, []).append((answer.status, content))
        if set(answered) == workers and min(len(a) for a in answered.values()) >= each:
            break
    return answered


def decisions_by_worker(
    port: int, token: str, gln: str, workers: set[int], *, each: int
) -> dict[int, list[int]]:
    """``POST /v1/route`` for ``gln`` until every one of ``workers`` has answered ``each`` times
    (:func:`answers_by_worker`): the snapshot ids each worker answered on."""
    import json

    body = {"receiver": {"gln": gln}, "business_message": "correspondence", "sender_syntax": "fhir"}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    answered = answers_by_worker(
        port, workers, "POST", "/v1/route", body=json.dumps(body), headers=headers, each=each
    )
    snapshots: dict[int, list[int]] = {}
    for worker, answers in answered.items():
        for status, content in answers:
            assert status == 200, content
            snapshots.setdefault(worker, []).append(json.loads(content)["snapshot"]["id"])
    return snapshots
