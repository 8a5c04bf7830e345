"""The routing tests' message types and policy: the shipped configuration's."""

from __future__ import annotations

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import RoutingPolicy
from soredi_sync.reference_data import load_routing_policy


@pytest.fixture(scope="module")
def types() -> MessageTypeRegistry:
    with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
        return MessageTypeRegistry.from_tsv_lines(fh)


@pytest.fixture(scope="module")
def policy() -> RoutingPolicy:
    return load_routing_policy(config_dir() / "routing.toml")
