"""An ASGI app served by uvicorn in a thread on a free loopback port, for tests that need a real
server (sockets, a generated client) rather than the in-process TestClient."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
