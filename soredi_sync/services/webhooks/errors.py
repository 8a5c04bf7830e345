"""Why a webhook subscription cannot be registered or changed as asked."""

from __future__ import annotations

from soredi_sync.errors import SorediError


class InvalidWebhook(SorediError, ValueError):
    """A subscription cannot be registered as asked (bad name, URL or filter)."""


class WebhookConflict(SorediError):
    """The name is taken, or the subscription is configured and cannot be changed here."""
