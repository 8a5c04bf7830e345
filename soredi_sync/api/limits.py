"""What a request may cost before the API has judged it: a pure ASGI middleware.

FastAPI reads and validates a route's body before it runs the route's dependencies, so without
this an anonymous caller could make the server read, buffer and parse any body it liked before
its token was looked at. :class:`RequestLimits` sits in front of the routes. It refuses a
request whose head (request target and headers) is over ``max_header_bytes`` (431: uvicorn
parses a head that arrives in one read whatever its size; a head that arrives in pieces is
capped by ``api/connections.py`` while it comes in). Then, for every request that announces a
body (``Content-Length`` > 0 or ``Transfer-Encoding``):

1. under ``/v1/``, judges the bearer token before a single body byte is read: no token, or an
   unknown or revoked one, is answered 401 at once (the scope, 403, is still the route's
   dependency's to judge, after at most the capped body);
2. refuses a body over the route's cap: a declared ``Content-Length`` at once, a chunked body
   as soon as the bytes received pass the cap (413);
3. refuses a body that has not arrived ``body_timeout`` seconds after the request's head (408).

Whenever the answer goes out before the whole body was received, it says ``Connection: close``
and uvicorn closes the connection after it, so the rest of the body is never read.

The token check is the same cached look-up the route's dependency makes (a SHA-256 and a dict
hit), and only requests with a body pay for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from itertools import chain
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soredi_sync.api.problems import Unauthorized, problem_response
from soredi_sync.api.security import VERIFIED_TOKEN
from soredi_sync.services.tokens import TokenVerifier

PROTECTED_PREFIX = "/v1/"
_CLOSE = (b"connection", b"close")


class _BodyRefused(Exception):
    """Raised into the application from ``receive`` once its body is refused."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail


