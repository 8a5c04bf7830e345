"""An ASGI app served by uvicorn in a thread on a free loopback port, for tests that need a real
server (sockets, a generated client) rather than the in-process TestClient; and ``soredi-sync
serve`` itself in a process of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
    database_url: str, log: Path, *serve_args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``soredi-sync serve`` in a process of its own on a free loopback port, ready (answering
    ``/healthz``) when the block starts; its stdout and stderr go to ``log``. Yields the
    process and the base URL; the process is terminated (killed if it must be) at the end."""
    port = free_port()
    command = [sys.executable, "-m", "soredi_sync", "--database-url", database_url, "serve"]
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
