"""Where a webhook POST may go (SSRF): the receiver address policy, and resolving by a deadline.

:class:`AddressPolicy` resolves the URL's host and refuses it when *any* address is loopback,
private, link-local, unique-local, multicast, unspecified, reserved or otherwise not globally
routable, including IPv4 addresses carried inside IPv6 (``::ffff:a.b.c.d``, 6to4, Teredo,
NAT64). Decimal, hex and short IPv4 forms (``http://2130706433/``) are whatever the resolver
makes of them, and that is what is checked. An operator allows internal receivers by network
(``webhooks.allow_networks``) or by host name (``webhooks.allow_hosts``). The sender
(:mod:`soredi_sync.clients.webhook_http`) then connects to the checked addresses and no other.
Resolving runs in a helper thread so that a slow name server cannot hold the caller.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpcore

from soredi_sync.errors import SorediError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
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


class DeadlineExceeded(httpcore.TimeoutException):
    """The delivery's deadline passed (raised where a socket operation would have waited)."""