class RequestLimits:
    """Token before body, a size cap on every body, a deadline for every body.

    :param verifier: the API's token verifier (the same cache the routes use)
    :param max_body_bytes: the cap of a body to any path not in ``body_limits``
    :param body_limits: path -> cap, for routes that take more (the bundle route)
    :param body_timeout: seconds from the request's head to the end of its body
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        max_body_bytes: int,
        body_limits: Mapping[str, int],
        body_timeout: float,
        max_header_bytes: int,
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.verifier = verifier
        self.max_body_bytes = max_body_bytes
        self.body_limits = dict(body_limits)
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        # Counted in C: this runs for every request.
        head_size = (
            len(scope.get("raw_path") or b"")
            + len(scope.get("query_string", b""))
            + sum(map(len, chain.from_iterable(headers)))
            + 4 * len(headers)
        )
        found = dict(headers)
        length = found.get(b"content-length")
        chunked = b"transfer-encoding" in found  # uvicorn takes only chunked: a body either way
        if head_size > self.max_header_bytes:
            await _answer(scope, send, _too_large_head(self.max_header_bytes))
            return
        if not chunked and (length is None or length.strip() in (b"", b"0")):
            await self.app(scope, receive, send)  # no body: nothing to guard
            return
        path: str = scope["path"]
        if path.startswith(PROTECTED_PREFIX):
            refused = self._unauthorized(scope, found.get(b"authorization"))
            if refused is not None:
                await _answer(scope, send, refused)
                return
        limit = self.body_limits.get(path, self.max_body_bytes)
        declared = _declared(length) if not chunked and length is not None else None
        if declared is not None and declared > limit:
            await _answer(scope, send, _too_large(limit))
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        guard = _BodyGuard(scope, receive, send, limit, deadline, self.body_timeout)
        try:
            await self.app(scope, guard.receive, guard.send)
        except _BodyRefused:
            if not guard.started:
                await guard.answer_refusal()
        finally:
            guard.close()

    def _unauthorized(self, scope: Scope, authorization: bytes | None) -> Unauthorized | None:
        # As HTTPBearer(auto_error=False) + security.authorize judge it, with the same words.
        scheme, token = get_authorization_scheme_param(
            authorization.decode("latin-1") if authorization else None
        )
        if not authorization or scheme.lower() != "bearer" or not token:
            return Unauthorized("a bearer token is required")
        record = self.verifier.verify(token)
        if record is None:
            return Unauthorized("the bearer token is unknown or revoked")
        # The route's token dependency takes this verdict rather than verifying again.
        scope[VERIFIED_TOKEN] = (token, record)
        return None


class _BodyGuard:
    """``receive`` and ``send`` of one request with a body: counts it, times it, and swaps the
    application's answer for the refusal once the body is refused.

    The deadline is one timer per request, armed at the first ``receive`` and cancelled once
    the body is complete; it cancels the request's task only while that task waits for body
    bytes (cheaper than ``asyncio.timeout`` around every ``receive``, on the routing hot path).
    """

    __slots__ = (
        "scope",
        "_receive",
        "_send",
        "limit",
        "deadline",
        "timeout",
        "received",
        "complete",
        "started",
        "refusal",
        "timer",
        "task",
        "waiting",
        "expired",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        deadline: float,
        timeout: float,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.deadline = deadline
        self.timeout = timeout
        self.received = 0
        self.complete = False
        self.started = False
        self.refusal: _BodyRefused | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.waiting = False
        self.expired = False

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise self.refusal
        if self.complete:  # waiting for a disconnect, not for the body: no deadline
            return await self._receive()
        if self.expired:
            raise self._too_slow()
        if self.timer is None:
            self.task = asyncio.current_task()
            self.timer = asyncio.get_running_loop().call_at(self.deadline, self._expire)
        self.waiting = True
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self.expired or self.task is None or self.task.uncancel() > 0:
                raise
            raise self._too_slow() from None
        finally:
            self.waiting = False
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refusal = _too_large(self.limit)
                raise self.refusal
            if not message.get("more_body", False):
                self.complete = True
                self.timer.cancel()
        return message

    def _expire(self) -> None:
        self.expired = True
        if self.waiting and self.task is not None:
            self.task.cancel()

    def _too_slow(self) -> _BodyRefused:
        self.refusal = _BodyRefused(
            408, "body-timeout", f"the body did not arrive within {self.timeout:g} seconds"
        )
        return self.refusal

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    async def send(self, message: Message) -> None:
        if self.refusal is not None:
            # The application answered the refused body in its own way (FastAPI turns an
            # error while reading into a 400): the refusal is the answer.
            if not self.started:
                await self.answer_refusal()
            return
        if message["type"] == "http.response.start" and not self.complete:
            # Answered before the whole body came in: close rather than read the rest.
            message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def answer_refusal(self) -> None:
        assert self.refusal is not None
        self.started = True
        await _answer(self.scope, self._send, self.refusal)


def _declared(length: bytes) -> int | None:
    """The declared body size; None when it is not a number. uvicorn's parsers refuse such a
    request before the app sees it; served otherwise (in process), the declaration is not
    trusted and the body is counted and timed as it arrives, as a chunked one is."""
    try:
        return int(length)
    except ValueError:
        return None


def _too_large_head(limit: int) -> _BodyRefused:
    return _BodyRefused(
        431, "headers-too-large", f"the request target and headers are larger than {limit} bytes"
    )


def _too_large(limit: int) -> _BodyRefused:
    return _BodyRefused(413, "too-large", f"the body is larger than {limit} bytes")


async def _answer(scope: Scope, send: Send, refusal: Any) -> None:
    """The problem document for ``refusal`` (an Unauthorized or a _BodyRefused), closing the
    connection: the body it came with is not read."""
    headers = dict(getattr(refusal, "headers", None) or {})
    headers["Connection"] = "close"
    response = problem_response(
        Request(scope), refusal.status, refusal.detail, kind=refusal.kind, headers=headers
    )
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
