"""soredi-sync: a versioned local copy of SOR and SOR-EDI for MedCom message routing."""

from __future__ import annotations

__version__ = "0.1.0"
