"""uvicorn's HTTP/1.1 protocol with the two limits it lacks: a deadline and a size cap on each
request's head.

What uvicorn (0.54) does on its own, read from ``uvicorn/protocols/http/{h11,httptools}_impl.py``
and checked by ``tests/system/faults/test_api_limits.py``: ``timeout_keep_alive`` is armed only
once a response is complete, and any byte received cancels it. So a connection that never sends a
byte is never closed, and one that sends its headers a byte at a time is never cut off either;
``h11_max_incomplete_event_size`` caps the head under h11 only, and httptools (what "auto"
picks when it is installed) has no cap at all. Nothing in ASGI can help: the application is
called only once the head is complete.

:func:`guarded_protocol` adds, for h11 and httptools alike: from the moment a connection opens
or its previous response is complete, the next request's head must be complete within
``header_timeout`` seconds (else 408 if some of it came, or a plain close if nothing did) and
be at most ``max_header_bytes`` (else 431), and the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from soredi_sync.config import ApiSettings


def _plain(status: str, text: str) -> bytes:
    body = text.encode("ascii")
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_TIMEOUT = _plain("408 Request Timeout", "the request headers came too slowly\n")
_TOO_LARGE = _plain("431 Request Header Fields Too Large", "the request headers are too big\n")


def base_protocol(name: str) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol class named ``auto``, ``h11`` or ``httptools``."""
    if name == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    if name == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return AutoHTTPProtocol


def guarded_protocol(
    base: type[asyncio.Protocol], *, header_timeout: float, max_header_bytes: int
) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's protocol ``base`` that enforces the head's deadline and size.

    It relies on what both of uvicorn's protocols share: ``cycle`` (the request being
    answered, replaced when a new head is complete), ``on_response_complete``, ``transport``
    and ``loop``.
    """
    # uvicorn's protocol classes are untyped to mypy: the subclass is built dynamically.
    parent: Any = base

    class GuardedProtocol(parent):  # type: ignore[misc]
        # One timer per connection, re-armed only when it fires early: a kept-alive connection
        # that answers thousands of requests a second sets two fields per request, no timer.
        _head_timer: asyncio.TimerHandle | None = None
        _awaiting = False  # between "ready for a request" and its head being complete
        _head_since = 0.0
        _head_cycle: Any = None
        _head_bytes = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._awaiting = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._awaiting:
                return
            if self.cycle is not self._head_cycle:  # a new request's head is complete
                self._awaiting = False
                return
            self._head_bytes += len(data)
            if self._head_bytes > max_header_bytes:
                self._refuse(_TOO_LARGE)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Pipelined requests are already being answered: their heads came in time.
            if not self.transport.is_closing() and (
                self.cycle is None or self.cycle.response_complete
            ):
                self._await_head()

        def _await_head(self) -> None:
            self._awaiting = True
            self._head_cycle = self.cycle
            self._head_bytes = 0
            self._head_since = self.loop.time()
            if self._head_timer is None:
                self._head_timer = self.loop.call_at(
                    self._head_since + header_timeout, self._check_head
                )

        def _check_head(self) -> None:
            self._head_timer = None
            if not self._awaiting or self.transport.is_closing():
                return
            due = self._head_since + header_timeout
            if self.loop.time() < due:  # armed for an earlier wait: this one has time left
                self._head_timer = self.loop.call_at(due, self._check_head)
                return
            # Silence gets a silent close, as an expired keep-alive does.
            self._refuse(_TIMEOUT if self._head_bytes else None)

        def _refuse(self, answer: bytes | None) -> None:
            self._awaiting = False
            if self.transport.is_closing():
                return
            if answer is not None:
                self.transport.write(answer)
            self.transport.close()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol


def uvicorn_limits(settings: ApiSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that put the ``[api]`` limits in force."""
    return {
        "http": guarded_protocol(
            base_protocol(settings.http_protocol),
            header_timeout=settings.header_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
        ),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.timeout_keep_alive,
        "limit_concurrency": settings.limit_concurrency,
        "backlog": settings.backlog,
    }
