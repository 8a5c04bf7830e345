"""Change subscriptions (webhooks): register, enqueue changes after each sync, deliver signed.

A subscription names a URL and a filter. After each sync, :func:`enqueue` turns the changes
after the subscription's cursor that pass its filter into *deliveries* of at most
``webhooks.batch_size`` changes, and :func:`deliver_due` POSTs them. The pull feed
(``GET /v1/changes?cursor=``) stays the alternative for consumers that would rather poll.

Filters
    ``glns``, ``owners`` (SOR-IDs of institution owners), ``message_types``, ``kinds``
    (added/removed/changed) and ``entities`` (unit/gln/capability). Fields are ANDed, the values
    of one field ORed; an empty field matches everything. ``glns`` matches the change's GLN (a
    GLN or capability change; a unit change when the unit carries that GLN itself).
    ``message_types`` matches capability changes of those types only (units and GLNs have no
    message type). ``owners`` matches when the change concerns one of those owners on the
    current snapshot: a unit's institution owner, or for a GLN or capability the owners of the
    units that carry the GLN (else of the unit that registered it). A record gone from the
    current snapshot is placed by what the changes themselves say (a removed unit's
    ``before``); a change whose owner cannot be told matches no owner filter (fail closed).

Delivery (at least once, in order per subscription)
    ``POST <url>`` with the body ``canonical_json(payload)`` (UTF-8, keys sorted, no spaces)::

        {"subscription": "region-north", "delivery_id": 17, "sequence": 4,
         "cursor": 230, "next_cursor": 412, "snapshot_ids": [12],
         "changes": [{"cursor": 233, "snapshot_id": 12, "entity": "capability",
                      "key": "5790000000005:FDIS91", "gln": "5790000000005",
                      "kind": "added", "details": {...}}, ...]}

    ``changes`` holds every change in the feed range (``cursor``, ``next_cursor``] that passes
    the filter, in feed order (the items are those of ``/v1/changes``). ``sequence`` counts the
    subscription's deliveries (1, 2, …): a gap means a delivery failed for good. A 2xx answer
    delivers; anything else (another status, no complete answer within the deadline, a refused
    connection, an address the policy refuses) is retried after ``initial_backoff`` seconds,
    doubling up to ``max_backoff``, until ``max_attempts``, then the delivery is ``failed``.
    Redirects are not followed. Only the oldest undelivered delivery of a subscription is ever
    sent: a failing receiver holds back its later deliveries (they wait, they are not lost)
    until the failing one is delivered or failed for good.

    One POST, from resolving the host to the last byte of the answer, ends within
    ``webhooks.timeout`` seconds (a total deadline, not per read), and at most
    ``max_answer_bytes`` of the answer are read (:mod:`soredi_sync.clients.webhook_http`).
    Before it is sent a delivery is *claimed* (``sending``) by one dispatcher until the
    deadline and :data:`CLAIM_MARGIN_SECONDS` have passed, so no other dispatcher, replica or
    ``webhook dispatch`` sends it meanwhile. A dispatcher that dies mid-POST leaves the claim to
    run out; the delivery is then sent again, so a receiver may see a delivery twice:
    deduplicate on ``X-Soredi-Delivery``. Deliveries to different subscriptions go out side by
    side, ``webhooks.max_concurrency`` at a time; the daemon sends them in their own job, never
    inside a sync.

Receivers (SSRF)
    A receiver whose host is or resolves to a loopback, private, link-local, unique-local,
    multicast, unspecified or reserved address is refused at registration (API, CLI and
    configuration) and again at every delivery, where the POST goes to the address that was
    checked; ``webhooks.allow_networks`` / ``allow_hosts`` let an operator name internal
    receivers. A name that does not resolve yet is accepted at registration and checked when
    it is sent to. A failed attempt is recorded as a class ("could not connect …", "no complete
    answer within …", "refused by the address policy …", the HTTP status), never as the raw
    socket error, so the record does not tell an open port from a closed one.

Credentials in the URL
    ``https://user:password@host/…``: the user-info is split off when the subscription is
    registered, stored in its own column, sent as HTTP Basic, and never listed (listings show
    ``has_credentials``), logged or put in an error message.

Signature
    Headers: ``X-Soredi-Delivery`` (delivery id), ``X-Soredi-Subscription`` (name),
    ``X-Soredi-Timestamp`` (unix seconds) and ``X-Soredi-Signature: sha256=<hex>``, the hex
    HMAC-SHA256, keyed with the subscription's secret (UTF-8), of
    ``f"{timestamp}.".encode() + body``. A receiver checks it with :func:`verify` (or the same
    three lines: the HMAC, a constant-time compare, and the timestamp within 5 minutes, which
    bounds replays) over the raw body bytes, before parsing them.

Secrets
    An API subscription's secret (``whsec_…``) is generated here, stored, and shown once on
    creation; a configured subscription's secret stays in the configuration or environment
    (``secret_env``) and its column is NULL. Neither the secret nor a signature is ever logged.

Retries are state in the database (``attempts``, ``next_attempt_at``), not the in-process
tenacity policy of :mod:`soredi_sync.retry`: a receiver that is down for an hour must neither
block the daemon for that hour nor lose its deliveries when the daemon restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from soredi_sync.clients.webhook_http import (
    AddressPolicy,
    AddressRefused,
    DeadlineExceeded,
    Target,
    UnresolvableHost,
    WebhookSender,
    split_credentials,
)
from soredi_sync.config import WebhookConfig, WebhookSettings
from soredi_sync.db.repository import ChangeRecord
from soredi_sync.db.unit_of_work import UnitOfWork
from soredi_sync.db.webhook_repository import (
    DELIVERED,
    FAILED,
    PENDING,
    Delivery,
    DueDelivery,
    OwnerMap,
    StuckDeliveries,
    Subscription,
)
from soredi_sync.errors import NotFound, SorediError

if TYPE_CHECKING:
    from soredi_sync.bootstrap import App

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
SIGNATURE_SCHEME = "sha256"
ORIGIN_CONFIG = "config"
ORIGIN_API = "api"
FILTER_FIELDS = ("glns", "owners", "message_types", "kinds", "entities")
KINDS = ("added", "removed", "changed")
ENTITIES = ("unit", "gln", "capability")
MAX_NAME_LENGTH = 100
# Changes read from the feed at a time while enqueueing.
SCAN_PAGE = 5000
# A claimed delivery is due again this long after its POST's deadline, should its
# dispatcher die mid-POST (the margin covers recording the outcome).
CLAIM_MARGIN_SECONDS = 60.0
# Resolving a host at registration: a name server slower than this is not waited for (the
# name is accepted, and checked again at each delivery).
REGISTRATION_RESOLVE_SECONDS = 5.0
_MAX_ERROR = 500
_MAX_REASON = 100

_GLN = re.compile(r"\d{13}")
_SOR_ID = re.compile(r"\d{1,20}")
_MESSAGE_TYPE = re.compile(r"[A-Z0-9]{1,40}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Clock = Callable[[], datetime]


class InvalidWebhook(SorediError, ValueError):
    """A subscription cannot be registered as asked (bad name, URL or filter)."""


class WebhookConflict(SorediError):
    """The name is taken, or the subscription is configured and cannot be changed here."""


# -- signing --------------------------------------------------------------------------------


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The body that is signed and sent: UTF-8 JSON, keys sorted, no insignificant spaces."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Soredi-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of
    ``f"{timestamp}.".encode() + body`` keyed with ``key``."""
    digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={digest.hexdigest()}"


