"""The subscriptions of the configuration (``[[webhooks.subscriptions]]``), applied to storage.

Their secrets stay in the configuration or the environment; the stored row has none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from soredi_sync.config import WebhookConfig, WebhookSettings
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.webhooks.errors import InvalidWebhook
from soredi_sync.services.webhooks.filters import WebhookFilter
from soredi_sync.services.webhooks.subscriptions import (
    ORIGIN_CONFIG,
    address_policy,
    check_name,
    check_url,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConfiguredReport:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    reactivated: tuple[str, ...] = ()
    deactivated: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # invalid, or the name taken by an API subscription


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
    at = now or datetime.now(UTC)
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
