"""The webhook port besides storage: the sender a delivery's POST goes through, and the states a
delivery passes through (stored in ``webhook_deliveries.status``).

The adapter is :class:`soredi_sync.clients.webhook_http.HttpcoreWebhookSender`; tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

PENDING = "pending"
SENDING = "sending"  # claimed by a dispatcher, which is POSTing it now
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"  # the subscription was deactivated before the delivery went out
DELIVERY_STATES = (PENDING, SENDING, DELIVERED, FAILED, CANCELLED)
UNDELIVERED = (PENDING, SENDING)
# The error of a delivery whose claim ran out on its last allowed attempt.
ABANDONED = "the dispatcher sending it stopped before it recorded an answer"


@dataclass(frozen=True, slots=True)
class Target:
    """A receiver URL split for sending: the URL without user-info, and the user-info."""

    url: str
    credentials: str | None = field(default=None, repr=False)


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


class WebhookSender(Protocol):
    """Sends one delivery's POST."""

    def send(self, target: Target, body: bytes, headers: Sequence[tuple[str, str]]) -> SendResult:
        """POST ``body`` with ``headers`` to ``target`` (its credentials as HTTP Basic).

        The sender owns the deadline (one POST ends within it), the address policy and the cap
        on the answer read. It never raises for what the receiver or the network does: a
        refusal, a timeout or a broken connection is a :class:`SendResult` without a status.
        """
        ...
