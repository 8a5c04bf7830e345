"""Fixtures for the sandbox tests: one generated tiny register shared by the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from soredi_sync.sandbox.generate import Manifest, generate

TINY_DAYS = 3


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """Days 0..3 of the tiny profile, seed 0 (read-only: do not write into it)."""
    out = tmp_path_factory.mktemp("sandbox") / "tiny"
    return out, generate(out, "tiny", seed=0, days=TINY_DAYS)