def verify(
    key: str,
    timestamp: int | str,
    body: bytes,
    header: str,
    tolerance_seconds: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (``X-Soredi-Signature``) signs ``body`` sent at ``timestamp``
    (``X-Soredi-Timestamp``) with ``key``, and the timestamp is within ``tolerance_seconds`` of
    ``now`` (default: the current time). For receivers; compares in constant time.

    ``header`` may list several signatures separated by commas or spaces (any one suffices).
    """
    try:
        sent = int(str(timestamp).strip())
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_seconds:
        return False
    expected = sign(key, sent, body).encode()
    candidates = [c for c in re.split(r"[,\s]+", header.strip()) if c]
    return any(hmac.compare_digest(expected, c.encode()) for c in candidates)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


# -- filters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookFilter:
    """What a subscription gets. Fields are ANDed, values ORed; empty matches everything."""

    glns: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()
    message_types: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        *,
        glns: Iterable[str] = (),
        owners: Iterable[str] = (),
        message_types: Iterable[str] = (),
        kinds: Iterable[str] = (),
        entities: Iterable[str] = (),
    ) -> WebhookFilter:
        """Normalised and checked values.

        :raises InvalidWebhook: a value that is no GLN, SOR-ID, message type, kind or entity
        """
        built = cls(
            glns=_values(glns),
            owners=_values(owners),
            message_types=frozenset(v.upper() for v in _values(message_types)),
            kinds=frozenset(v.lower() for v in _values(kinds)),
            entities=frozenset(v.lower() for v in _values(entities)),
        )
        _check(built.glns, _GLN.fullmatch, "GLN (13 digits)")
        _check(built.owners, _SOR_ID.fullmatch, "SOR-ID of an institution owner")
        _check(built.message_types, _MESSAGE_TYPE.fullmatch, "message type such as FDIS91")
        _check(built.kinds, lambda v: v in KINDS, f"kind ({', '.join(KINDS)})")
        _check(built.entities, lambda v: v in ENTITIES, f"entity ({', '.join(ENTITIES)})")
        return built

    @classmethod
    def of(cls, stored: Mapping[str, Iterable[str]]) -> WebhookFilter:
        return cls(**{f: frozenset(stored.get(f, ())) for f in FILTER_FIELDS})

    def as_dict(self) -> dict[str, list[str]]:
        return {f: sorted(getattr(self, f)) for f in FILTER_FIELDS}

    @property
    def needs_owners(self) -> bool:
        return bool(self.owners)

    def matches(self, change: ChangeRecord, owners: Callable[[ChangeRecord], set[str]]) -> bool:
        """``owners`` tells the institution owners of a change; asked only if needed."""
        if self.entities and change.entity not in self.entities:
            return False
        if self.kinds and change.kind not in self.kinds:
            return False
        if self.glns and change.gln not in self.glns:
            return False
        if self.message_types and (
            change.entity != "capability" or _message_type(change) not in self.message_types
        ):
            return False
        return not self.owners or bool(owners(change) & self.owners)


def _values(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip() for v in values if v and v.strip())


def _check(values: Iterable[str], ok: Callable[[str], object], what: str) -> None:
    bad = sorted(v for v in values if not ok(v))
    if bad:
        raise InvalidWebhook(f"{', '.join(map(repr, bad))} is not a {what}")


def _message_type(change: ChangeRecord) -> str:
    return change.key.partition(":")[2]


class OwnerResolver:
    """The institution owners of a change, from one :class:`OwnerMap` of the current snapshot.

    Units seen in the changes themselves (``before``/``after``) fill in for units gone from the
    snapshot, so a removed GLN whose unit was removed in the same sync still has an owner.
    """

    def __init__(self, owner_map: OwnerMap) -> None:
        self._map = owner_map
        self._gone: dict[str, str] = {}  # unit SOR-ID → owner, from unit changes

    def learn(self, change: ChangeRecord) -> None:
        if change.entity != "unit":
            return
        for side in ("before", "after"):
            record = change.details.get(side)
            if isinstance(record, dict) and record.get("owner_sor_id"):
                self._gone.setdefault(change.key, str(record["owner_sor_id"]))

    def _unit_owner(self, sor_id: str | None) -> str | None:
        if not sor_id:
            return None
        return self._map.unit_owner.get(sor_id) or self._gone.get(sor_id)

    def __call__(self, change: ChangeRecord) -> set[str]:
        owners: set[str] = set()
        if change.entity == "unit":
            owners.add(self._unit_owner(change.key) or "")
            moved = change.details.get("fields", {}).get("owner_sor_id")
            if isinstance(moved, list):
                owners.update(str(v) for v in moved if v)
        elif change.gln:
            carriers: Sequence[str] = self._map.gln_carriers.get(change.gln, ())
            if not carriers:
                registered = self._map.gln_registered.get(change.gln)
                before = change.details.get("before")
                if registered is None and isinstance(before, dict):
                    registered = before.get("owner_sor_id")  # a removed GLN
                carriers = (registered,) if registered else ()
            owners.update(self._unit_owner(s) or "" for s in carriers)
        owners.discard("")
        return owners


# -- subscriptions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatedSubscription:
    """A new API subscription: ``secret`` is shown to the caller once and never again."""

    secret: str = field(repr=False)
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class ConfiguredReport:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    reactivated: tuple[str, ...] = ()
    deactivated: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # invalid, or the name taken by an API subscription


def check_name(name: str) -> str:
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


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def sync_configured(
    uow: UnitOfWork,
    webhook_settings: WebhookSettings,
    actor: str = "config",
    *,
    now: datetime | None = None,
) -> ConfiguredReport:
    """Make the stored configured subscriptions match ``webhook_settings.subscriptions`` and
    commit.

    A configured name is added (from the current end of the feed on: it gets only changes
    made after this), updated in place (URL and filter; the cursor stays), or, when it had been
    removed from the configuration, started again from the current end. Configured
    subscriptions no longer in the configuration are deactivated and their pending deliveries
    cancelled. The secret stays in the configuration (the column is NULL). A configured entry
    that is invalid, or whose name an API subscription has, is skipped and logged; the others
    still apply.
    """
    at = _now(now)
    repo = uow.webhooks
    policy = address_policy(webhook_settings)
    end = uow.registry.last_cursor()
    added, updated, reactivated, skipped = [], [], [], []
    seen: set[str] = set()
    for config in webhook_settings.subscriptions:
        try:
            name = check_name(config.name)
            if name in seen:
                raise InvalidWebhook("the name is configured twice")
            seen.add(name)
            target = check_url(config.url, policy)
            filters = _config_filter(config).as_dict()
        except InvalidWebhook as exc:
            logger.error("Configured webhook %r skipped: %s", config.name, exc)
            skipped.append(config.name)
            continue
        _warn_if_unsigned(config)
        existing = repo.get_by_name(name)
        if existing is None:
            repo.add(
                name=name,
                url=target.url,
                credentials=target.credentials,
                filters=filters,
                origin=ORIGIN_CONFIG,
                secret=None,
                created_at=at,
                created_by=actor,
                cursor=end,
            )
            added.append(name)
        elif existing.origin != ORIGIN_CONFIG:
            logger.error(
                "Configured webhook %r skipped: an API subscription has that name", config.name
            )
            skipped.append(name)
        elif not existing.active:
            repo.restart(
                existing.id,
                url=target.url,
                credentials=target.credentials,
                filters=filters,
                secret=None,
                created_at=at,
                created_by=actor,
                cursor=end,
            )
            reactivated.append(name)
        elif repo.retarget(
            existing.id, url=target.url, credentials=target.credentials, filters=filters
        ):
            updated.append(name)
    deactivated = []
    for sub in repo.all():
        if sub.origin == ORIGIN_CONFIG and sub.active and sub.name not in seen:
            repo.deactivate(sub.id, at, "subscription removed from the configuration")
            deactivated.append(sub.name)
    uow.commit()
    report = ConfiguredReport(
        tuple(added), tuple(updated), tuple(reactivated), tuple(deactivated), tuple(skipped)
    )
    if added or updated or reactivated or deactivated:
        logger.info(
            "Configured webhooks: added %s, updated %s, restarted %s, deactivated %s",
            added,
            updated,
            reactivated,
            deactivated,
        )
    return report


def _config_filter(config: WebhookConfig) -> WebhookFilter:
    return WebhookFilter.build(
        glns=config.glns,
        owners=config.owners,
        message_types=config.message_types,
        kinds=config.kinds,
        entities=config.entities,
    )


def _warn_if_unsigned(config: WebhookConfig) -> None:
    try:
        config.signing_key()
    except ValueError as exc:  # the message names the variable, never the value
        logger.warning("Configured webhook %r cannot be signed yet: %s", config.name, exc)


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
    at = _now(now)
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
        cancelled = uow.webhooks.deactivate(sub.id, _now(now), f"subscription removed by {actor}")
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


# -- enqueue --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnqueueReport:
    scanned: int = 0  # changes read from the feed
    deliveries: int = 0  # deliveries created
    changes: int = 0  # changes put into them (one change may go to several subscriptions)


@dataclass
class _Pending:
    """One subscription's batch being filled while the feed is scanned."""

    sub: Subscription
    match: WebhookFilter
    position: int  # the last change id scanned for it
    range_start: int  # where the batch being filled starts (exclusive)
    sequence: int | None = None  # the last sequence used; read when first needed
    batch: list[ChangeRecord] = field(default_factory=list)


def enqueue(
    uow: UnitOfWork,
    webhook_settings: WebhookSettings,
    *,
    now: datetime | None = None,
) -> EnqueueReport:
    """Turn the changes after each active subscription's cursor that pass its filter into
    deliveries of at most ``batch_size`` changes, advance every cursor past all it scanned,
    and commit: one transaction, so a crash never loses a batch nor makes one twice.

    The feed is read once for all subscriptions, from the lowest cursor; ownership (for owner
    filters) is read once per call. Like every reader of the pull feed, this relies on change
    ids becoming visible in order, which holds while one sync at a time stores a snapshot (the
    daemon's leader lease; ``ConcurrentSync``).
    """
    at = _now(now)
    repo = uow.webhooks
    subs = repo.lock_active()
    if not subs:
        return EnqueueReport()
    states = [_Pending(s, WebhookFilter.of(s.filters), s.cursor, s.cursor) for s in subs]
    resolver: OwnerResolver | None = None
    position = min(s.cursor for s in subs)
    scanned = deliveries = matched = 0
    while True:
        page = uow.registry.changes_since(position, SCAN_PAGE)
        if not page:
            break
        if resolver is None and any(s.match.needs_owners for s in states):
            resolver = _owner_resolver(uow)
        for change in page:
            if resolver is not None:
                resolver.learn(change)
        owners = resolver if resolver is not None else _no_owners
        for state in states:
            for change in page:
                if change.cursor <= state.position:
                    continue
                state.position = change.cursor
                if not state.match.matches(change, owners):
                    continue
                state.batch.append(change)
                if len(state.batch) >= webhook_settings.batch_size:
                    matched += _emit(uow, state, at)
                    deliveries += 1
        scanned += len(page)
        position = page[-1].cursor
    for state in states:
        if state.batch:
            matched += _emit(uow, state, at)
            deliveries += 1
        if state.position != state.sub.cursor:
            repo.advance(state.sub.id, state.position)
    uow.commit()
    if deliveries:
        logger.info(
            "Enqueued %d webhook deliveries (%d changes) from %d changes scanned",
            deliveries,
            matched,
            scanned,
        )
    return EnqueueReport(scanned=scanned, deliveries=deliveries, changes=matched)


def _no_owners(_change: ChangeRecord) -> set[str]:
    return set()


def _owner_resolver(uow: UnitOfWork) -> OwnerResolver:
    snapshot = uow.registry.current_snapshot()
    if snapshot is None:
        return OwnerResolver(OwnerMap({}, {}, {}))
    return OwnerResolver(uow.webhooks.owner_map(snapshot.id))


def _emit(uow: UnitOfWork, state: _Pending, at: datetime) -> int:
    batch, state.batch = state.batch, []
    if state.sequence is None:
        state.sequence = uow.webhooks.last_sequence(state.sub.id)
    state.sequence += 1
    payload: dict[str, Any] = {
        "subscription": state.sub.name,
        "sequence": state.sequence,
        "cursor": state.range_start,
        "next_cursor": state.position,
        "snapshot_ids": sorted({c.snapshot_id for c in batch}),
        "changes": [
            {
                "cursor": c.cursor,
                "snapshot_id": c.snapshot_id,
                "entity": c.entity,
                "key": c.key,
                "gln": c.gln,
                "kind": c.kind,
                "details": c.details,
            }
            for c in batch
        ],
    }
    uow.webhooks.add_delivery(
        subscription_id=state.sub.id,
        created_at=at,
        first_change_id=batch[0].cursor,
        last_change_id=batch[-1].cursor,
        change_count=len(batch),
        payload=payload,
    )
    state.range_start = state.position
    return len(batch)


# -- deliver --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliverReport:
    delivered: int = 0
    retrying: int = 0  # failed attempts that will be tried again
    failed: int = 0  # deliveries given up on (max_attempts reached)


def backoff_seconds(webhook_settings: WebhookSettings, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (1, 2, …)."""
    exponent = min(max(attempts - 1, 0), 62)  # 2**62 s is forever; keep the float finite
    return float(
        min(webhook_settings.max_backoff, webhook_settings.initial_backoff * 2.0**exponent)
    )


def make_sender(webhook_settings: WebhookSettings, user_agent: str) -> WebhookSender:
    """The sender for deliveries: the configured address policy, deadline and answer cap."""
    return WebhookSender(
        address_policy(webhook_settings),
        timeout=webhook_settings.timeout,
        max_answer_bytes=webhook_settings.max_answer_bytes,
        user_agent=user_agent,
    )


def dispatcher_id() -> str:
    """Who claims deliveries: host, process and a per-call tag (two calls never share one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


def deliver_due(
    uow_factory: Callable[[], UnitOfWork],
    webhook_settings: WebhookSettings,
    sender: WebhookSender,
    *,
    clock: Clock | None = None,
    should_stop: Callable[[], bool] | None = None,
    holder: str | None = None,
) -> DeliverReport:
    """POST every due delivery, oldest first per subscription, and record each outcome.

    Deliveries are claimed (one short transaction each time) as workers come free, at most
    ``max_concurrency`` at a time and at most one per subscription, POSTed with no
    transaction open, and each outcome is recorded in its own transaction. The call returns
    when nothing is due and nothing is in flight, so a backlog drains in one call while a
    failing receiver waits for its backoff; every POST ends within ``timeout``, so the call
    ends too.

    :param clock: the time (default: now); tests pass a fixed or stepping clock
    :param should_stop: asked before each claim; once true, nothing more is claimed and the
        call returns when the POSTs in flight have ended
    :param holder: the claimer's name (default: :func:`dispatcher_id`)
    """
    now = clock or (lambda: datetime.now(UTC))
    stopping = should_stop or (lambda: False)
    holder = holder or dispatcher_id()
    keys = {c.name: c for c in webhook_settings.subscriptions}
    claim_for = timedelta(seconds=webhook_settings.timeout + CLAIM_MARGIN_SECONDS)
    slots = webhook_settings.max_concurrency
    totals = {DELIVERED: 0, PENDING: 0, FAILED: 0}
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="soredi-webhook") as pool:
        running: dict[Future[_Outcome], DueDelivery] = {}
        while True:
            if len(running) < slots and not stopping():
                started = now()
                with uow_factory() as uow:
                    claimed = uow.webhooks.claim_due(
                        started,
                        started + claim_for,
                        holder,
                        limit=slots - len(running),
                        max_attempts=webhook_settings.max_attempts,
                    )
                    keys_by_sub = {
                        d.subscription_id: uow.webhooks.secret_of(d.subscription_id)
                        for d in claimed
                    }
                    uow.commit()
                for due in claimed:
                    stored = keys_by_sub.get(due.subscription_id)
                    running[pool.submit(_attempt, due, stored, keys, sender, now)] = due
            if not running:
                break
            done, _pending = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                due = running.pop(future)
                try:
                    outcome = future.result()
                except Exception:  # a bug here must not leave the claim to run out silently
                    logger.exception("Sending webhook delivery %d failed unexpectedly", due.id)
                    outcome = _Outcome(False, now(), error="internal error while sending")
                totals[_record(uow_factory, webhook_settings, due, outcome, holder)] += 1
    return DeliverReport(
        delivered=totals[DELIVERED], retrying=totals[PENDING], failed=totals[FAILED]
    )


def _record(
    uow_factory: Callable[[], UnitOfWork],
    webhook_settings: WebhookSettings,
    due: DueDelivery,
    outcome: _Outcome,
    holder: str,
) -> str:
    """Store one attempt's outcome; returns the delivery's state (delivered, pending, failed)."""
    state = DELIVERED
    retry_at: datetime | None = None
    with uow_factory() as uow:
        if outcome.ok:
            held = uow.webhooks.record_delivered(
                due.id, outcome.at, outcome.status_code or 0, holder
            )
        else:
            retry_at = (
                outcome.at + timedelta(seconds=backoff_seconds(webhook_settings, due.attempts))
                if due.attempts < webhook_settings.max_attempts
                else None
            )
            state = PENDING if retry_at is not None else FAILED
            held = uow.webhooks.record_failed_attempt(
                due.id,
                outcome.at,
                status_code=outcome.status_code,
                error=outcome.error,
                retry_at=retry_at,
                holder=holder,
            )
        uow.commit()
    changes = len(due.payload.get("changes", ()))
    detail = f" [{outcome.detail}]" if outcome.detail and outcome.detail != outcome.error else ""
    if not held:
        logger.warning(
            "Webhook delivery %d to %s: %s, but its claim had ended (the subscription was "
            "removed, or another dispatcher took it over); outcome not recorded",
            due.id,
            due.subscription_name,
            "delivered" if outcome.ok else outcome.error,
        )
    elif state == DELIVERED:
        logger.info(
            "Delivered webhook delivery %d to %s (%d changes, HTTP %s, %.2f s)",
            due.id,
            due.subscription_name,
            changes,
            outcome.status_code,
            outcome.seconds,
        )
    elif state == FAILED:
        logger.error(
            "Webhook delivery %d to %s failed for good after %d attempts: %s%s",
            due.id,
            due.subscription_name,
            due.attempts,
            outcome.error,
            detail,
        )
    else:
        logger.warning(
            "Webhook delivery %d to %s failed (attempt %d of %d): %s%s; next attempt at %s",
            due.id,
            due.subscription_name,
            due.attempts,
            webhook_settings.max_attempts,
            outcome.error,
            detail,
            f"{retry_at:%Y-%m-%d %H:%M:%S} UTC",
        )
    return state


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    at: datetime
    status_code: int | None = None
    error: str = ""
    detail: str = ""  # the exact cause, for the log only
    seconds: float = 0.0


def _attempt(
    due: DueDelivery,
    stored_secret: str | None,
    keys: Mapping[str, WebhookConfig],
    sender: WebhookSender,
    now: Clock,
) -> _Outcome:
    key = stored_secret
    if due.origin == ORIGIN_CONFIG:
        config = keys.get(due.subscription_name)
        try:
            if config is None:
                raise ValueError("the subscription is no longer configured")
            key = config.signing_key()
        except ValueError as exc:
            return _Outcome(False, now(), error=f"no signing key: {exc}")
    if not key:
        return _Outcome(False, now(), error="no signing key stored")
    body = canonical_json(due.payload)
    timestamp = int(now().timestamp())
    headers = [
        ("Content-Type", "application/json"),
        ("X-Soredi-Delivery", str(due.id)),
        ("X-Soredi-Subscription", due.subscription_name),
        ("X-Soredi-Timestamp", str(timestamp)),
        ("X-Soredi-Signature", sign(key, timestamp, body)),
    ]
    result = sender.send(Target(due.url, due.credentials), body, headers)
    if result.ok:
        return _Outcome(True, now(), result.status, seconds=result.seconds)
    if result.status is not None:
        reason = "".join(c for c in result.reason if c.isprintable())[:_MAX_REASON]
        error = f"HTTP {result.status} {reason}".strip()
        return _Outcome(False, now(), result.status, error, seconds=result.seconds)
    return _Outcome(
        False,
        now(),
        error=result.error[:_MAX_ERROR],
        detail=result.detail[:_MAX_ERROR],
        seconds=result.seconds,
    )


# -- dispatch -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrepareReport:
    configured: ConfiguredReport
    enqueued: EnqueueReport


@dataclass(frozen=True, slots=True)
class DispatchReport:
    configured: ConfiguredReport
    enqueued: EnqueueReport
    delivered: DeliverReport


def webhook_uow_factory(app: App) -> Callable[[], UnitOfWork]:
    return app.uow


def prepare(app: App, now: datetime | None = None) -> PrepareReport:
    """Sync the configured subscriptions and enqueue new changes: database work only (the
    daemon runs this right after a sync; sending is :func:`deliver`'s, in another job)."""
    settings = app.settings.webhooks
    uow_factory = webhook_uow_factory(app)
    with uow_factory() as uow:
        configured = sync_configured(uow, settings, now=now)
    with uow_factory() as uow:
        enqueued = enqueue(uow, settings, now=now)
    return PrepareReport(configured, enqueued)


def deliver(
    app: App,
    now: datetime | None = None,
    sender: WebhookSender | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DeliverReport:
    """Send what is due (:func:`deliver_due`) with the configured sender."""
    settings = app.settings.webhooks
    sender = sender or make_sender(settings, app.settings.http.user_agent)
    clock = (lambda: now) if now is not None else None
    return deliver_due(
        webhook_uow_factory(app), settings, sender, clock=clock, should_stop=should_stop
    )


def dispatch(
    app: App,
    now: datetime | None = None,
    sender: WebhookSender | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DispatchReport:
    """Sync the configured subscriptions, enqueue new changes and deliver what is due.

    The daemon's webhook job runs this every ``daemon.webhook_retry_seconds`` and when a sync
    has stored a snapshot; ``soredi-sync webhook dispatch`` runs it once. It ends once nothing
    is due and nothing is in flight (every POST within ``webhooks.timeout``).

    :param now: a fixed time for the whole dispatch (tests); default: the clock
    :param sender: what POSTs (tests inject one); default: :func:`make_sender`
    :param should_stop: see :func:`deliver_due`
    """
    prepared = prepare(app, now)
    delivered = deliver(app, now, sender, should_stop)
    return DispatchReport(prepared.configured, prepared.enqueued, delivered)


def stuck_deliveries(
    uow: UnitOfWork,
    webhook_settings: WebhookSettings,
    now: datetime | None = None,
) -> StuckDeliveries:
    """Deliveries due for longer than ``stuck_after_seconds`` without being sent, or claimed
    past the deadline and margin (their dispatcher died); see the repository's ``stuck``."""
    at = _now(now)
    return uow.webhooks.stuck(at, at - timedelta(seconds=webhook_settings.stuck_after_seconds))
