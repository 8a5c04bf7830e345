"""Metrics (Prometheus) and structured logs, shared by the CLI, the daemon and the API."""

from __future__ import annotations

from soredi_sync.observability.logging import bind_run, configure_logging
from soredi_sync.observability.metrics import Metrics, shared_metrics, start_metrics_server

__all__ = ["Metrics", "bind_run", "configure_logging", "shared_metrics", "start_metrics_server"]
