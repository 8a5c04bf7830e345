"""soredi-sync: a versioned local copy of SOR and SOR-EDI for MedCom message routing."""

from __future__ import annotations

# The one place the version is written: pyproject.toml reads it (``dynamic``), so the wheel's
# metadata, ``soredi-sync --version`` and the OpenAPI document all say the same.
__version__ = "0.1.0"
