"""One webhook POST: the address policy, the total deadline and the cap on what is read.

No database: :class:`HttpcoreWebhookSender` against misbehaving receivers on 127.0.0.1, and the
policy against addresses given literally or by an injected resolver.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence

import pytest

from soredi_sync.clients.webhook_address import (
    AddressPolicy,
    AddressRefused,
    UnresolvableHost,
    denied_reason,
)
from soredi_sync.clients.webhook_http import HttpcoreWebhookSender
from soredi_sync.ports.webhooks import Target
from soredi_sync.services.webhooks import InvalidWebhook, check_url
from soredi_sync.services.webhooks.subscriptions import split_credentials
from tests.support.receivers import HUGE, OK, TRICKLE, TRICKLE_HEADERS, misbehaving

LOOPBACK_ALLOWED = AddressPolicy.of([ipaddress.ip_network("127.0.0.0/8")])
HEADERS = [("Content-Type", "application/json")]


def sender(policy: AddressPolicy = LOOPBACK_ALLOWED, **options: float) -> HttpcoreWebhookSender:
    values = {"timeout": 1.0, "max_answer_bytes": 4096, **options}
    return HttpcoreWebhookSender(
        policy,
        timeout=float(values["timeout"]),
        max_answer_bytes=int(values["max_answer_bytes"]),
        user_agent="soredi-sync-test",
    )


class TestDeadline:
    def test_a_receiver_trickling_its_answer_is_cut_off_at_the_total_deadline(self) -> None:
        # 200 bytes at one per 0.1 s would take 20 s; each read returns well within any
        # per-read timeout, so only a deadline over the whole answer stops it.
        with misbehaving(TRICKLE, interval=0.1, limit=200) as receiver:
            result = sender(timeout=1.0).send(Target(receiver.url), b"{}", HEADERS)
            (answered,) = receiver.wait_answered()
        assert result.status is None and not result.ok
        assert result.error == "no complete answer within the 1 s deadline"
        assert answered.cut_off and answered.sent < answered.planned

    def test_a_receiver_trickling_its_status_line_is_cut_off_at_the_total_deadline(
        self,
    ) -> None:
        with misbehaving(TRICKLE_HEADERS, interval=0.1, limit=200) as receiver:
            result = sender(timeout=1.0).send(Target(receiver.url), b"{}", HEADERS)
            (answered,) = receiver.wait_answered()
        assert result.error == "no complete answer within the 1 s deadline"
        assert answered.cut_off and answered.sent < answered.planned

    def test_a_prompt_receiver_is_delivered(self) -> None:
        with misbehaving(OK) as receiver:
            result = sender().send(Target(receiver.url), b'{"a":1}', HEADERS)
            (answered,) = receiver.wait_answered()
        assert result.ok and result.status == 204 and result.error == ""
        assert answered.body == b'{"a":1}' and not answered.cut_off
        assert answered.headers["User-Agent"] == "soredi-sync-test"


class TestAnswerSize:
    def test_a_huge_answer_is_read_only_up_to_the_cap_and_the_connection_closed(self) -> None:
        with misbehaving(HUGE, size=1024**3) as receiver:
            result = sender(timeout=5.0, max_answer_bytes=4096).send(
                Target(receiver.url), b"{}", HEADERS
            )
            (answered,) = receiver.wait_answered()
        assert result.ok and result.status == 200
        # What the client read: the cap, rounded up to one read of the socket (64 KiB).
        assert 4096 <= result.answer_bytes <= 64 * 1024
        # The receiver could push no more than the socket buffers hold before it noticed.
        assert answered.cut_off and answered.sent < 32 * 1024**2

    def test_with_a_cap_of_zero_no_body_byte_is_read(self) -> None:
        with misbehaving(HUGE, size=10 * 1024**2) as receiver:
            result = sender(max_answer_bytes=0).send(Target(receiver.url), b"{}", HEADERS)
            receiver.wait_answered()
        assert result.ok and result.answer_bytes == 0


def resolver(table: dict[str, Sequence[str]]) -> object:
    def resolve(host: str, _port: int) -> Sequence[str]:
        if host not in table:
            raise UnresolvableHost(host)
        return table[host]

    return resolve


class TestAddressPolicy:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("http://127.0.0.1:5432/", "loopback"),
            ("http://localhost/hook", "loopback"),
            ("http://10.1.2.3/hook", "private"),
            ("http://172.16.0.1/hook", "private"),
            ("http://192.168.1.10/hook", "private"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[::1]/hook", "loopback"),
            ("http://[fc00::1]/hook", "unique-local"),
            ("http://[fd12:3456::1]/hook", "unique-local"),
            ("http://[fe80::1]/hook", "link-local"),
            ("http://[::ffff:127.0.0.1]/hook", "loopback (inside an IPv6 address)"),
            ("http://[::ffff:10.0.0.1]/hook", "private (inside an IPv6 address)"),
            ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local (inside an IPv6 address)"),
            ("http://2130706433/hook", "loopback"),  # 127.0.0.1 in decimal
            ("http://0x7f000001/hook", "loopback"),  # ... in hex
            ("http://127.1/hook", "loopback"),  # ... shortened
            ("http://0.0.0.0/hook", "unspecified"),
            ("http://[::]/hook", "unspecified"),
            ("http://224.0.0.1/hook", "multicast"),
            ("http://100.64.0.1/hook", "not globally routable"),
            ("https://user:pw@10.0.0.1/hook", "private"),
        ],
    )
    def test_the_default_policy_refuses_a_non_public_receiver_at_registration(
        self, url: str, reason: str
    ) -> None:
        with pytest.raises(InvalidWebhook) as refused:
            check_url(url)
        message = str(refused.value)
        assert message.startswith("refused by the address policy") and f"a {reason} " in message
        assert "pw" not in message  # the URL (and its password) is never repeated

    def test_an_allowed_network_or_host_admits_an_internal_receiver(self) -> None:
        networks = AddressPolicy.of([ipaddress.ip_network("10.20.0.0/16")])
        assert check_url("http://10.20.1.2/hook", networks).url == "http://10.20.1.2/hook"
        with pytest.raises(InvalidWebhook):
            check_url("http://10.21.1.2/hook", networks)
        hosts = AddressPolicy.of(allow_hosts=["LocalHost."])
        assert check_url("http://localhost:8080/hook", hosts).url == "http://localhost:8080/hook"

    def test_a_name_with_any_non_public_address_is_refused(self) -> None:
        policy = AddressPolicy.of(
            resolve=resolver({"mixed.example": ["93.184.216.34", "10.0.0.7"]})  # type: ignore[arg-type]
        )
        with pytest.raises(AddressRefused, match="'mixed.example' resolves to a private"):
            policy.vet("mixed.example", 443)

    def test_a_public_address_passes(self) -> None:
        assert denied_reason(ipaddress.ip_address("93.184.216.34")) is None
        assert denied_reason(ipaddress.ip_address("2606:2800:220:1::1")) is None

    def test_a_name_that_does_not_resolve_yet_is_accepted_at_registration(self) -> None:
        assert check_url("https://hooks.invalid/x").url == "https://hooks.invalid/x"

    def test_at_delivery_a_refused_address_gets_no_connection_and_says_so(self) -> None:
        with misbehaving(OK) as receiver:
            result = sender(AddressPolicy()).send(Target(receiver.url), b"{}", HEADERS)
        assert receiver.answered == []
        assert result.status is None and result.error.startswith(
            "refused by the address policy: '127.0.0.1' is a loopback address"
        )

    def test_the_post_goes_to_the_checked_address_keeping_the_registered_host(self) -> None:
        # "receiver.invalid" resolves only through the policy's resolver: had the sender let
        # the HTTP client resolve the name again, there would be no connection at all.
        with misbehaving(OK) as receiver:
            policy = AddressPolicy.of(
                [ipaddress.ip_network("127.0.0.0/8")],
                resolve=resolver({"receiver.invalid": ["127.0.0.1"]}),  # type: ignore[arg-type]
            )
            url = f"http://receiver.invalid:{receiver.port}/hook"
            result = sender(policy).send(Target(url), b"{}", HEADERS)
            (answered,) = receiver.wait_answered()
        assert result.ok
        assert answered.headers["Host"] == f"receiver.invalid:{receiver.port}"

    def test_a_name_rebound_to_a_private_address_after_registration_is_refused_at_delivery(
        self,
    ) -> None:
        answers = iter([["93.184.216.34"], ["127.0.0.1"]])
        policy = AddressPolicy.of(resolve=lambda _host, _port: next(answers))
        assert check_url("http://rebind.invalid/hook", policy).url == "http://rebind.invalid/hook"
        with misbehaving(OK) as receiver:
            result = sender(policy).send(
                Target(f"http://rebind.invalid:{receiver.port}/hook"), b"{}", HEADERS
            )
        assert receiver.answered == []
        assert "refused by the address policy" in result.error


class TestCredentials:
    def test_user_info_is_split_off_the_url_and_sent_as_basic_auth(self) -> None:
        target = split_credentials("http://hook%40user:p%3Ass@127.0.0.1:1/hook?x=1")
        assert target.url == "http://127.0.0.1:1/hook?x=1"
        assert target.credentials == "hook%40user:p%3Ass"
        assert "p%3Ass" not in repr(target)
        with misbehaving(OK) as receiver:
            url = target.url.replace(":1/", f":{receiver.port}/")
            sender().send(Target(url, target.credentials), b"{}", HEADERS)
            (answered,) = receiver.wait_answered()
        expected = base64.b64encode(b"hook@user:p:ss").decode()
        assert answered.headers["Authorization"] == f"Basic {expected}"

    def test_a_url_without_user_info_is_kept_as_written(self) -> None:
        assert split_credentials("https://gateway.example/hook") == Target(
            "https://gateway.example/hook"
        )
