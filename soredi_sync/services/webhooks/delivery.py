"""Sending due deliveries: claimed, signed, POSTed through the sender port, outcome recorded.

At least once, in order per subscription
    ``POST <url>`` with the body ``canonical_json(payload)`` and the signature headers
    (:mod:`soredi_sync.services.webhooks.signing`). A 2xx answer delivers; anything else
    (another status, no complete answer within the deadline, a refused connection, an address
    the policy refuses) is retried after ``initial_backoff`` seconds, doubling up to
    ``max_backoff``, until ``max_attempts``, then the delivery is ``failed``. Redirects are not
    followed. Only the oldest undelivered delivery of a subscription is ever sent: a failing
    receiver holds back its later deliveries (they wait, they are not lost) until the failing
    one is delivered or failed for good. A failed attempt is recorded as a class ("could not
    connect …", "no complete answer within …", "refused by the address policy …", the HTTP
    status), never as the raw socket error, so the record does not tell an open port from a
    closed one.

Claims
    One POST ends within ``webhooks.timeout`` seconds (the sender's deadline). Before it is
    sent a delivery is *claimed* (``sending``) by one dispatcher until the deadline and
    :data:`CLAIM_MARGIN_SECONDS` have passed, so no other dispatcher, replica or ``webhook
    dispatch`` sends it meanwhile. A dispatcher that dies mid-POST leaves the claim to run out;
    the delivery is then sent again, so a receiver may see a delivery twice: deduplicate on
    ``X-Soredi-Delivery``. Deliveries to different subscriptions go out side by side,
    ``webhooks.max_concurrency`` at a time.

Retries are state in the database (``attempts``, ``next_attempt_at``), not the in-process
tenacity policy of :mod:`soredi_sync.retry`: a receiver that is down for an hour must neither
block the daemon for that hour nor lose its deliveries when the daemon restarts.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from soredi_sync.config import WebhookConfig, WebhookSettings
from soredi_sync.ports.records import DueDelivery
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.ports.webhooks import DELIVERED, FAILED, PENDING, Target, WebhookSender
from soredi_sync.services.webhooks.signing import canonical_json, signed_headers
from soredi_sync.services.webhooks.subscriptions import ORIGIN_CONFIG

logger = logging.getLogger(__name__)

# A claimed delivery is due again this long after its POST's deadline, should its
# dispatcher die mid-POST (the margin covers recording the outcome).
CLAIM_MARGIN_SECONDS = 60.0
_MAX_ERROR = 500
_MAX_REASON = 100

Clock = Callable[[], datetime]


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

    :param sender: what POSTs (``app.webhook_sender()``; tests pass a fake)
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
    headers = signed_headers(
        key, timestamp, body, delivery_id=due.id, subscription=due.subscription_name
    )
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
    _log_outcome(webhook_settings, due, outcome, state, held, retry_at)
    return state


def _log_outcome(
    webhook_settings: WebhookSettings,
    due: DueDelivery,
    outcome: _Outcome,
    state: str,
    held: bool,
    retry_at: datetime | None,
) -> None:
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
