"""Signing a delivery, and checking a signature as a receiver does.

Headers: ``X-Soredi-Delivery`` (delivery id), ``X-Soredi-Subscription`` (name),
``X-Soredi-Timestamp`` (unix seconds) and ``X-Soredi-Signature: sha256=<hex>``, the hex
HMAC-SHA256, keyed with the subscription's secret (UTF-8), of ``f"{timestamp}.".encode() + body``,
where the body is :func:`canonical_json` of the payload. A receiver checks it with :func:`verify`
(or the same three lines: the HMAC, a constant-time compare, and the timestamp within 5 minutes,
which bounds replays) over the raw body bytes, before parsing them.

Secrets: an API subscription's secret (``whsec_…``, :func:`new_secret`) is generated at
registration, stored, and shown once; a configured subscription's secret stays in the
configuration or environment (``secret_env``) and its column is NULL. Neither the secret nor a
signature is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
SIGNATURE_SCHEME = "sha256"


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The body that is signed and sent: UTF-8 JSON, keys sorted, no insignificant spaces."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Soredi-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of
    ``f"{timestamp}.".encode() + body`` keyed with ``key``."""
    digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={digest.hexdigest()}"


def signed_headers(
    key: str, timestamp: int, body: bytes, *, delivery_id: int, subscription: str
) -> list[tuple[str, str]]:
    """The headers a delivery is POSTed with (``body`` is its :func:`canonical_json`)."""
    return [
        ("Content-Type", "application/json"),
        ("X-Soredi-Delivery", str(delivery_id)),
        ("X-Soredi-Subscription", subscription),
        ("X-Soredi-Timestamp", str(timestamp)),
        ("X-Soredi-Signature", sign(key, timestamp, body)),
    ]


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
    """A new API subscription's secret: ``whsec_`` and 32 random bytes, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
