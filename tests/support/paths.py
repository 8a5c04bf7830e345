"""Where the checkout is, for tests that read its files (deploy/, config/, README.md ...)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
