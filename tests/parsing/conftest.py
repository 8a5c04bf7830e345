from __future__ import annotations

import pytest

from soredi_sync.config import GuardSettings, SourceSettings, config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.reference_data import CsvColumns
from tests.reference import reference_path


def sample(name: str) -> bytes:
    """One of the three real SOR v1 records (2010), as published, BOM included."""
    return reference_path("sor", "samples-v1.0.0", f"{name}.xml").read_bytes()


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


@pytest.fixture
def sources() -> SourceSettings:
    return SourceSettings()
