"""Sending one webhook POST: to a vetted address only, within a total deadline, reading little.

:class:`HttpcoreWebhookSender` is the adapter of :class:`soredi_sync.ports.webhooks.WebhookSender`,
built once by ``bootstrap`` (``app.webhook_sender()``). Three guarantees, each enforced here:

Where it goes (SSRF)
    The host is vetted by the :class:`~soredi_sync.clients.webhook_address.AddressPolicy`, and
    the connection is made to the checked addresses and no other (a custom httpcore network
    backend), so a name that resolves differently a moment later (DNS rebinding) cannot move the
    POST; the URL, ``Host`` header and TLS server name stay the registered ones. Redirects are
    not followed, no proxy from the environment is used (the checked address must be the one
    connected to).

How long it takes
    One wall-clock deadline (``webhooks.timeout``) covers resolving, connecting, the TLS
    handshake, sending and reading the answer: every socket operation gets at most the time
    left, so a receiver that trickles a byte a second is cut off at the deadline, not after.

How much it reads
    The status line and headers (httpcore caps them) and at most ``max_answer_bytes`` of the
    body; then the connection is closed. The body is never kept.

What it says
    :class:`~soredi_sync.ports.webhooks.SendResult` carries an answer's status, or a failure
    *class* that tells neither an open from a closed port nor what an internal service said
    (``error``); the exact exception is in ``detail`` for the log only.
"""

from __future__ import annotations

import base64
import ssl
import time
import typing
from collections.abc import Sequence
from urllib.parse import unquote

import httpcore
import httpx

from soredi_sync.clients.webhook_address import (
    AddressPolicy,
    AddressRefused,
    DeadlineExceeded,
    IPAddress,
    UnresolvableHost,
)
from soredi_sync.config import WebhookSettings
from soredi_sync.ports.webhooks import SendResult, Target

_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- the deadline ---------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.sent = False  # the first request byte went out (the connection stands)

    def left(self, what: str) -> float:
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(what)
        return remaining

    def bound(self, timeout: float | None, what: str) -> float:
        remaining = self.left(what)
        return remaining if timeout is None else min(timeout, remaining)

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.ends


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.bound(timeout, "reading the answer"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._deadline.sent = True
        self._inner.write(buffer, self._deadline.bound(timeout, "sending the request"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # The ssl module bounds the whole handshake by the socket timeout (not per read).
        bounded = self._deadline.bound(timeout, "the TLS handshake")
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, bounded), self._deadline
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the vetted addresses only, whatever host httpcore asks for."""

    def __init__(self, addresses: Sequence[IPAddress], deadline: _Deadline) -> None:
        self._addresses = addresses
        self._deadline = deadline
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for ip in self._addresses:
            bounded = self._deadline.bound(timeout, "connecting")
            try:
                stream = self._backend.connect_tcp(
                    str(ip), port, bounded, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self._deadline.left("waiting")))


# -- one POST -------------------------------------------------------------------------------


def basic_authorization(credentials: str) -> str:
    """The ``Authorization`` value for stored user-info (``user:password``, percent-encoded)."""
    user, _, password = credentials.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class HttpcoreWebhookSender:
    """POSTs one delivery at a time under the policy, deadline and answer cap; thread-safe
    (every call builds its own one-connection pool).

    :param timeout: the total deadline of one POST, in seconds
    :param max_answer_bytes: body bytes of an answer read at most
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float,
        max_answer_bytes: int,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.user_agent = user_agent
        self._ssl_context = ssl_context or httpcore.default_ssl_context()

    def send(
        self,
        target: Target,
        body: bytes,
        headers: Sequence[tuple[str, str]],
    ) -> SendResult:
        """POST ``body`` to ``target``; never raises for what the receiver or network does."""
        deadline = _Deadline(self.timeout)
        started = time.monotonic()

        def result(**values: typing.Any) -> SendResult:
            return SendResult(seconds=time.monotonic() - started, **values)

        try:
            url = httpx.URL(target.url)
            port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
            addresses = self.policy.vet(url.host, port, deadline.left("resolving the host"))
        except AddressRefused as exc:
            return result(status=None, error=str(exc), detail=str(exc))
        except UnresolvableHost as exc:
            return result(status=None, error=str(exc), detail=str(exc))
        except DeadlineExceeded:
            return result(status=None, error=self._late(), detail="resolving took too long")
        sent_headers = [("User-Agent", self.user_agent), *headers]
        if target.credentials:
            sent_headers.append(("Authorization", basic_authorization(target.credentials)))
        backend = _PinnedBackend(addresses, deadline)
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
        try:
            with httpcore.ConnectionPool(
                ssl_context=self._ssl_context,
                max_connections=1,
                max_keepalive_connections=0,
                network_backend=backend,
            ) as pool:
                with pool.stream(
                    "POST",
                    httpcore.URL(
                        scheme=url.raw_scheme,
                        host=url.raw_host,
                        port=url.port,
                        target=url.raw_path,
                    ),
                    headers=sent_headers,
                    content=body,
                    extensions={"timeout": timeouts},
                ) as response:
                    read = self._drain(response)
                    phrase = response.extensions.get("reason_phrase", b"")
                    return result(
                        status=response.status,
                        reason=bytes(phrase).decode("ascii", "replace"),
                        answer_bytes=read,
                    )
        except httpcore.TimeoutException as exc:
            if not deadline.sent:
                return result(status=None, error=_NO_CONNECTION, detail=_detail(exc))
            return result(status=None, error=self._late(), detail=_detail(exc))
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            if not deadline.sent:
                return result(status=None, error=_NO_CONNECTION, detail=_detail(exc))
            if deadline.passed:
                return result(status=None, error=self._late(), detail=_detail(exc))
            return result(status=None, error=_BROKEN, detail=_detail(exc))

    def _drain(self, response: httpcore.Response) -> int:
        """Read up to ``max_answer_bytes`` of the body (kept nowhere); the rest stays unread."""
        read = 0
        if self.max_answer_bytes <= 0:
            return 0
        for chunk in response.iter_stream():
            read += len(chunk)
            if read >= self.max_answer_bytes:
                break
        return read

    def _late(self) -> str:
        return f"no complete answer within the {self.timeout:g} s deadline"


# Failure classes: what the delivery record and the API show. They say neither whether a port
# was closed or filtered nor what an internal service answered.
_NO_CONNECTION = "could not connect (refused, unreachable, timed out or TLS failed)"
_BROKEN = "the connection broke off or the answer was not valid HTTP"


def _detail(exc: BaseException) -> str:
    # The exception's text, never the request: its headers carry the signature.
    return f"{type(exc).__name__}: {exc}".strip()[:500]


def make_webhook_sender(
    webhook_settings: WebhookSettings, user_agent: str
) -> HttpcoreWebhookSender:
    """The sender of the configuration: its address policy, deadline and answer cap."""
    return HttpcoreWebhookSender(
        AddressPolicy.of(webhook_settings.allow_networks, webhook_settings.allow_hosts),
        timeout=webhook_settings.timeout,
        max_answer_bytes=webhook_settings.max_answer_bytes,
        user_agent=user_agent,
    )
