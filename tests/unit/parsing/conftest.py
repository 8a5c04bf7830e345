"""Fixtures of the parsing tests: the shipped CSV columns, message types and guards."""

from __future__ import annotations

import pytest

from soredi_sync.config import GuardSettings, config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.reference_data import CsvColumns


@pytest.fixture(scope="session")
def columns() -> CsvColumns:
    return CsvColumns.load(config_dir() / "csv-columns.toml")


@pytest.fixture(scope="session")
def message_types() -> MessageTypeRegistry:
    with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
        return MessageTypeRegistry.from_tsv_lines(fh)


@pytest.fixture
def guards() -> GuardSettings:
    return GuardSettings()
