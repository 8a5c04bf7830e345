"""The shared reference material (real SOR records, real MedCom messages), read where it lies.

It is kept beside the repository (``shared/reference``), never copied into it. CI lays it out
beside the clone, so there a missing file fails the test; elsewhere the test is skipped with
the reason (point ``SOREDI_REFERENCE_DIR`` at a copy to run it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

REFERENCE = Path(
    os.environ.get("SOREDI_REFERENCE_DIR") or REPO_ROOT.parent / "shared" / "reference"
)


def reference_path(*parts: str) -> Path:
    path = REFERENCE.joinpath(*parts)
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the reference file {path} is missing")
        pytest.skip(f"reference material not found at {path.parent} (set SOREDI_REFERENCE_DIR)")
    return path


def sample(name: str) -> bytes:
    """One of the three real SOR v1 records (2010), as published, BOM included."""
    return reference_path("sor", "samples-v1.0.0", f"{name}.xml").read_bytes()
