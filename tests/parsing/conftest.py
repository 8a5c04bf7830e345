from __future__ import annotations

import os
from pathlib import Path

import pytest

from soredi_sync.config import CsvColumns, GuardSettings, SourceSettings, config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry

# The real records are reference material kept beside the repository (shared/reference), not
# copied into it. CI lays shared/ beside the clone; there a missing file is a failure.
REFERENCE = Path(
    os.environ.get("SOREDI_REFERENCE_DIR")
    or Path(__file__).resolve().parents[3] / "shared" / "reference"
)
SAMPLES = REFERENCE / "sor" / "samples-v1.0.0"


def sample(name: str) -> bytes:
    """One of the three real SOR v1 records (2010), as published, BOM included."""
    path = SAMPLES / f"{name}.xml"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the real SOR sample {path} is missing")
        pytest.skip(f"real SOR samples not found at {SAMPLES} (set SOREDI_REFERENCE_DIR)")
    return path.read_bytes()


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
