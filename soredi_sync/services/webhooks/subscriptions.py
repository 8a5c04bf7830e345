"""Registering, reading and stopping change subscriptions (the API's and the CLI's use cases).

Receivers (SSRF)
    A receiver whose host is or resolves to a loopback, private, link-local, unique-local,
    multicast, unspecified or reserved address is refused at registration (API, CLI and
    configuration) and again at every delivery, where the POST goes to the address that was
    checked; ``webhooks.allow_networks`` / ``allow_hosts`` let an operator name internal
    receivers. A name that does not resolve yet is accepted at registration and checked when
    it is sent to.

Credentials in the URL
    ``https://user:password@host/…``: the user-info is split off when the subscription is
    registered, stored in its own column, sent as HTTP Basic, and never listed (listings show
    ``has_credentials``), logged or put in an error message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from soredi_sync.clients.webhook_address import (
    AddressPolicy,
    AddressRefused,
    DeadlineExceeded,
    UnresolvableHost,
)
from soredi_sync.config import WebhookSettings
from soredi_sync.errors import NotFound
from soredi_sync.ports.records import Delivery, Subscription
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.ports.webhooks import DELIVERED, FAILED, PENDING, Target
from soredi_sync.services.webhooks.errors import InvalidWebhook, WebhookConflict
from soredi_sync.services.webhooks.filters import WebhookFilter
from soredi_sync.services.webhooks.signing import new_secret

logger = logging.getLogger(__name__)

ORIGIN_CONFIG = "config"
ORIGIN_API = "api"
MAX_NAME_LENGTH = 100
# Resolving a host at registration: a name server slower than this is not waited for (the
# name is accepted, and checked again at each delivery).
REGISTRATION_RESOLVE_SECONDS = 5.0

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class CreatedSubscription:
    """A new API subscription: ``secret`` is shown to the caller once and never again."""

    secret: str = field(repr=False)
    subscription: Subscription


def check_name(name: str) -> str:
    """The name, stripped. :raises InvalidWebhook: not 1-100 letters, digits, ``._-``"""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidWebhook(
            f"a subscription name is 1-{MAX_NAME_LENGTH} letters, digits, '.', '_' or '-' "
            f"starting with a letter or digit, not {name!r}"
        )
    return name


def address_policy(webhook_settings: WebhookSettings) -> AddressPolicy:
    """The receiver address policy of the configuration (``allow_networks``/``allow_hosts``)."""
    return AddressPolicy.of(webhook_settings.allow_networks, webhook_settings.allow_hosts)


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


def check_url(url: str, policy: AddressPolicy | None = None) -> Target:
    """The URL split into the URL without user-info and its credentials, after checking it.

    A host that does not resolve (yet) passes: it is checked again at every delivery. Error
    messages never repeat the URL (it may carry a password).

    :param policy: the address policy; default: public addresses only
    :raises InvalidWebhook: not an absolute http(s) URL with a host, or its host is or
        resolves to an address the policy refuses
    """
    text = url.strip()
    try:
        parsed = httpx.URL(text)
        target = split_credentials(text)
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
        raise InvalidWebhook("the webhook URL is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidWebhook("the webhook URL is not an absolute http or https URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        (policy or AddressPolicy()).vet(parsed.host, port, REGISTRATION_RESOLVE_SECONDS)
    except AddressRefused as exc:
        raise InvalidWebhook(str(exc)) from None
    except (UnresolvableHost, DeadlineExceeded):
        pass
    return target


def create_subscription(
    uow: UnitOfWork,
    *,
    name: str,
    url: str,
    webhook_filter: WebhookFilter,
    actor: str,
    now: datetime | None = None,
    policy: AddressPolicy | None = None,
) -> CreatedSubscription:
    """Register an API subscription and commit; it gets the changes made from now on.

    The name of a deactivated API subscription may be used again: that subscription starts
    afresh (new URL, filter and secret; its past deliveries stay listed under it). User-info
    in the URL is stored apart (see the module doc).

    :param policy: the receiver address policy (:func:`address_policy` of the settings);
        default: public addresses only
    :raises InvalidWebhook: a bad name or URL, or a receiver address the policy refuses
    :raises WebhookConflict: the name is in use, or belongs to a configured subscription
    """
    name = check_name(name)
    target = check_url(url, policy)
    at = now or datetime.now(UTC)
    secret = new_secret()
    filters = webhook_filter.as_dict()
    end = uow.registry.last_cursor()
    existing = uow.webhooks.get_by_name(name)
    if existing is None:
        sub = uow.webhooks.add(
            name=name,
            url=target.url,
            credentials=target.credentials,
            filters=filters,
            origin=ORIGIN_API,
            secret=secret,
            created_at=at,
            created_by=actor,
            cursor=end,
        )
    elif existing.origin == ORIGIN_API and not existing.active:
        sub = uow.webhooks.restart(
            existing.id,
            url=target.url,
            credentials=target.credentials,
            filters=filters,
            secret=secret,
            created_at=at,
            created_by=actor,
            cursor=end,
        )
    elif existing.origin == ORIGIN_CONFIG:
        raise WebhookConflict(f"the name {name!r} belongs to a configured subscription")
    else:
        raise WebhookConflict(f"a subscription named {name!r} exists")
    uow.commit()
    logger.info("Created webhook subscription %d (%s) by %s", sub.id, sub.name, actor)
    return CreatedSubscription(secret, sub)


def list_subscriptions(uow: UnitOfWork) -> list[Subscription]:
    return uow.webhooks.all()


def get_subscription(uow: UnitOfWork, subscription_id: int) -> Subscription:
    """:raises NotFound: no such subscription"""
    sub = uow.webhooks.get(subscription_id)
    if sub is None:
        raise NotFound("webhook subscription", str(subscription_id))
    return sub


def find_subscription(uow: UnitOfWork, name: str) -> Subscription:
    """:raises NotFound: no subscription has this name"""
    sub = uow.webhooks.get_by_name(name.strip())
    if sub is None:
        raise NotFound("webhook subscription", name)
    return sub


def deactivate_subscription(
    uow: UnitOfWork,
    subscription_id: int,
    *,
    actor: str,
    now: datetime | None = None,
) -> Subscription:
    """Stop an API subscription and cancel its pending deliveries; commits. The row and its
    deliveries stay, for the record. Deactivating twice is harmless.

    :raises NotFound: no such subscription
    :raises WebhookConflict: a configured subscription (remove it from the configuration)
    """
    sub = get_subscription(uow, subscription_id)
    if sub.origin == ORIGIN_CONFIG:
        raise WebhookConflict(
            f"{sub.name!r} is configured: remove it from the configuration "
            "([[webhooks.subscriptions]]) instead"
        )
    if sub.active:
        at = now or datetime.now(UTC)
        cancelled = uow.webhooks.deactivate(sub.id, at, f"subscription removed by {actor}")
        uow.commit()
        logger.info(
            "Deactivated webhook subscription %d (%s) by %s; %d pending deliveries cancelled",
            sub.id,
            sub.name,
            actor,
            cancelled,
        )
    return get_subscription(uow, subscription_id)


def delivery_counts(uow: UnitOfWork) -> dict[int, dict[str, int]]:
    """Subscription id → deliveries per state (pending, delivered, failed always present)."""
    stored = uow.webhooks.delivery_counts()
    counts = {}
    for sub in uow.webhooks.all():
        counts[sub.id] = {PENDING: 0, DELIVERED: 0, FAILED: 0, **stored.get(sub.id, {})}
    return counts


def recent_deliveries(
    uow: UnitOfWork,
    subscription_id: int,
    limit: int = 50,
    status: str | None = None,
) -> list[Delivery]:
    """The subscription's deliveries, newest first. :raises NotFound: no such subscription"""
    get_subscription(uow, subscription_id)
    return uow.webhooks.deliveries(subscription_id, limit, status)
