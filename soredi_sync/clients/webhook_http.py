"""Sending one webhook POST: to a vetted address only, within a total deadline, reading little.

Three guarantees, each enforced here and nowhere else:

Where it goes (SSRF)
    :class:`AddressPolicy` resolves the URL's host and refuses it when *any* address is
    loopback, private, link-local, unique-local, multicast, unspecified, reserved or otherwise
    not globally routable, including IPv4 addresses carried inside IPv6 (``::ffff:a.b.c.d``,
    6to4, Teredo, NAT64). Decimal, hex and short IPv4 forms (``http://2130706433/``) are
    whatever the resolver makes of them, and that is what is checked. An operator allows
    internal receivers by network (``webhooks.allow_networks``) or by host name
    (``webhooks.allow_hosts``). The connection is then made to the checked addresses and no
    other (a custom httpcore network backend), so a name that resolves differently a moment
    later (DNS rebinding) cannot move the POST; the URL, ``Host`` header and TLS server name
    stay the registered ones. Redirects are not followed, no proxy from the environment is
    used (the checked address must be the one connected to).

How long it takes
    One wall-clock deadline (``webhooks.timeout``) covers resolving, connecting, the TLS
    handshake, sending and reading the answer: every socket operation gets at most the time
    left, so a receiver that trickles a byte a second is cut off at the deadline, not after.
    Resolving runs in a helper thread so that a slow name server cannot hold the sender.

How much it reads
    The status line and headers (httpcore caps them) and at most ``max_answer_bytes`` of the
    body; then the connection is closed. The body is never kept.

What it says
    :class:`SendResult` carries an answer's status, or a failure *class* that tells neither an
    open from a closed port nor what an internal service said (``error``); the exact exception
    is in ``detail`` for the log only.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import threading
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpcore
import httpx

from soredi_sync.errors import SorediError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Resolver and connect attempts per delivery: enough for a dual-stack host with a few records.
_MAX_ADDRESSES = 8


class AddressRefused(SorediError):
    """The receiver's host is, or resolves to, an address the policy does not allow."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(
            f"refused by the address policy: {host!r} {reason}; an operator can allow it in "
            "webhooks.allow_networks or webhooks.allow_hosts"
        )
        self.host = host
        self.reason = reason


class UnresolvableHost(SorediError):
    def __init__(self, host: str) -> None:
        super().__init__(f"the host name {host!r} does not resolve")
        self.host = host


# -- addresses ------------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def denied_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public receiver address (``"loopback"``, ``"private"``, …), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = denied_reason(embedded)
            if reason is not None:
                return f"{reason} (inside an IPv6 address)"
        if ip in _UNIQUE_LOCAL:
            return "unique-local"
        if ip in _SITE_LOCAL:
            return "site-local"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for reason, hit in checks:
        if hit:
            return reason
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT), 192.0.0.0/24
        return "not globally routable"
    return None


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class AddressPolicy:
    """Which receiver addresses are allowed: public ones, and those an operator names.

    :param allow_networks: networks allowed although not public (``webhooks.allow_networks``)
    :param allow_hosts: host names allowed whatever they resolve to (``webhooks.allow_hosts``)
    :param resolve: ``(host, port) -> addresses``; default :func:`resolve_host`
    """

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    resolve: Resolver | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        allow_networks: Iterable[IPNetwork] = (),
        allow_hosts: Iterable[str] = (),
        resolve: Resolver | None = None,
    ) -> AddressPolicy:
        return cls(
            allow_networks=tuple(allow_networks),
            allow_hosts=frozenset(_host_key(h) for h in allow_hosts if h.strip()),
            resolve=resolve,
        )

    def _allowed_network(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                candidates.append(embedded)
        return any(
            c in net for c in candidates for net in self.allow_networks if c.version == net.version
        )

    def check_address(self, host: str, ip: IPAddress) -> None:
        """:raises AddressRefused: ``ip`` (an address of ``host``) is not allowed"""
        if _host_key(host) in self.allow_hosts:
            return
        reason = denied_reason(ip)
        if reason is not None and not self._allowed_network(ip):
            shown = "is" if _host_key(host) == str(ip) else "resolves to"
            raise AddressRefused(host, f"{shown} a {reason} address")

    def vet(self, host: str, port: int, timeout: float | None = None) -> list[IPAddress]:
        """The addresses of ``host`` to connect to, every one of them allowed.

        :raises UnresolvableHost: the name does not resolve (within ``timeout``)
        :raises AddressRefused: any address it resolves to is not allowed
        """
        resolve = self.resolve or resolve_host
        if timeout is None:
            found = resolve(host, port)
        else:
            found = _resolve_within(resolve, host, port, timeout)
        addresses: list[IPAddress] = []
        for text in found:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            self.check_address(host, ip)
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise UnresolvableHost(host)
        return addresses[:_MAX_ADDRESSES]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP). :raises UnresolvableHost: it does not"""
    key = _host_key(unquote(host))
    if ":" in key:  # an IPv6 literal, maybe with a zone (``fe80::1%eth0``)
        try:
            return [str(ipaddress.IPv6Address(key.split("%", 1)[0]))]
        except ValueError:
            raise UnresolvableHost(host) from None
    try:
        infos = socket.getaddrinfo(_host_key(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnresolvableHost(host) from None
    return [str(info[4][0]) for info in infos]


def _resolve_within(resolve: Resolver, host: str, port: int, timeout: float) -> Sequence[str]:
    """``resolve`` in a helper thread, given up after ``timeout`` (getaddrinfo takes none)."""
    outcome: list[Sequence[str] | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(resolve(host, port))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="soredi-webhook-resolve", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise DeadlineExceeded("resolving the host")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


# -- the deadline ---------------------------------------------------------------------------


class DeadlineExceeded(httpcore.TimeoutException):
    """The delivery's deadline passed (raised where a socket operation would have waited)."""


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


@dataclass(frozen=True, slots=True)
class Target:
    """A receiver URL split for sending: the URL without user-info, and the user-info."""

    url: str
    credentials: str | None = field(default=None, repr=False)


def split_credentials(url: str) -> Target:
    """``https://user:pw@host/p`` → ``Target("https://host/p", "user:pw")`` (as written,
    percent-encoded); a URL without user-info comes back whole with ``credentials`` None.

    :raises ValueError: not a URL httpx can parse
    """
    parsed = httpx.URL(url)
    userinfo = parsed.userinfo.decode("ascii")
    if not userinfo:
        return Target(url)
    return Target(str(parsed.copy_with(userinfo=b"")), userinfo)


def basic_authorization(credentials: str) -> str:
    """The ``Authorization`` value for stored user-info (``user:password``, percent-encoded)."""
    user, _, password = credentials.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one POST went. ``status`` is the answer's HTTP status (None: no answer);
    ``error`` a failure class fit to store and show; ``detail`` the exact cause, for the log."""

    status: int | None
    reason: str = ""
    error: str = ""
    detail: str = ""
    seconds: float = 0.0
    answer_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
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
