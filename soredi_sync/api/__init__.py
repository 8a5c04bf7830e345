"""The HTTP API (FastAPI): routing decisions and registry reads for conversion gateways."""

from __future__ import annotations

from soredi_sync.api.app import create_app

__all__ = ["create_app"]
